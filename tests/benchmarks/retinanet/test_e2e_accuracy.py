"""RetinaNet accuracy through a real server on loopback: COCO mAP in accuracy.txt and the gate verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeperf.client.settings import Scenario
from tests.benchmarks._e2e import small_accuracy_run

pytestmark = pytest.mark.e2e


async def test_fp32_standin_detections_pass_the_gate_over_the_network(tmp_path: Path) -> None:
    outcome, text = await small_accuracy_run(
        tmp_path, "retinanet", scenario=Scenario.SINGLE_STREAM, dataset="synthetic:2"
    )
    assert outcome.accuracy is not None and outcome.accuracy.passed
    lines = text.splitlines()
    assert lines[0].startswith(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]")
    mean_ap = next(line for line in lines if line.startswith("mAP="))
    assert float(mean_ap[4:-1]) == pytest.approx(outcome.accuracy.value, abs=5e-4)
    assert lines[-1].startswith("PASS: mAP=")
