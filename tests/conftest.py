"""Fixtures shared by every suite."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _clean_edgeperf_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A developer's EDGEPERF_* variables must not change what a test sees.
    for key in list(os.environ):
        if key.startswith("EDGEPERF_"):
            monkeypatch.delenv(key)
    yield
