"""3D-UNet on KiTS19: kidney and tumour segmentation of whole CT cases by sliding-window inference."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgeperf.benchmarks._onnx import Precision
from edgeperf.benchmarks.base import AccuracyReport, BenchmarkSpec, Dataset, Size
from edgeperf.benchmarks.unet3d.accuracy import CaseScore, dice_scores, report
from edgeperf.benchmarks.unet3d.dataset import KitsDataset, SyntheticKits
from edgeperf.benchmarks.unet3d.model import write_model
from edgeperf.benchmarks.unet3d.spec import SPEC

__all__ = ["BENCHMARK", "SPEC", "Unet3dBenchmark"]


class Unet3dBenchmark:
    """The `3d-unet` benchmark (edgeperf.benchmarks.base.Benchmark)."""

    spec: BenchmarkSpec = SPEC

    def write_model(
        self,
        model_dir: Path,
        *,
        size: Size = "full",
        from_file: Path | None = None,
        precision: Precision = "fp32",
    ) -> None:
        """See `edgeperf.benchmarks.unet3d.model.write_model`; `precision` picks an FP16 or int8 variant."""
        write_model(model_dir, size=size, from_file=from_file, precision=precision)

    def open_dataset(self, source: str, *, size: Size = "full") -> Dataset:
        """`synthetic[:COUNT]` (default COUNT: the QSL size for full, 4 for small) or the reference's
        preprocessed folder (`preprocessed_files.pkl` and `case_XXXXX.pkl`).

        Raises:
            ValueError: a bad COUNT.
            KitsDataError: the folder is not in the reference's layout.
        """
        if source == "synthetic" or source.startswith("synthetic:"):
            _, _, count = source.partition(":")
            default = SPEC.qsl_size if size == "full" else 4
            try:
                n = int(count) if count else default
            except ValueError:
                raise ValueError(f"synthetic COUNT must be an integer, not {count!r}") from None
            return SyntheticKits(n, size)
        return KitsDataset(Path(source))

    def accuracy(
        self, dataset: Dataset, results: Sequence[tuple[int, bytes]], *, size: Size = "full"
    ) -> AccuracyReport:
        """Mean DICE of the logged segmentations against the dataset's ground truth, and the gate.

        Raises:
            TypeError: `dataset` did not come from `open_dataset`.
            ValueError: a response's size does not match its case, or an index is out of range.
        """
        if not isinstance(dataset, KitsDataset | SyntheticKits):
            raise TypeError(f"3d-unet scores its own datasets, not {type(dataset).__name__}")
        scores: list[CaseScore] = []
        seen: set[int] = set()
        for index, data in results:
            if index in seen:
                continue  # LoadGen may log a sample more than once; the first response counts
            seen.add(index)
            if not 0 <= index < len(dataset):
                raise ValueError(f"qsl_idx {index} is outside the dataset of {len(dataset)} cases")
            shape = dataset.shape(index)
            if len(data) != int(np.prod(shape)):
                raise ValueError(
                    f"response for case {index} has {len(data)} bytes, its shape {shape} needs {int(np.prod(shape))}"
                )
            prediction = np.frombuffer(data, dtype=np.uint8).reshape(shape)
            kidney, tumor = dice_scores(prediction, dataset.label(index))
            scores.append(CaseScore(case=dataset.case_name(index), kidney=kidney, tumor=tumor))
        return report(
            scores,
            reference=dataset.reference_value,
            fractions=SPEC.quality.fractions,
            total_cases=len(dataset),
        )


BENCHMARK = Unet3dBenchmark()
