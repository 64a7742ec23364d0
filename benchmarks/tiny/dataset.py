"""Synthetic inputs for the tiny model: seeded uniform FP32 vectors."""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt

from edgeperf.benchmarks.base import Sample, Size
from edgeperf.benchmarks.tiny.spec import FEATURES, INPUT_NAME, OFFSET, SCALE, SPEC

__all__ = ["SYNTHETIC_SEED", "TinyDataset", "open_dataset"]

SYNTHETIC_SEED = 16
"""Sample i is numpy's default_rng((SYNTHETIC_SEED, i)).uniform(-1, 1, FEATURES) as FP32."""


class TinyDataset:
    """`count` synthetic samples and their expected outputs."""

    def __init__(self, count: int) -> None:
        if count < 1:
            raise ValueError(f"the tiny dataset needs at least one sample, got {count}")
        self.count = count

    def __len__(self) -> int:
        return self.count

    def input(self, index: int) -> npt.NDArray[np.float32]:
        if not 0 <= index < self.count:
            raise IndexError(f"sample {index} is outside 0..{self.count - 1}")
        rng = np.random.default_rng((SYNTHETIC_SEED, index))
        return rng.uniform(-1.0, 1.0, FEATURES).astype(np.float32)

    def sample(self, index: int) -> Sample:
        return {INPUT_NAME: self.input(index)}

    def expected(self, index: int) -> npt.NDArray[np.float32]:
        """The FP32 reference output of sample `index`."""
        return (self.input(index) * np.float32(SCALE) + np.float32(OFFSET)).astype(np.float32)


def open_dataset(source: str, *, size: Size = "full") -> TinyDataset:
    """`synthetic` (the QSL size) or `synthetic:COUNT`; the tiny model has no published dataset."""
    m = re.fullmatch(r"synthetic(?::(\d+))?", source)
    if m is None:
        raise ValueError(
            f"the tiny model only has synthetic data ('synthetic' or 'synthetic:COUNT'), not {source!r}"
        )
    return TinyDataset(int(m.group(1)) if m.group(1) else SPEC.qsl_size)
