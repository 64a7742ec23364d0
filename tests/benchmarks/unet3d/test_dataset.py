"""KiTS19 preprocessing after resampling, the reference's preprocessed folder, and synthetic cases."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from edgeperf.benchmarks.unet3d import BENCHMARK
from edgeperf.benchmarks.unet3d.dataset import (
    KitsDataError,
    KitsDataset,
    adjust_shape_for_sliding_window,
    normalize_intensity,
    pad_to_min_shape,
    preprocess_resampled,
)
from edgeperf.benchmarks.unet3d.standin import SyntheticKits
from tests.benchmarks._checks import synthetic_three
from tests.benchmarks.unet3d._kits import CASES, case_arrays


def test_intensity_is_clipped_and_standardised() -> None:
    hu = np.array([-1000.0, -79.0, 101.0, 304.0, 2000.0], dtype=np.float32)
    out = normalize_intensity(hu)
    expected = np.array([-180.0, -180.0, 0.0, 203.0, 203.0]) / 76.9
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_small_volumes_are_edge_padded_to_the_roi() -> None:
    image = np.arange(100 * 130 * 60, dtype=np.float32).reshape(1, 100, 130, 60)
    label = np.ones_like(image, dtype=np.uint8)
    padded, padded_label = pad_to_min_shape(image, label)
    assert padded.shape == (1, 128, 130, 128) and padded_label.shape == padded.shape
    # 28 missing in depth: 14 before, 14 after, repeating the edge slices; 68 in width: 34 and 34
    assert np.array_equal(padded[0, 0], padded[0, 14]) and np.array_equal(
        padded[0, 14, :, 34:94], image[0, 0]
    )
    assert np.array_equal(padded[0, 14:114, :, 34:94], image[0])
    assert (padded_label == 1).all()


def test_edges_are_cropped_or_padded_to_the_stride() -> None:
    # 150 % 64 = 22 < 32: crop 11 + 11 to 128; 200 % 64 = 8: crop 4 + 4 to 192; 180 % 64 = 52: pad 6 + 6 to 192.
    image = np.ones((1, 150, 200, 180), dtype=np.float32)
    label = np.ones((1, 150, 200, 180), dtype=np.uint8)
    out, out_label = adjust_shape_for_sliding_window(image, label)
    assert out.shape == (1, 128, 192, 192) == out_label.shape
    assert out[0, 0, 0, 5] == pytest.approx(-2.2) and out[0, 0, 0, 6] == 1.0
    assert out[0, 0, 0, 186] == pytest.approx(-2.2) and out[0, 0, 0, 185] == 1.0
    assert out_label[0, 0, 0, 5] == 0 and out_label[0, 0, 0, 6] == 1


def test_preprocess_resampled_gives_a_sliding_window_friendly_case() -> None:
    hu = np.full((70, 90, 130), 101.0, dtype=np.float32)
    image, label = preprocess_resampled(hu, np.zeros(hu.shape, np.uint8))
    assert image.shape == (1, 128, 128, 128) and image.dtype == np.float32 and label.dtype == np.uint8
    assert image[0, 64, 64, 64] == 0.0  # 101 HU is the mean


def test_reference_folder_loads_in_file_list_order(kits_dir: Path) -> None:
    dataset = KitsDataset(kits_dir)
    assert len(dataset) == 2 and dataset.cases == CASES
    image, label = case_arrays("case_00001")
    sample = dataset.sample(0)
    assert list(sample) == ["image"] and sample["image"].dtype == np.float32
    assert np.array_equal(sample["image"], image)
    assert np.array_equal(dataset.label(0), label)
    assert dataset.shape(1) == (1, 48, 32, 32) and dataset.case_name(1) == "case_00000"
    assert isinstance(BENCHMARK.open_dataset(str(kits_dir)), KitsDataset)


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("should never run",))


def test_pickles_holding_other_objects_are_refused(kits_dir: Path) -> None:
    with (kits_dir / "case_00000.pkl").open("wb") as fh:
        pickle.dump([_Evil(), 1], fh)
    dataset = KitsDataset(kits_dir)
    with pytest.raises(KitsDataError, match="refusing"):
        dataset.sample(1)


def test_a_folder_without_the_index_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KitsDataError, match=r"preprocessed_files\.pkl"):
        KitsDataset(tmp_path)


def test_synthetic_cases_are_deterministic_and_conform(cache_dir: Path) -> None:
    _, images = synthetic_three(BENCHMARK, SyntheticKits, "image")
    for image in images:
        assert image.dtype == np.float32 and image.ndim == 4 and image.shape[0] == 1
        assert all(s >= 32 and s % 16 == 0 for s in image.shape[1:])
    assert len(BENCHMARK.open_dataset("synthetic", size="small")) == 4
    with pytest.raises(ValueError, match="COUNT"):
        BENCHMARK.open_dataset("synthetic:x", size="small")


def test_pickles_written_by_numpy_1_load(kits_dir: Path) -> None:
    image, label = case_arrays(CASES[1])
    data = pickle.dumps([image, label], protocol=2)
    # protocol 2 names classes as text; numpy 1 wrote numpy.core where numpy 2 writes numpy._core
    legacy = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in legacy
    (kits_dir / f"{CASES[1]}.pkl").write_bytes(legacy)
    assert np.array_equal(KitsDataset(kits_dir).sample(1)["image"], image)
