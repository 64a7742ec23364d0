"""Top-1 accuracy of ResNet50 responses, in the format of the reference's accuracy-imagenet.py.

A response's data is what the client logs for one sample: every output's raw bytes in the model's output
order, so it starts with `ArgMax:0` as a little-endian int64 (8 bytes), optionally followed by
`softmax_tensor:0` (1001 float32). A 4-byte payload is the reference SUT's own format (main.py logs
float32(ArgMax + offset)) and is read as such. The label is ArgMax + LABEL_OFFSET (-1), compared with
the 0-based val_map.txt label; like accuracy-imagenet.py, only the first response per QSL index counts.

The gate: on the real dataset, top-1 >= 99% of 76.46. On the synthetic dataset the ground truth is the
FP32 stand-in's own top-1, whose score on it is 100% by construction, so the target is 99% of 100.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgeperf.benchmarks._common import DatasetError, first_responses
from edgeperf.benchmarks.base import AccuracyReport
from edgeperf.benchmarks.resnet50.dataset import ImagenetDataset, SyntheticImagenet
from edgeperf.benchmarks.resnet50.spec import LABEL_OFFSET, NUM_CLASSES, SPEC

__all__ = ["decode_label", "gate_line", "score"]

SYNTHETIC_REFERENCE_TOP1 = 100.0
"""The FP32 stand-in's top-1 on its own predictions."""


def decode_label(data: bytes) -> int:
    """The val_map-space label a logged response names.

    Raises:
        DatasetError: the payload is neither ArgMax:0 (+ softmax) nor the reference's float32 label.
    """
    if len(data) == 4:
        return int(np.frombuffer(data, np.float32)[0])
    if len(data) in (8, 8 + 4 * NUM_CLASSES):
        return int(np.frombuffer(data[:8], "<i8")[0]) + LABEL_OFFSET
    raise DatasetError(
        f"ResNet50 response of {len(data)} bytes: expected 8 (ArgMax:0), {8 + 4 * NUM_CLASSES} "
        "(ArgMax:0 + softmax_tensor:0) or 4 (reference float32 label)"
    )


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
