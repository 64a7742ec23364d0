#!/usr/bin/env bash
# The GPU device check of issue 12 in one go: a venv with edgeperf[gpu], then tests/bench/bench_gpu.py
# (five full-size benchmarks, CUDA and TensorRT FP16, server on loopback vs in-process ONNX Runtime).
#
#   bash tests/bench/bench_gpu.sh [bench_gpu.py options, e.g. --benchmarks resnet50 bert --seconds 4]
#
# VENV=dir picks the venv (default .venv-gpu). WHEELS=dir installs offline from a folder of wheels. A
# system Python that already has onnxruntime-gpu (with CUDA), onnx, nvidia-ml-py and the server's other
# libraries is reused (--system-site-packages, edgeperf installed without dependencies), so a device
# without network access works too. Exits 2 at once when there is no NVIDIA GPU.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; then
    echo "bench_gpu.sh: no NVIDIA GPU here (nvidia-smi is missing or sees no device)" >&2
    exit 2
fi

VENV=${VENV:-.venv-gpu}
python3 -m venv --system-site-packages "$VENV"
ready='import sys, onnxruntime, onnx, pynvml, grpc, yaml, prometheus_client, grpc_health, grpc_reflection
sys.exit("CUDAExecutionProvider" not in onnxruntime.get_available_providers())'
if "$VENV/bin/python" -c "$ready" 2>/dev/null; then
    echo "bench_gpu.sh: using the onnxruntime-gpu this Python already has" >&2
    "$VENV/bin/pip" install -q --no-deps --no-build-isolation -e .
else
    pip_args=()
    if [ -n "${WHEELS:-}" ]; then pip_args=(--no-index --find-links "$WHEELS"); fi
    # NOTE: onnxruntime (CPU) and onnxruntime-gpu provide the same module; only the GPU one may be here.
    "$VENV/bin/pip" uninstall -q -y onnxruntime 2>/dev/null || true
    "$VENV/bin/pip" install -q "${pip_args[@]}" -e '.[gpu]'
fi
exec "$VENV/bin/python" -m tests.bench.bench_gpu "$@"
