"""The tiny overhead model: INPUT0 FP32 [-1, 16] -> OUTPUT0 = INPUT0 * 2 + 1, max_batch_size 64."""

from __future__ import annotations

from edgeperf.benchmarks.base import BenchmarkSpec, QualityTarget
from edgeperf.protos.kserve import TensorSpec

__all__ = ["FEATURES", "INPUT_NAME", "MAX_BATCH_SIZE", "OUTPUT_NAME", "SPEC"]

INPUT_NAME = "INPUT0"
OUTPUT_NAME = "OUTPUT0"
FEATURES = 16
"""Elements per sample."""
MAX_BATCH_SIZE = 64
SCALE = 2.0
OFFSET = 1.0
"""OUTPUT0 = INPUT0 * SCALE + OFFSET."""

SPEC = BenchmarkSpec(
    name="tiny",
    mlperf_model="tiny",
    inputs=(TensorSpec(name=INPUT_NAME, datatype="FP32", shape=(FEATURES,)),),
    outputs=(TensorSpec(name=OUTPUT_NAME, datatype="FP32", shape=(FEATURES,)),),
    qsl_size=1024,
    dataset_size=1024,
    quality=QualityTarget(metric="match", reference_value=1.0, fractions=(0.99,)),
    edge_scenarios=("SingleStream", "MultiStream", "Offline"),
    server_latency_ns=10_000_000,
    response_outputs=(OUTPUT_NAME,),
)
