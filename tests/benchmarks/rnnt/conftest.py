"""Fixtures for the RNN-T tests: the small stand-in written once, a tiny dev-clean folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeperf.benchmarks.rnnt import BENCHMARK
from tests.benchmarks.rnnt._libri import write_dev_clean


@pytest.fixture
def dev_clean(tmp_path: Path) -> Path:
    return write_dev_clean(tmp_path)


@pytest.fixture(scope="session")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository folder `rnnt` holding the small stand-in."""
    model_dir = tmp_path_factory.mktemp("repo") / "rnnt"
    BENCHMARK.write_model(model_dir, size="small")
    return model_dir
