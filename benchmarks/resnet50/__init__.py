"""MLPerf ResNet50-v1.5 on ImageNet: spec, stand-in and official model, dataset, top-1 accuracy."""

from __future__ import annotations

from edgeperf.benchmarks._common import PackagedBenchmark
from edgeperf.benchmarks.resnet50.accuracy import score
from edgeperf.benchmarks.resnet50.dataset import ImagenetDataset, SyntheticImagenet, open_dataset
from edgeperf.benchmarks.resnet50.model import write_model
from edgeperf.benchmarks.resnet50.spec import SPEC

__all__ = ["BENCHMARK", "SPEC", "ResNet50Benchmark"]


class ResNet50Benchmark(PackagedBenchmark[ImagenetDataset | SyntheticImagenet]):
    """`edgeperf.benchmarks.base.Benchmark` for ResNet50; `write_model` also takes `precision`."""


BENCHMARK = ResNet50Benchmark(
    spec=SPEC,
    write_model=write_model,
    open_dataset=open_dataset,
    score=score,
    dataset_types=(ImagenetDataset, SyntheticImagenet),
)
