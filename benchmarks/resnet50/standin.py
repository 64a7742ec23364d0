"""Synthetic ImageNet scored against the FP32 stand-in: its images, the stand-in's labels, the opener.

Synthetic data needs the stand-in model for its ground truth and the stand-in builder needs synthetic
images for calibration; this module sits above both (`dataset` and `model` import only downward). The
model module, and with it onnx and ONNX Runtime, is imported only when labels are first needed, so a
performance run on synthetic data needs neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from edgeperf.benchmarks.base import Size
from edgeperf.benchmarks.resnet50.dataset import (
    SYNTHETIC_SEED,
    ImagenetDataset,
    SyntheticPixels,
    parse_synthetic,
)
from edgeperf.benchmarks.resnet50.spec import ARGMAX_NAME, INPUT_NAME, LABEL_OFFSET

__all__ = ["SyntheticImagenet", "open_dataset", "standin_labels"]


class SyntheticImagenet(SyntheticPixels):
    """Deterministic random images of any count; the labels are the FP32 stand-in's own predictions.

    Image i depends only on (seed, i, size). The labels are computed the first time `labels` needs them
    by running the FP32 stand-in of the same size (built from its fixed seed) in ONNX Runtime, so a
    reduced-precision variant served elsewhere is scored against what the FP32 model says.
    """

    truth_from_standin: ClassVar[bool] = True
    """Scoring needs the FP32 stand-in's outputs, computed with onnx and ONNX Runtime where it is scored."""

    def __init__(self, count: int, *, size: Size = "full", seed: int = SYNTHETIC_SEED) -> None:
        super().__init__(count, size=size, seed=seed)
        self._labels: dict[int, int] = {}

    def labels(self, indices: Sequence[int]) -> npt.NDArray[np.int64]:
        """The FP32 stand-in's top-1 (val_map space: ArgMax + offset) for `indices`, computed once each."""
        todo = sorted({int(i) for i in indices} - self._labels.keys())
        if todo:
            for index, label in zip(todo, standin_labels(self, todo), strict=True):
                self._labels[index] = int(label)
        return np.array([self._labels[int(i)] for i in indices], np.int64)


def standin_labels(dataset: SyntheticPixels, indices: Sequence[int]) -> npt.NDArray[np.int64]:
    """What the FP32 stand-in of the dataset's size predicts for `indices`, in val_map space."""
    # NOTE: imported here: labelling a synthetic set needs onnx and onnxruntime, a performance run does not.
    from edgeperf.benchmarks._onnx import ort_session
    from edgeperf.benchmarks.resnet50.model import standin_bytes

    session = ort_session(standin_bytes(dataset.size, "fp32"))
    out: list[npt.NDArray[np.int64]] = []
    for start in range(0, len(indices), 16):
        batch = dataset.batch(indices[start : start + 16])
        out.append(session.run([ARGMAX_NAME], {INPUT_NAME: batch})[0])
    return np.concatenate(out).astype(np.int64) + LABEL_OFFSET


def open_dataset(source: str, *, size: Size = "full") -> ImagenetDataset | SyntheticImagenet:
    """`synthetic[:COUNT]` or a folder (or val_map.txt) in the published layout."""
    count = parse_synthetic(source)
    if count is not None:
        return SyntheticImagenet(count, size=size)
    return ImagenetDataset(Path(source), size=size)
