"""Sliding-window inference over a whole case, as the KiTS19 reference does it.

mlcommons/inference v2.1 `vision/medical_imaging/3d-unet-kits19/inference_utils.py` and `base_SUT.py`:
window origins step by int(roi * (1 - overlap)) from 0 while a whole patch fits; each patch's network
output is multiplied by a Gaussian importance patch (scipy.signal.gaussian(roi, 0.125 * roi) as an outer
product over three axes, cube-rooted, divided by its maximum) and added into a result volume, the patch
itself into a normalisation map; at the end result / norm_map is arg-maxed over the class axis into uint8.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["PatchFn", "gaussian_importance", "sliding_window_inference", "window_origins"]

PatchFn = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]
"""Runs the network on [B, 1, R, R, R] patches and returns [B, C, R, R, R] scores."""


def gaussian_importance(roi: int) -> npt.NDArray[np.float32]:
    """The [roi, roi, roi] importance patch, maximum 1.0."""
    # scipy.signal.gaussian(M, std): exp(-0.5 * ((n - (M - 1) / 2) / std) ** 2) for n = 0..M-1
    n = np.arange(roi, dtype=np.float64) - (roi - 1) / 2.0
    g1 = np.exp(-0.5 * (n / (0.125 * roi)) ** 2)
    g3 = np.cbrt(np.einsum("i,j,k->ijk", g1, g1, g1))
    g3 /= g3.max()
    out: npt.NDArray[np.float32] = g3.astype(np.float32)
    return out


def window_origins(shape: tuple[int, int, int], roi: int, overlap: float) -> Iterator[tuple[int, int, int]]:
    """Patch origins (i, j, k) in the reference's order (depth-major)."""
    stride = int(roi * (1 - overlap))
    counts = [(s - roi) // stride + 1 for s in shape]
    for i in range(0, stride * counts[0], stride):
        for j in range(0, stride * counts[1], stride):
            for k in range(0, stride * counts[2], stride):
                yield i, j, k


def check_volume_shape(shape: tuple[int, ...], roi: int, overlap: float) -> tuple[int, int, int]:
    """The spatial shape of a [1, D, H, W] case the windows cover exactly.

    Raises:
        ValueError: not [1, D, H, W], an edge below `roi`, or (edge - roi) not a multiple of the stride
            (the reference's preprocessing guarantees both; without it voxels stay uncovered).
    """
    stride = int(roi * (1 - overlap))
    if len(shape) != 4 or shape[0] != 1:
        raise ValueError(f"a case is [1, D, H, W], not {list(shape)}")
    spatial = (int(shape[1]), int(shape[2]), int(shape[3]))
    if any(s < roi or (s - roi) % stride for s in spatial):
        raise ValueError(
            f"case edges {list(spatial)} must be at least {roi} and {roi} plus a multiple of {stride}; "
            "preprocess the case as the KiTS19 reference does"
        )
    return spatial


def sliding_window_inference(
    image: npt.NDArray[Any],
    run_patch: PatchFn,
    *,
    roi: int,
    overlap: float,
    num_classes: int = 3,
    patch_batch: int = 1,
) -> npt.NDArray[np.uint8]:
    """Segment a preprocessed case [1, D, H, W] into uint8 labels [1, D, H, W].

    Args:
        patch_batch: patches per network run (1, as the reference; more for accelerators). The scores are
            added in window order whatever the batch, so the result does not depend on it.

    Raises:
        ValueError: see `check_volume_shape`.
    """
    spatial = check_volume_shape(tuple(image.shape), roi, overlap)
    volume = np.ascontiguousarray(image, dtype=np.float32)[np.newaxis]  # [1, 1, D, H, W]
    result = np.zeros((num_classes, *spatial), dtype=np.float32)
    # NOTE: the reference keeps 3 identical channels of norm_map; one broadcast channel is the same maths.
    norm_map = np.zeros(spatial, dtype=np.float32)
    patch_weight = gaussian_importance(roi)
    windows = [
        (slice(i, i + roi), slice(j, j + roi), slice(k, k + roi))
        for i, j, k in window_origins(spatial, roi, overlap)
    ]
    for start in range(0, len(windows), max(1, patch_batch)):
        group = windows[start : start + max(1, patch_batch)]
        patches = np.concatenate([volume[(..., *window)] for window in group])
        scores = run_patch(np.ascontiguousarray(patches))
        for n, window in enumerate(group):
            result[(slice(None), *window)] += scores[n] * patch_weight
            norm_map[window] += patch_weight
    result /= norm_map
    labels: npt.NDArray[np.uint8] = np.argmax(result, axis=0).astype(np.uint8)[np.newaxis]
    return labels
