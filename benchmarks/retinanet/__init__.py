"""MLPerf RetinaNet 800x800 on OpenImages: spec, stand-in and official model, dataset, COCO mAP."""

from __future__ import annotations

from edgeperf.benchmarks._common import PackagedBenchmark, lazy_model_writer
from edgeperf.benchmarks.base import Size
from edgeperf.benchmarks.reference_payload import retinanet_payload
from edgeperf.benchmarks.retinanet.accuracy import score
from edgeperf.benchmarks.retinanet.dataset import OpenImagesDataset
from edgeperf.benchmarks.retinanet.spec import IMAGE_SIZE, SPEC
from edgeperf.benchmarks.retinanet.standin import SyntheticOpenImages, open_dataset

__all__ = ["BENCHMARK", "SPEC", "RetinaNetBenchmark"]


def _payload(raw: bytes, qsl_idx: int, *, size: Size) -> bytes:
    return retinanet_payload(raw, qsl_idx, side=IMAGE_SIZE[size])


class RetinaNetBenchmark(PackagedBenchmark[OpenImagesDataset | SyntheticOpenImages]):
    """`edgeperf.benchmarks.base.Benchmark` for RetinaNet; `write_model` also takes `precision`."""


BENCHMARK = RetinaNetBenchmark(
    spec=SPEC,
    write_model=lazy_model_writer("edgeperf.benchmarks.retinanet.model"),
    open_dataset=open_dataset,
    score=score,
    dataset_types=(OpenImagesDataset, SyntheticOpenImages),
    log_payload=_payload,
)
