#!/usr/bin/env bash
# `make image`: the server and loadgen images from deploy/Dockerfile with podman (root), base from Debian.
# The build context build/image/ holds the wheels made here with pip, so the container build needs no network.
# Usage: deploy/scripts/image.sh PYTHON   (the virtualenv's python, which has pip)
set -euo pipefail
cd "$(dirname "$0")/../.."
python="${1:-python3}"
base="${BASE_IMAGE:-localhost/edgeperf-base:bookworm}"
podman=(podman --runtime runc --cgroup-manager cgroupfs --events-backend file)
deploy/scripts/podman-setup.sh
deploy/scripts/base-image.sh "$base"
context=build/image
rm -rf "$context" && mkdir -p "$context/wheels"
cp deploy/healthcheck.py "$context/"
"$python" -m pip wheel -q --wheel-dir "$context/wheels" '.[server,client]'
"$python" -m pip download -q --only-binary=:all: --dest "$context/wheels" pip
for target in server loadgen; do
  # --format docker: OCI images have no HEALTHCHECK.
  "${podman[@]}" build -q --format docker --build-arg "BASE=$base" --target "$target" \
    -f deploy/Dockerfile -t "localhost/edgeperf-$target:latest" "$context"
done
"${podman[@]}" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'edgeperf-(server|loadgen|base)'
