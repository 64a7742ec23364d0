"""Fixtures shared by the benchmark packages' tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnxruntime as ort
import pytest


@pytest.fixture
def make_session() -> Callable[[Path], Any]:
    """What the server's pipeline runtime passes to a pipeline factory: a CPU session for a graph file."""

    def make(path: Path) -> Any:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    return make
