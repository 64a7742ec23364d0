"""The delay model: a pipeline that sleeps a fixed service time and answers like the tiny model."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgeperf.benchmarks.tiny.model import DELAY_FILE
from edgeperf.benchmarks.tiny.spec import INPUT_NAME, OFFSET, OUTPUT_NAME, SCALE

__all__ = ["DelayPipeline", "build"]


class DelayPipeline:
    """Sleeps `service_time_us + per_sample_us * batch`, then returns INPUT0 * 2 + 1."""

    def __init__(self, service_time_us: int, per_sample_us: int = 0) -> None:
        self.service_time_us = service_time_us
        self.per_sample_us = per_sample_us

    def run(
        self, inputs: Mapping[str, npt.NDArray[Any]], output_names: Sequence[str]
    ) -> dict[str, npt.NDArray[Any]]:
        x = inputs[INPUT_NAME]
        batch = x.shape[0] if x.ndim > 1 else 1
        time.sleep((self.service_time_us + self.per_sample_us * batch) / 1e6)
        y = (x * np.float32(SCALE) + np.float32(OFFSET)).astype(np.float32)
        return {name: y for name in output_names if name == OUTPUT_NAME}

    def close(self) -> None:
        pass


def build(version_dir: Path, make_session: Callable[[Path], Any]) -> DelayPipeline:
    """Pipeline factory (config parameter `pipeline: "edgeperf.benchmarks.tiny.pipeline:build"`)."""
    settings = json.loads((version_dir / DELAY_FILE).read_text(encoding="utf-8"))
    return DelayPipeline(int(settings["service_time_us"]), int(settings.get("per_sample_us", 0)))
