"""Accuracy of the tiny model: the fraction of responses equal to the FP32 formula within 1e-5."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgeperf.benchmarks.base import AccuracyReport
from edgeperf.benchmarks.tiny.dataset import TinyDataset
from edgeperf.benchmarks.tiny.spec import SPEC

__all__ = ["TOLERANCE", "score"]

TOLERANCE = 1e-5


def score(dataset: TinyDataset, results: Sequence[tuple[int, bytes]]) -> AccuracyReport:
    """Compare each response (raw little-endian FP32 bytes) with INPUT0 * 2 + 1."""
    matched = 0
    for index, data in results:
        got = np.frombuffer(data, dtype="<f4")
        want = dataset.expected(index)
        if got.shape == want.shape and np.allclose(got, want, rtol=0.0, atol=TOLERANCE):
            matched += 1
    value = matched / len(results) if results else 0.0
    target = SPEC.quality.reference_value * SPEC.quality.fractions[0]
    passed = bool(results) and value >= target
    text = (
        f"match={100 * value:.3f}%, matched={matched}, total={len(results)}\n"
        f"{'PASS' if passed else 'FAIL'} match {value:.5f} target {target:.5f}\n"
    )
    return AccuracyReport(metric="match", value=value, target=target, passed=passed, text=text)
