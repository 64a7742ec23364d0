"""ImageNet validation data for ResNet50: the published layout, the reference preprocessing, synthetic pixels.

Published layout (the reference's `imagenet.py`): a folder with `val_map.txt`, one line per image,
`ILSVRC2012_val_00000001.JPEG 65`, the file name relative to the folder and the 0-based label. The QSL
index of a sample is its line number in val_map.txt, as `accuracy-imagenet.py` assumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edgeperf.benchmarks._common import synthetic_count
from edgeperf.benchmarks._images import (
    DatasetError,
    SyntheticImages,
    center_crop,
    read_rgb,
    resize_with_aspectratio,
)
from edgeperf.benchmarks.base import Sample, Size
from edgeperf.benchmarks.resnet50.spec import CROP_FRACTION, IMAGE_SIZE, INPUT_NAME, MEANS_RGB

__all__ = [
    "SYNTHETIC_SEED",
    "ImagenetDataset",
    "SyntheticPixels",
    "normalize",
    "parse_synthetic",
    "preprocess",
    "read_val_map",
]

SYNTHETIC_SEED = 50_000
"""Seed of the synthetic images; image i uses numpy's generator seeded with (SYNTHETIC_SEED, i)."""
DEFAULT_SYNTHETIC_COUNT = 1024
"""`synthetic` without a count: the QSL size, so a performance run can load its full sample set."""

F32 = npt.NDArray[np.float32]


def preprocess(rgb: npt.NDArray[np.uint8], side: int = 224) -> F32:
    """The reference's pre_process_vgg on an RGB uint8 HWC image: float32 CHW, minus the channel means."""
    img = resize_with_aspectratio(rgb, side, side, scale_percent=CROP_FRACTION * 100.0)
    return normalize(center_crop(img, side, side))


def normalize(rgb: npt.NDArray[np.uint8]) -> F32:
    """The last steps of pre_process_vgg on a cropped image: float32, minus the channel means, CHW."""
    out = rgb.astype(np.float32) - np.asarray(MEANS_RGB, np.float32)
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def read_val_map(path: Path) -> list[tuple[str, int]]:
    """`(file name, label)` per line of val_map.txt.

    Raises:
        DatasetError: the file is missing or a line is not `NAME LABEL`.
    """
    if not path.is_file():
        raise DatasetError(f"{path}: no val_map.txt")
    entries: list[tuple[str, int]] = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        cols = line.split()
        if not cols:
            continue
        if len(cols) != 2 or not cols[1].lstrip("-").isdigit():
            raise DatasetError(f"{path}:{line_no}: expected 'FILE LABEL', got {line!r}")
        entries.append((cols[0], int(cols[1])))
    if not entries:
        raise DatasetError(f"{path}: no images listed")
    return entries


class ImagenetDataset:
    """ImageNet validation images in the published layout, preprocessed on demand as the reference does."""

    def __init__(self, root: Path, *, size: Size = "full") -> None:
        self.root = root
        self.side = IMAGE_SIZE[size]
        val_map = root / "val_map.txt" if root.is_dir() else root
        folder = val_map.parent
        self.entries = read_val_map(val_map)
        self.files = [folder / name for name, _ in self.entries]
        missing = [f for f in self.files if not f.is_file()]
        if missing:
            raise DatasetError(f"{val_map}: {len(missing)} listed images are missing, first {missing[0]}")
        self._labels = np.array([label for _, label in self.entries], np.int64)

    def __len__(self) -> int:
        return len(self.entries)

    def sample(self, index: int) -> Sample:
        return {INPUT_NAME: preprocess(read_rgb(self.files[index]), self.side)}

    def labels(self, indices: Sequence[int]) -> npt.NDArray[np.int64]:
        """Ground-truth labels (0-based, val_map.txt) of `indices`."""
        return self._labels[np.asarray(indices, np.int64)]


class SyntheticPixels(SyntheticImages):
    """Deterministic random images of any count, preprocessed for the model; no labels.

    Image i depends only on (seed, i, size). The stand-in builder calibrates on these; the scored
    synthetic set (`standin.SyntheticImagenet`) adds the FP32 stand-in's predictions as labels.
    """

    def __init__(self, count: int, *, size: Size = "full", seed: int = SYNTHETIC_SEED) -> None:
        super().__init__(count, size=size, side=IMAGE_SIZE[size], seed=seed)

    def sample(self, index: int) -> Sample:
        # NOTE: generated at the crop size, as a resized and centre-cropped photo would be: no resize or crop
        return {INPUT_NAME: normalize(self.image(index))}

    def batch(self, indices: Sequence[int]) -> F32:
        """Preprocessed samples of `indices` stacked along a new batch dimension."""
        return np.stack([normalize(self.image(i)) for i in indices])


def parse_synthetic(source: str) -> int | None:
    """The count of a `synthetic[:COUNT]` source, or None when `source` is not synthetic.

    Raises:
        DatasetError: `synthetic:` followed by something other than a positive integer.
    """
    return synthetic_count(source, default=DEFAULT_SYNTHETIC_COUNT)
