#!/usr/bin/env bash
# systemd-analyze verify and security on a unit; fails when the exposure score is above the limit.
# Usage: check-unit.sh UNIT VENV MAX_SCORE. ExecStart names /opt/edgeperf/venv, which this machine may not
# have: verify reads a copy that points at VENV instead (same unit otherwise).
set -euo pipefail
unit="$1" venv="$2" max="$3"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sed "s#/opt/edgeperf/venv#$venv#" "$unit" > "$work/$(basename "$unit")"
systemd-analyze verify "$work/$(basename "$unit")"
score="$(systemd-analyze security --offline=yes "$unit" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')"
echo "systemd-analyze security $(basename "$unit"): $score (limit $max)"
awk -v s="$score" -v m="$max" 'BEGIN { exit !(s != "" && s <= m) }'
