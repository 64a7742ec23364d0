"""KiTS19 cases: the reference's preprocessed files, the preprocessing steps after resampling, synthetic cases.

The reference (mlcommons/inference v2.1 `vision/medical_imaging/3d-unet-kits19/preprocess.py`) resamples
each raw NIfTI case to 1.6 x 1.2 x 1.2 mm (nibabel + scipy zoom), then clips to [-79, 304] HU and
normalises with mean 101.0 and std 76.9, edge-pads every axis up to the 128 ROI, and crops or
constant-pads (-2.2) every axis to a multiple of the 64 stride (crop when the remainder is below 32).
It writes `<case>.pkl` holding `[image, label]` ([1, D, H, W] float32 and uint8) and
`preprocessed_files.pkl` holding `{"file_list": [case, ...], "cases": {case: aux}}` with
`aux["image_shape"]`. `KitsDataset` reads that folder; `preprocess_resampled` is the part after
resampling (resampling needs nibabel and scipy, which edgeperf does not depend on: run the reference's
preprocess.py for raw cases). The QSL order is `file_list`, as in the reference's `kits_QSL.py`.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np
import numpy.typing as npt

from edgeperf.benchmarks._common import DatasetError
from edgeperf.benchmarks.base import Sample, Size
from edgeperf.benchmarks.unet3d.config import config_for
from edgeperf.benchmarks.unet3d.spec import (
    CLIP_MAX_HU,
    CLIP_MIN_HU,
    MEAN_HU,
    OVERLAP,
    PADDING_VALUE,
    REFERENCE_DICE,
    ROI_SHAPE,
    SPEC,
    STD_HU,
)

__all__ = [
    "KitsDataError",
    "KitsDataset",
    "adjust_shape_for_sliding_window",
    "normalize_intensity",
    "pad_to_min_shape",
    "preprocess_resampled",
    "synthetic_hu_volume",
    "synthetic_image",
]

INPUT_NAME = SPEC.inputs[0].name
_SYNTHETIC_SEED = 1903  # fixed: the same COUNT and size give the same cases everywhere


class KitsDataError(DatasetError):
    """The KiTS19 folder is not in the reference's preprocessed layout; the message names the file."""


def normalize_intensity(image_hu: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """Clip to [-79, 304] HU, then (x - 101.0) / 76.9."""
    clipped = np.clip(image_hu.astype(np.float32), CLIP_MIN_HU, CLIP_MAX_HU)
    return ((clipped - MEAN_HU) / STD_HU).astype(np.float32)


def pad_to_min_shape(
    image: npt.NDArray[Any], label: npt.NDArray[Any], roi: int = ROI_SHAPE[0]
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Edge-pad each spatial axis of [1, D, H, W] arrays up to `roi`, split floor before / ceil after."""
    bounds = [max(0, roi - s) for s in image.shape[1:]]
    pads = [(0, 0)] + [(b // 2, b - b // 2) for b in bounds]
    return np.pad(image, pads, mode="edge"), np.pad(label, pads, mode="edge")


def adjust_shape_for_sliding_window(
    image: npt.NDArray[Any], label: npt.NDArray[Any], roi: int = ROI_SHAPE[0], overlap: float = OVERLAP
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Crop (remainder below half a stride) or constant-pad each spatial axis to a multiple of the stride."""
    stride = int(roi * (1 - overlap))
    shape = image.shape[1:]
    crops = [s % stride if s % stride < stride // 2 else 0 for s in shape]
    window = tuple(slice(c // 2, s - (c - c // 2)) for c, s in zip(crops, shape, strict=True))
    image, label = image[(slice(None), *window)], label[(slice(None), *window)]
    pads = [(stride - s % stride) % stride for s in image.shape[1:]]
    pads = [p if s + p >= roi else p + stride for p, s in zip(pads, image.shape[1:], strict=True)]
    widths = [(0, 0)] + [(p // 2, p - p // 2) for p in pads]
    image = np.pad(image, widths, mode="constant", constant_values=PADDING_VALUE)
    label = np.pad(label, widths, mode="constant", constant_values=0)
    return image, label


def preprocess_resampled(
    image_hu: npt.NDArray[Any], label: npt.NDArray[Any], *, roi: int = ROI_SHAPE[0], overlap: float = OVERLAP
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
    """The reference's steps after resampling: [D, H, W] HU and labels -> [1, D', H', W'] image and labels."""
    image = normalize_intensity(image_hu)[np.newaxis]
    labels = label.astype(np.uint8)[np.newaxis]
    image, labels = pad_to_min_shape(image, labels, roi)
    image, labels = adjust_shape_for_sliding_window(image, labels, roi, overlap)
    return image.astype(np.float32), labels.astype(np.uint8)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Loads the reference's pickles (lists, dicts, numpy arrays) and refuses any other class."""

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
            ("_codecs", "encode"),  # protocol 2 pickles carry array bytes as latin-1 text
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            if module.startswith("numpy.core.") and hasattr(np, "_core"):
                # NOTE: pickles from numpy 1 name numpy.core, which numpy 2 renamed (and warns about)
                module = "numpy._core." + module.removeprefix("numpy.core.")
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a KiTS19 pickle")


def _load_pickle(path: Path) -> Any:
    try:
        with path.open("rb") as fh:
            handle: BinaryIO = fh
            return _NumpyOnlyUnpickler(handle).load()
    except FileNotFoundError:
        raise KitsDataError(f"{path}: missing") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as exc:
        raise KitsDataError(f"{path}: not a KiTS19 preprocessed pickle ({exc})") from None


class KitsDataset:
    """The reference's preprocessed KiTS19 folder; ground truth from each case's label array."""

    reference_value = REFERENCE_DICE
    """The gate's FP32 reference: the official model's mean DICE on these cases."""

    def __init__(self, root: Path) -> None:
        index = _load_pickle(root / "preprocessed_files.pkl")
        if not isinstance(index, Mapping) or not isinstance(index.get("file_list"), list):
            raise KitsDataError(f"{root / 'preprocessed_files.pkl'}: no 'file_list'")
        self.root = root
        self.cases: tuple[str, ...] = tuple(str(c) for c in index["file_list"])
        aux = index.get("cases", {})
        self._shapes: dict[str, tuple[int, ...]] = {
            c: tuple(int(d) for d in a["image_shape"])
            for c, a in (aux.items() if isinstance(aux, Mapping) else ())
            if isinstance(a, Mapping) and "image_shape" in a
        }

    def __len__(self) -> int:
        return len(self.cases)

    def _case(self, index: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
        path = self.root / f"{self.cases[index]}.pkl"
        content = _load_pickle(path)
        if not isinstance(content, list | tuple) or len(content) != 2:
            raise KitsDataError(f"{path}: expected [image, label]")
        image, label = np.asarray(content[0], dtype=np.float32), np.asarray(content[1], dtype=np.uint8)
        if image.ndim != 4 or image.shape[0] != 1 or image.shape != label.shape:
            raise KitsDataError(
                f"{path}: image {image.shape} and label {label.shape} must both be [1, D, H, W]"
            )
        return image, label

    def sample(self, index: int) -> Sample:
        return {INPUT_NAME: self._case(index)[0]}

    def label(self, index: int) -> npt.NDArray[np.uint8]:
        """Ground-truth labels [1, D, H, W] of case `index` (0 background, 1 kidney, 2 tumour)."""
        return self._case(index)[1]

    def shape(self, index: int) -> tuple[int, ...]:
        """The case's [1, D, H, W] shape (from preprocessed_files.pkl when it records it)."""
        known = self._shapes.get(self.cases[index])
        return known if known is not None else tuple(self._case(index)[0].shape)

    def case_name(self, index: int) -> str:
        return self.cases[index]


def synthetic_hu_volume(index: int, size: Size) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
    """A CT-like volume in HU at target spacing, and the shapes it was drawn from (two kidneys, a tumour).

    Edges are drawn so the preprocessing has work to do (crop, constant pad, or edge pad): 96 to 199 for
    full size (128 or 192 after preprocessing), 24 to 63 for small (32 to 64).
    """
    roi = config_for(size).roi
    rng = np.random.default_rng([_SYNTHETIC_SEED, index, roi])
    # NOTE: full-size cases stay at most 192 per edge after preprocessing (8 patches), far below real
    # KiTS19 cases, so a synthetic accuracy run and its in-process ground truth stay affordable on a CPU.
    low, high = (roi - roi // 4, roi + roi // 2 + 8) if size == "full" else (roi - roi // 4, 2 * roi)
    shape = tuple(int(s) for s in rng.integers(low, high, size=3))
    grids = np.meshgrid(*(np.linspace(-1.0, 1.0, s, dtype=np.float32) for s in shape), indexing="ij")
    hu = -60.0 + 40.0 * rng.standard_normal(shape).astype(np.float32)
    for _ in range(3):  # soft tissue background: a few smooth waves
        freq = rng.uniform(1.0, 4.0, size=3)
        hu += 60.0 * np.sin(
            sum(f * g for f, g in zip(freq, grids, strict=True)) * np.pi + rng.uniform(0, 6.3)
        )
    label = np.zeros(shape, dtype=np.uint8)
    for side in (-0.45, 0.45):
        centre = np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2), side])
        radii = rng.uniform(0.15, 0.3, size=3)
        inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii, strict=True)) <= 1.0
        label[inside] = 1
        hu[inside] = 180.0 + 20.0 * rng.standard_normal(int(inside.sum())).astype(np.float32)
    tumour = sum(((g - c) / 0.1) ** 2 for g, c in zip(grids, (0.0, 0.0, 0.45), strict=True)) <= 1.0
    label[tumour] = 2
    hu[tumour] = 90.0
    return hu.astype(np.float32), label


def synthetic_image(index: int, size: Size) -> npt.NDArray[np.float32]:
    """Synthetic case `index` preprocessed as a resampled KiTS case is (the model's input)."""
    hu, label = synthetic_hu_volume(index, size)
    image, _ = preprocess_resampled(hu, label, roi=config_for(size).roi)
    return image
