"""An accuracy run of the small 3D-UNet stand-in through a real server on loopback: accuracy.txt and gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeperf.benchmarks.unet3d import BENCHMARK
from edgeperf.benchmarks.unet3d.accuracy import dice_scores
from edgeperf.benchmarks.unet3d.standin import SyntheticKits
from edgeperf.client.plan.settings import Scenario
from tests.benchmarks._e2e import small_accuracy_run
from tests.benchmarks.reference_scripts import kits_predictions

pytestmark = pytest.mark.e2e


async def test_accuracy_run_through_the_server(tmp_path: Path, cache_dir: Path) -> None:
    outcome, text = await small_accuracy_run(
        tmp_path, "3d-unet", scenario=Scenario.OFFLINE, dataset="synthetic:2"
    )
    assert outcome.validity == "VALID"
    assert outcome.accuracy is not None and outcome.accuracy.passed
    assert "cases scored: 2 of 2" in text
    assert "Accuracy: mean = 1.00000, kidney = 1.0000, tumor = 1.0000" in text
    assert text.splitlines()[-1] == "PASS: DICE 1.00000 >= target 0.99000 (99% of 1.00000)"
    # accuracy_kits.py's reading of the log (uint8, reshaped to each case) scores as edgeperf does
    dataset = BENCHMARK.open_dataset("synthetic:2", size="small")
    assert isinstance(dataset, SyntheticKits)
    predictions = kits_predictions(tmp_path / "out" / "mlperf_log_accuracy.json", dataset.shape)
    assert sorted(predictions) == [0, 1]
    scores = [dice_scores(predictions[i], dataset.label(i)) for i in (0, 1)]
    mean = sum((kidney + tumor) / 2 for kidney, tumor in scores) / 2
    assert outcome.accuracy.value == pytest.approx(mean, abs=1e-12)
