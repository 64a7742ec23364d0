"""MLPerf ResNet50-v1.5 on ImageNet: spec, stand-in and official model, dataset, top-1 accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgeperf.benchmarks._images import DatasetError
from edgeperf.benchmarks.base import AccuracyReport, BenchmarkSpec, Dataset, Size
from edgeperf.benchmarks.resnet50.accuracy import score
from edgeperf.benchmarks.resnet50.dataset import ImagenetDataset, SyntheticImagenet, open_dataset
from edgeperf.benchmarks.resnet50.model import Precision, write_model
from edgeperf.benchmarks.resnet50.spec import SPEC

__all__ = ["BENCHMARK", "SPEC", "ResNet50Benchmark"]


class ResNet50Benchmark:
    """`edgeperf.benchmarks.base.Benchmark` for ResNet50; `write_model` also takes `precision`."""

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
        if not isinstance(dataset, ImagenetDataset | SyntheticImagenet):
            raise DatasetError(f"ResNet50 accuracy needs a ResNet50 dataset, got {type(dataset).__name__}")
        return score(dataset, results)


BENCHMARK = ResNet50Benchmark()
