#!/usr/bin/env bash
# Podman as root on a machine like the CI one: Debian's podman, runc, debootstrap, and no default ulimits
# (the sandbox refuses podman's default RLIMIT_NOFILE raise). Idempotent.
set -euo pipefail
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc debootstrap
fi
conf=/etc/containers/containers.conf
mkdir -p /etc/containers
if ! grep -q '^default_ulimits' "$conf" 2>/dev/null; then
  if grep -q '^\[containers\]' "$conf" 2>/dev/null; then
    sed -i 's/^\[containers\]/[containers]\ndefault_ulimits = []/' "$conf"
  else
    printf '[containers]\ndefault_ulimits = []\n' >> "$conf"
  fi
fi
