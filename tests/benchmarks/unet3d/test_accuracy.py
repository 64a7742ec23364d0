"""Mean DICE over kidney and tumour on crafted cases, accuracy.txt, and the 99% / 99.9% gates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeperf.benchmarks.unet3d import BENCHMARK
from edgeperf.benchmarks.unet3d.accuracy import CaseScore, dice_scores, report
from edgeperf.benchmarks.unet3d.dataset import KitsDataset
from tests.benchmarks.unet3d._kits import CASES, case_arrays


def test_perfect_prediction_scores_one() -> None:
    _, label = case_arrays("case_00000")
    assert dice_scores(label, label) == pytest.approx((1.0, 1.0))


def test_disjoint_prediction_scores_zero() -> None:
    target = np.zeros((1, 4, 4, 4), np.uint8)
    target[0, 0] = 1
    target[0, 1] = 2
    prediction = np.zeros_like(target)
    prediction[0, 2] = 1
    prediction[0, 3] = 2
    kidney, tumour = dice_scores(prediction, target)
    assert kidney == pytest.approx(0.0, abs=1e-7) and tumour == pytest.approx(0.0, abs=1e-7)


def test_known_partial_overlap() -> None:
    target = np.zeros((1, 1, 1, 8), np.uint8)
    target[0, 0, 0, :4] = 1  # 4 kidney voxels
    prediction = np.zeros_like(target)
    prediction[0, 0, 0, 2:4] = 1  # 2 predicted, both right
    prediction[0, 0, 0, 7] = 2  # a tumour where there is none
    kidney, tumour = dice_scores(prediction, target)
    assert kidney == pytest.approx(2 * 2 / (2 + 4))
    assert tumour == pytest.approx(1e-6 / (1 + 1e-6))
    # a class absent from both counts as perfect, as the reference's smoothing makes it
    assert dice_scores(np.zeros_like(target), np.zeros_like(target)) == pytest.approx((1.0, 1.0))


def test_report_text_and_gates() -> None:
    scores = [CaseScore(case="a", kidney=0.9, tumor=0.8), CaseScore(case="b", kidney=0.94, tumor=0.78)]
    result = report(scores, reference=0.86170, fractions=(0.99, 0.999), total_cases=43)
    assert result.metric == "DICE" and result.value == pytest.approx(0.855)
    assert result.target == pytest.approx(0.86170 * 0.99) and result.passed
    lines = result.text.splitlines()
    assert lines[0] == "case,kidney,tumor,composite"
    assert "Accuracy: mean = 0.85500, kidney = 0.9200, tumor = 0.7900" in lines
    assert lines[-2].startswith("3d-unet-99.9 FAIL: DICE 0.85500 < target 0.86084")
    assert lines[-1] == "PASS: DICE 0.85500 >= target 0.85308 (99% of 0.86170)"
    failing = report(
        [CaseScore(case="a", kidney=0.5, tumor=0.5)], reference=1.0, fractions=(0.99,), total_cases=1
    )
    assert not failing.passed and failing.text.splitlines()[-1].startswith(
        "FAIL: DICE 0.50000 < target 0.99000"
    )


def test_benchmark_scores_logged_bytes(kits_dir: Path) -> None:
    dataset = KitsDataset(kits_dir)
    perfect = case_arrays(CASES[0])[1].tobytes()
    empty = np.zeros(dataset.shape(1), np.uint8).tobytes()  # predicts background only
    result = BENCHMARK.accuracy(dataset, [(0, perfect), (1, empty), (0, empty)])  # duplicate ignored
    # case 0: 1.0 and 1.0; case 1: kidney and tumour both ~0 -> mean composite 0.5
    assert result.value == pytest.approx(0.5, abs=1e-6)
    assert not result.passed
    assert "cases scored: 2 of 2" in result.text
    with pytest.raises(ValueError, match="bytes"):
        BENCHMARK.accuracy(dataset, [(0, b"\x00" * 10)])
    with pytest.raises(ValueError, match="outside"):
        BENCHMARK.accuracy(dataset, [(5, perfect)])
