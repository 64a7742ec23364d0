#!/usr/bin/env bash
# The image's base, built from Debian's packages (no image registry needed): debootstrap minbase bookworm
# with python3, imported into podman as $1 (default localhost/edgeperf-base:bookworm). Runs as root.
set -euo pipefail
image="${1:-localhost/edgeperf-base:bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
podman=(podman --runtime runc --cgroup-manager cgroupfs)
if "${podman[@]}" image exists "$image"; then
  echo "base image $image exists"
  exit 0
fi
rootfs="$(mktemp -d /var/tmp/edgeperf-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
# python3 only: the runtime stage gets no compiler, no pip; the build stage installs wheels with pip's own wheel.
debootstrap --variant=minbase --include=python3,ca-certificates bookworm "$rootfs" "$mirror"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | "${podman[@]}" import --change 'CMD ["/bin/bash"]' - "$image"
"${podman[@]}" image ls "$image"
