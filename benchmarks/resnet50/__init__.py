"""MLPerf ResNet50-v1.5 on ImageNet: spec, stand-in and official model, dataset, top-1 accuracy."""

from __future__ import annotations

from edgeperf.benchmarks._common import PackagedBenchmark, lazy_model_writer
from edgeperf.benchmarks.base import Size
from edgeperf.benchmarks.reference_payload import resnet50_payload
from edgeperf.benchmarks.resnet50.accuracy import score
from edgeperf.benchmarks.resnet50.dataset import ImagenetDataset
from edgeperf.benchmarks.resnet50.spec import SPEC
from edgeperf.benchmarks.resnet50.standin import SyntheticImagenet, open_dataset

__all__ = ["BENCHMARK", "SPEC", "ResNet50Benchmark"]


def _payload(raw: bytes, qsl_idx: int, *, size: Size) -> bytes:
    return resnet50_payload(raw, qsl_idx)


class ResNet50Benchmark(PackagedBenchmark[ImagenetDataset | SyntheticImagenet]):
    """`edgeperf.benchmarks.base.Benchmark` for ResNet50; `write_model` also takes `precision`."""


BENCHMARK = ResNet50Benchmark(
    spec=SPEC,
    write_model=lazy_model_writer("edgeperf.benchmarks.resnet50.model"),
    open_dataset=open_dataset,
    score=score,
    dataset_types=(ImagenetDataset, SyntheticImagenet),
    log_payload=_payload,
)
