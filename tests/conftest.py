"""Fixtures shared by every suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _clean_edgeperf_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A developer's EDGEPERF_* variables must not change what a test sees.
    for key in list(os.environ):
        if key.startswith("EDGEPERF_"):
            monkeypatch.delenv(key)
    yield


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Synthetic ground truth goes to a per-test folder, not ~/.cache."""
    path = tmp_path / "cache"
    monkeypatch.setenv("EDGEPERF_CACHE_DIR", str(path))
    return path
