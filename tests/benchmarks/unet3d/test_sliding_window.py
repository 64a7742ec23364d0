"""Sliding-window inference: the Gaussian importance patch, window origins, and the assembled labels."""

from __future__ import annotations

import numpy as np
import pytest

from edgeperf.benchmarks.unet3d.sliding_window import (
    gaussian_importance,
    sliding_window_inference,
    window_origins,
)


def test_gaussian_importance_matches_the_reference_recipe() -> None:
    g = gaussian_importance(32)
    assert g.shape == (32, 32, 32) and g.dtype == np.float32
    assert g.max() == pytest.approx(1.0)
    # scipy.signal.gaussian(32, 4) at n = 0 is exp(-0.5 * (15.5 / 4) ** 2); the 3-D patch is the cube root
    # of the product of three such factors, so a corner is that value over the centre's.
    edge = np.exp(-0.5 * (15.5 / 4.0) ** 2)
    centre = np.exp(-0.5 * (0.5 / 4.0) ** 2)
    assert g[0, 0, 0] == pytest.approx(edge / centre, rel=1e-5)
    assert g[15, 16, 0] == pytest.approx((edge / centre) ** (1 / 3), rel=1e-5)
    assert np.array_equal(g, g[::-1, :, :]) and np.array_equal(g, g.transpose(2, 1, 0))


def test_window_origins_step_half_a_patch_depth_first() -> None:
    origins = list(window_origins((64, 48, 32), 32, 0.5))
    assert origins == [(0, 0, 0), (0, 16, 0), (16, 0, 0), (16, 16, 0), (32, 0, 0), (32, 16, 0)]


def test_labels_come_from_the_weighted_class_scores() -> None:
    # A fake network: class k scores -|x - k|, so the argmax is the class nearest each voxel's value,
    # whatever the windows and weights. The result must reproduce that everywhere.
    rng = np.random.default_rng(1)
    image = rng.uniform(-0.4, 2.4, size=(1, 48, 64, 32)).astype(np.float32)
    calls = []

    def patch_fn(patch: np.ndarray) -> np.ndarray:
        calls.append(patch.shape)
        return np.concatenate([-np.abs(patch - k) for k in range(3)], axis=1).astype(np.float32)

    labels = sliding_window_inference(image, patch_fn, roi=32, overlap=0.5)
    assert labels.shape == (1, 48, 64, 32) and labels.dtype == np.uint8
    assert np.array_equal(labels, np.clip(np.rint(image), 0, 2).astype(np.uint8))
    assert calls == [(1, 1, 32, 32, 32)] * (2 * 3 * 1)


def test_overlapping_windows_are_weighted_by_the_gaussian() -> None:
    # Each window says "class 1" only on its own origin voxel's half; the weighting decides ties between
    # windows: where two windows disagree, the one whose centre is nearer wins.
    image = np.zeros((1, 32, 32, 48), dtype=np.float32)

    calls: list[int] = []

    def patch_fn(patch: np.ndarray) -> np.ndarray:
        out = np.zeros((1, 3, 32, 32, 32), dtype=np.float32)
        out[0, 1] = 1.0 if not calls else 0.0  # first window (k=0) votes 1, second (k=16) votes 0
        out[0, 0] = 1.0 - out[0, 1]
        calls.append(1)
        return out

    labels = sliding_window_inference(image, patch_fn, roi=32, overlap=0.5)
    # Overlap is k in [16, 32): the first window's centre is at 15.5, the second's at 31.5.
    assert (labels[0, :, :, :16] == 1).all() and (labels[0, :, :, 32:] == 0).all()
    assert (labels[0, 16, 16, 16:24] == 1).all() and (labels[0, 16, 16, 24:32] == 0).all()


@pytest.mark.parametrize("shape", [(1, 16, 32, 32), (1, 40, 32, 32), (32, 32, 32), (2, 32, 32, 32)])
def test_cases_the_windows_cannot_cover_are_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="case"):
        sliding_window_inference(np.zeros(shape, np.float32), lambda p: p, roi=32, overlap=0.5)


def test_batching_patches_changes_nothing() -> None:
    rng = np.random.default_rng(2)
    image = rng.standard_normal((1, 48, 48, 64)).astype(np.float32)
    weights = rng.standard_normal(3).astype(np.float32)
    shapes: list[tuple[int, ...]] = []

    def patch_fn(patch: np.ndarray) -> np.ndarray:
        shapes.append(patch.shape)
        return np.concatenate([np.sin(patch * w) for w in weights], axis=1)

    one = sliding_window_inference(image, patch_fn, roi=32, overlap=0.5)
    shapes.clear()
    four = sliding_window_inference(image, patch_fn, roi=32, overlap=0.5, patch_batch=4)
    assert np.array_equal(one, four)
    assert [s[0] for s in shapes] == [4, 4, 4] and all(s[1:] == (1, 32, 32, 32) for s in shapes)
