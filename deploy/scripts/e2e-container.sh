#!/usr/bin/env bash
# `make e2e-container`: the server image and the loadgen image on their own podman network, with the token
# as a podman secret; passes when the load generator's run is VALID. Needs `make image` first. Root.
# Everything it makes has a unique name and is removed on the way out, also on failure.
set -euo pipefail
podman=(podman --runtime runc --cgroup-manager cgroupfs --events-backend file)
tag="e2e-$$-$RANDOM"
net="edgeperf-$tag" server="edgeperf-server-$tag" secret="edgeperf-token-$tag"
work="$(mktemp -d)"
cleanup() {
  "${podman[@]}" rm -f -t 5 "$server" >/dev/null 2>&1 || true
  "${podman[@]}" network rm -f "$net" >/dev/null 2>&1 || true
  "${podman[@]}" secret rm "$secret" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
"${podman[@]}" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'edgeperf-(server|loadgen):'
head -c 32 /dev/urandom | base64 | tr -d '\n/+=' > "$work/token"
"${podman[@]}" secret create "$secret" "$work/token" >/dev/null
# --internal: the containers reach each other and nothing outside this machine.
"${podman[@]}" network create --internal "$net" >/dev/null
# --health-interval disable: podman's periodic checks need systemd timers; this script runs the check itself.
"${podman[@]}" run -d --name "$server" --network "$net" --network-alias edgeperf-server \
  --health-interval disable --secret "$secret,target=edgeperf-token,mode=0444" --cap-drop ALL \
  localhost/edgeperf-server:latest --no-warmup >/dev/null
for _ in $(seq 90); do
  if "${podman[@]}" healthcheck run "$server" >/dev/null 2>&1; then break; fi
  if [ "$("${podman[@]}" inspect -f '{{.State.Running}}' "$server")" != true ]; then
    "${podman[@]}" logs "$server" | tail -20; echo "e2e-container: the server container exited" >&2; exit 1
  fi
  sleep 2
done
"${podman[@]}" healthcheck run "$server" && echo "server container healthy (edgeperf-healthcheck)"
# Short runs that still pass LoadGen's early-stopping floor.
printf '%s\n' '*.*.min_duration = 2000' '*.SingleStream.min_query_count = 64' '*.SingleStream.target_latency = 1' \
  > "$work/user.conf"
chmod 0644 "$work/user.conf"
mkdir -p "$work/results" && chown 10001:10001 "$work/results"
# A run without the token is refused: the shipped default is authenticated.
rc=0
"${podman[@]}" run --rm --network "$net" -v "$work/user.conf:/conf/user.conf:ro" localhost/edgeperf-loadgen:latest \
  run --server edgeperf-server:8001 --model tiny --scenario SingleStream --user-conf /conf/user.conf \
  --out /tmp/r --no-progress >"$work/noauth.log" 2>&1 || rc=$?
if [ "$rc" -eq 0 ]; then echo "e2e-container: a run without the token was accepted" >&2; exit 1; fi
echo "without the token: exit $rc: $(tail -1 "$work/noauth.log")"
"${podman[@]}" run --rm --network "$net" --secret "$secret,type=env,target=EDGEPERF_AUTH_TOKEN" \
  -v "$work/user.conf:/conf/user.conf:ro" -v "$work/results:/results" --read-only --cap-drop ALL \
  localhost/edgeperf-loadgen:latest \
  run --server edgeperf-server:8001 --model tiny --scenario SingleStream --user-conf /conf/user.conf \
  --out /results/tiny --no-progress | tee "$work/run.log"
grep -E '^Result is : VALID$' "$work/results/tiny/mlperf_log_summary.txt"
grep -E '^(SUT name|Scenario|90th percentile latency|Result is)' "$work/results/tiny/mlperf_log_summary.txt"
