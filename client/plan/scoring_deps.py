"""Whether this machine can score an accuracy run, checked before the run rather than found out after it.

Synthetic datasets are scored against the FP32 stand-in's own outputs (their `truth_from_standin`), which
the client computes with onnx and ONNX Runtime, the server extra; the `client` extra alone has neither.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from edgeperf.client.errors import RunSetupError

if TYPE_CHECKING:
    from edgeperf.benchmarks.base import Dataset

__all__ = ["check_can_score"]


def _missing_modules(*names: str) -> list[str]:
    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def check_can_score(dataset: Dataset, benchmark: str | None) -> None:
    """Raise `RunSetupError` (one line) when `dataset`'s ground truth needs modules this machine lacks."""
    if not getattr(dataset, "truth_from_standin", False):
        return
    missing = _missing_modules("onnx", "onnxruntime")
    if missing:
        raise RunSetupError(
            f"scoring the synthetic {benchmark} dataset needs the FP32 stand-in's outputs, computed "
            f"here with {' and '.join(missing)}: install them (the server extra: pip install '.[server]' from the checkout), or use "
            "the published dataset (--dataset PATH), or --mode PerformanceOnly"
        )
