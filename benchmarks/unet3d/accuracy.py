"""Mean DICE over kidney and tumour, as the KiTS19 reference's accuracy_kits.py computes it.

mlcommons/inference v2.1 `vision/medical_imaging/3d-unet-kits19/accuracy_kits.py`: the response bytes are
uint8 labels of the case's shape; prediction and ground truth are one-hot encoded over 3 classes, the
background channel dropped, and per class DICE = (2 |P n T| + 1e-6) / (|P| + |T| + 1e-6); a case's
composite is the mean of kidney and tumour; the result is the mean over cases of each column, printed
as "Accuracy: mean = %.5f, kidney = %.4f, tumor = %.4f" (summary.csv holds the per-case rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgeperf.benchmarks._common import DatasetError, first_responses
from edgeperf.benchmarks.base import AccuracyReport
from edgeperf.benchmarks.unet3d.dataset import KitsDataset
from edgeperf.benchmarks.unet3d.spec import SPEC
from edgeperf.benchmarks.unet3d.standin import SyntheticKits

__all__ = ["CaseScore", "dice_scores", "gate_line", "report", "score"]

_SMOOTH = 1e-6


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseScore:
    case: str
    kidney: float
    tumor: float

    @property
    def composite(self) -> float:
        return (self.kidney + self.tumor) / 2.0


def dice_scores(prediction: npt.NDArray[np.uint8], target: npt.NDArray[np.uint8]) -> tuple[float, float]:
    """(kidney, tumour) DICE of one case; both arrays hold labels 0, 1, 2 and have the same shape.

    Raises:
        ValueError: the shapes differ.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {prediction.shape} and ground truth {target.shape} differ in shape")
    scores = []
    for cls in (1, 2):
        p, t = prediction == cls, target == cls
        intersection = float(np.count_nonzero(p & t))
        scores.append((2.0 * intersection + _SMOOTH) / (np.count_nonzero(p) + np.count_nonzero(t) + _SMOOTH))
    return scores[0], scores[1]


def gate_line(
    value: float, reference: float, fraction: float, metric: str = "DICE"
) -> tuple[bool, float, str]:
    """(passed, target, line) for one accuracy target of `fraction` x `reference`."""
    target = reference * fraction
    passed = value >= target
    sign = ">=" if passed else "<"
    verdict = "PASS" if passed else "FAIL"
    return (
        passed,
        target,
        f"{verdict}: {metric} {value:.5f} {sign} target {target:.5f} ({fraction * 100:g}% of {reference:.5f})",
    )


def report(
    scores: Sequence[CaseScore], *, reference: float, fractions: Sequence[float], total_cases: int
) -> AccuracyReport:
    """accuracy.txt: summary.csv-style rows, the reference's Accuracy line, one gate line per target.

    The report's verdict and target are those of the first (99%) target; the last line is its gate line.
    """
    if not scores:
        raise ValueError("no 3D-UNet results to score")
    kidney = float(np.mean([s.kidney for s in scores]))
    tumor = float(np.mean([s.tumor for s in scores]))
    mean = float(np.mean([s.composite for s in scores]))
    lines = ["case,kidney,tumor,composite"]
    lines += [f"{s.case},{s.kidney:.6f},{s.tumor:.6f},{s.composite:.6f}" for s in scores]
    lines.append(f"mean,{kidney:.6f},{tumor:.6f},{mean:.6f}")
    lines.append(f"cases scored: {len(scores)} of {total_cases}")
    lines.append(f"Accuracy: mean = {mean:.5f}, kidney = {kidney:.4f}, tumor = {tumor:.4f}")
    gates = [gate_line(mean, reference, f) for f in fractions]
    for fraction, (_, _, line) in list(zip(fractions, gates, strict=True))[1:]:
        lines.append(f"3d-unet-{fraction * 100:g} {line}")
    passed, target, line = gates[0]
    lines.append(line)
    return AccuracyReport(
        metric="DICE", value=mean, target=target, passed=passed, text="\n".join(lines) + "\n"
    )


def score(dataset: KitsDataset | SyntheticKits, results: Sequence[tuple[int, bytes]]) -> AccuracyReport:
    """Mean DICE of the logged segmentations against the dataset's ground truth, and the gate.

    Raises:
        DatasetError: a response's size does not match its case, or an index is out of range.
    """
    scores: list[CaseScore] = []
    for index, data in first_responses(results, dataset_size=len(dataset), unit="cases"):
        shape = dataset.shape(index)
        if len(data) != int(np.prod(shape)):
            raise DatasetError(
                f"response for case {index} has {len(data)} bytes, its shape {shape} needs {int(np.prod(shape))}"
            )
        prediction = np.frombuffer(data, dtype=np.uint8).reshape(shape)
        kidney, tumor = dice_scores(prediction, dataset.label(index))
        scores.append(CaseScore(case=dataset.case_name(index), kidney=kidney, tumor=tumor))
    return report(
        scores,
        reference=dataset.reference_value,
        fractions=SPEC.quality.fractions,
        total_cases=len(dataset),
    )
