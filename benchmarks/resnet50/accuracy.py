"""Top-1 accuracy of ResNet50 responses, in the format of the reference's accuracy-imagenet.py.

A logged payload is what the reference SUT logs (`reference_payload.resnet50_payload`): float32(ArgMax
- 1), the 0-based val_map.txt label; accuracy-imagenet.py reads it with its default `--dtype float32`,
takes `int(data[0])`, and counts only the first response per QSL index, as `score` does.

The gate: on the real dataset, top-1 >= 99% of 76.46. On the synthetic dataset the ground truth is the
FP32 stand-in's own top-1, whose score on it is 100% by construction, so the target is 99% of 100.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgeperf.benchmarks._common import DatasetError, first_responses
from edgeperf.benchmarks.base import AccuracyReport
from edgeperf.benchmarks.resnet50.dataset import ImagenetDataset
from edgeperf.benchmarks.resnet50.spec import SPEC
from edgeperf.benchmarks.resnet50.standin import SyntheticImagenet

__all__ = ["decode_label", "gate_line", "score"]

SYNTHETIC_REFERENCE_TOP1 = 100.0
"""The FP32 stand-in's top-1 on its own predictions."""


def decode_label(data: bytes) -> int:
    """The val_map-space label a logged payload names: `int(float32 value)`, as accuracy-imagenet.py reads it.

    Raises:
        DatasetError: the payload is not one float32 label.
    """
    if len(data) != 4:
        raise DatasetError(
            f"ResNet50 payload of {len(data)} bytes: expected the reference's float32 label (4 bytes)"
        )
    return int(np.frombuffer(data, np.float32)[0])


def gate_line(metric: str, value: float, reference: float, fraction: float) -> str:
    """`PASS`/`FAIL`, the value and the target, as the last line of accuracy.txt."""
    target = reference * fraction
    verdict = "PASS" if value >= target else "FAIL"
    return (
        f"{verdict}: {metric}={value:.3f}% target={target:.3f}% "
        f"({fraction * 100:g}% of FP32 reference {reference:.3f}%)"
    )


def score(
    dataset: ImagenetDataset | SyntheticImagenet, results: Sequence[tuple[int, bytes]]
) -> AccuracyReport:
    """Top-1 over the first response of each QSL index, with the reference's output line and the gate."""
    seen = {
        qsl_idx: decode_label(data)
        for qsl_idx, data in first_responses(results, dataset_size=len(dataset), unit="images")
    }
    indices = list(seen)
    expected = dataset.labels(indices) if indices else np.zeros(0, np.int64)
    found = np.array([seen[i] for i in indices], np.int64)
    good = int((found == expected).sum())
    total = len(indices)
    value = 100.0 * good / total if total else 0.0
    reference = (
        SYNTHETIC_REFERENCE_TOP1 if isinstance(dataset, SyntheticImagenet) else SPEC.quality.reference_value
    )
    fraction = SPEC.quality.fractions[0]
    target = reference * fraction
    lines = [f"accuracy={value:.3f}%, good={good}, total={total}"]
    if isinstance(dataset, SyntheticImagenet):
        lines.append("ground truth: the FP32 stand-in's top-1 on the synthetic images")
    lines.append(gate_line(SPEC.quality.metric, value, reference, fraction))
    return AccuracyReport(
        metric=SPEC.quality.metric,
        value=value,
        target=target,
        passed=total > 0 and value >= target,
        text="\n".join(lines) + "\n",
    )
