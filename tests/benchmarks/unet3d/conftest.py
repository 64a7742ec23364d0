"""Fixtures for the 3D-UNet tests: the small stand-in written once, a tiny preprocessed KiTS19 folder."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from edgeperf.benchmarks.unet3d import BENCHMARK
from tests.benchmarks.unet3d._kits import CASES, case_arrays


@pytest.fixture
def kits_dir(tmp_path: Path) -> Path:
    root = tmp_path / "preprocessed_data"
    root.mkdir()
    aux = {}
    for case in CASES:
        image, label = case_arrays(case)
        with (root / f"{case}.pkl").open("wb") as fh:
            pickle.dump([image, label], fh)
        aux[case] = {"case": case, "image_shape": image.shape, "reshaped_affine": np.eye(4)}
    with (root / "preprocessed_files.pkl").open("wb") as fh:
        pickle.dump({"file_list": list(CASES), "cases": aux}, fh)
    return root


@pytest.fixture(scope="session")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository folder `3d-unet` holding the small stand-in."""
    model_dir = tmp_path_factory.mktemp("repo") / "3d-unet"
    BENCHMARK.write_model(model_dir, size="small")
    return model_dir
