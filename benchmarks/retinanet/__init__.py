"""MLPerf RetinaNet 800x800 on OpenImages: spec, stand-in and official model, dataset, COCO mAP."""

from __future__ import annotations

from edgeperf.benchmarks._common import PackagedBenchmark
from edgeperf.benchmarks.retinanet.accuracy import score
from edgeperf.benchmarks.retinanet.dataset import OpenImagesDataset, SyntheticOpenImages, open_dataset
from edgeperf.benchmarks.retinanet.model import write_model
from edgeperf.benchmarks.retinanet.spec import SPEC

__all__ = ["BENCHMARK", "SPEC", "RetinaNetBenchmark"]


class RetinaNetBenchmark(PackagedBenchmark[OpenImagesDataset | SyntheticOpenImages]):
    """`edgeperf.benchmarks.base.Benchmark` for RetinaNet; `write_model` also takes `precision`."""


BENCHMARK = RetinaNetBenchmark(
    spec=SPEC,
    write_model=write_model,
    open_dataset=open_dataset,
    score=score,
    dataset_types=(OpenImagesDataset, SyntheticOpenImages),
)
