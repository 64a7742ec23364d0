"""MLPerf RetinaNet 800x800 on OpenImages: spec, stand-in and official model, dataset, COCO mAP."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgeperf.benchmarks._images import DatasetError
from edgeperf.benchmarks._onnx import Precision
from edgeperf.benchmarks.base import AccuracyReport, BenchmarkSpec, Dataset, Size
from edgeperf.benchmarks.retinanet.accuracy import score
from edgeperf.benchmarks.retinanet.dataset import OpenImagesDataset, SyntheticOpenImages, open_dataset
from edgeperf.benchmarks.retinanet.model import write_model
from edgeperf.benchmarks.retinanet.spec import SPEC

__all__ = ["BENCHMARK", "SPEC", "RetinaNetBenchmark"]


class RetinaNetBenchmark:
    """`edgeperf.benchmarks.base.Benchmark` for RetinaNet; `write_model` also takes `precision`."""

    spec: BenchmarkSpec = SPEC

    def write_model(
        self,
        model_dir: Path,
        *,
        size: Size = "full",
        from_file: Path | None = None,
        precision: Precision = "fp32",
    ) -> None:
        write_model(model_dir, size=size, from_file=from_file, precision=precision)

    def open_dataset(self, source: str, *, size: Size = "full") -> Dataset:
        return open_dataset(source, size=size)

    def accuracy(
        self, dataset: Dataset, results: Sequence[tuple[int, bytes]], *, size: Size = "full"
    ) -> AccuracyReport:
        if not isinstance(dataset, OpenImagesDataset | SyntheticOpenImages):
            raise DatasetError(f"RetinaNet accuracy needs a RetinaNet dataset, got {type(dataset).__name__}")
        return score(dataset, results)


BENCHMARK = RetinaNetBenchmark()
