"""An accuracy run of the small 3D-UNet stand-in through a real server on loopback: accuracy.txt and gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeperf.client.settings import Scenario
from tests.benchmarks._e2e import small_accuracy_run

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
