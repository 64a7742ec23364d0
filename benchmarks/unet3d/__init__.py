"""3D-UNet on KiTS19: kidney and tumour segmentation of whole CT cases by sliding-window inference."""

from __future__ import annotations

from edgeperf.benchmarks._common import PackagedBenchmark, lazy_model_writer
from edgeperf.benchmarks.unet3d.accuracy import score
from edgeperf.benchmarks.unet3d.dataset import KitsDataset
from edgeperf.benchmarks.unet3d.spec import SPEC
from edgeperf.benchmarks.unet3d.standin import SyntheticKits, open_dataset

__all__ = ["BENCHMARK", "SPEC", "Unet3dBenchmark"]


class Unet3dBenchmark(PackagedBenchmark[KitsDataset | SyntheticKits]):
    """The `3d-unet` benchmark: `edgeperf.benchmarks.unet3d.standin.open_dataset`, `.model.write_model`
    (`precision` picks an FP16 or int8 variant) and `.accuracy.score` (mean DICE and the gate)."""


BENCHMARK = Unet3dBenchmark(
    spec=SPEC,
    write_model=lazy_model_writer("edgeperf.benchmarks.unet3d.model"),
    open_dataset=open_dataset,
    score=score,
    dataset_types=(KitsDataset, SyntheticKits),
)
