"""The tiny overhead model (INPUT0 FP32 [-1, 16] -> OUTPUT0 = 2 * INPUT0 + 1) and its fixed-delay variant."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgeperf.benchmarks.base import AccuracyReport, BenchmarkSpec, Dataset, Size
from edgeperf.benchmarks.tiny.accuracy import score
from edgeperf.benchmarks.tiny.dataset import TinyDataset, open_dataset
from edgeperf.benchmarks.tiny.model import write_delay_model, write_model
from edgeperf.benchmarks.tiny.spec import SPEC

__all__ = ["BENCHMARK", "SPEC", "TinyBenchmark", "write_delay_model", "write_model"]


class TinyBenchmark:
    """`edgeperf.benchmarks.base.Benchmark` for the tiny model."""

    spec: BenchmarkSpec = SPEC

    def write_model(self, model_dir: Path, *, size: Size = "full", from_file: Path | None = None) -> None:
        write_model(model_dir, size=size, from_file=from_file)

    def open_dataset(self, source: str, *, size: Size = "full") -> Dataset:
        return open_dataset(source, size=size)

    def accuracy(
        self, dataset: Dataset, results: Sequence[tuple[int, bytes]], *, size: Size = "full"
    ) -> AccuracyReport:
        if not isinstance(dataset, TinyDataset):
            raise TypeError(f"tiny accuracy needs a tiny dataset, got {type(dataset).__name__}")
        return score(dataset, results)


BENCHMARK = TinyBenchmark()
