"""The tiny overhead model (INPUT0 FP32 [-1, 16] -> OUTPUT0 = 2 * INPUT0 + 1) and its fixed-delay variant."""

from __future__ import annotations

from edgeperf.benchmarks._common import PackagedBenchmark
from edgeperf.benchmarks.tiny.accuracy import score
from edgeperf.benchmarks.tiny.dataset import TinyDataset, open_dataset
from edgeperf.benchmarks.tiny.model import write_delay_model, write_model
from edgeperf.benchmarks.tiny.spec import SPEC

__all__ = ["BENCHMARK", "SPEC", "TinyBenchmark", "write_delay_model", "write_model"]


class TinyBenchmark(PackagedBenchmark[TinyDataset]):
    """`edgeperf.benchmarks.base.Benchmark` for the tiny model; `write_model` takes only fp32."""


BENCHMARK = TinyBenchmark(
    spec=SPEC, write_model=write_model, open_dataset=open_dataset, score=score, dataset_types=(TinyDataset,)
)
