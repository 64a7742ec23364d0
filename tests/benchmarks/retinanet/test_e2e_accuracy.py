"""RetinaNet accuracy through a real server on loopback: COCO mAP in accuracy.txt and the gate verdict."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from edgeperf.benchmarks.retinanet import BENCHMARK
from edgeperf.benchmarks.retinanet.standin import SyntheticOpenImages
from edgeperf.client.plan.settings import Scenario
from tests.benchmarks._e2e import small_accuracy_run
from tests.benchmarks.reference_scripts import openimages_detections

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
    # accuracy-openimages.py's reading of the log, evaluated as it does, gives the same mAP
    dataset = BENCHMARK.open_dataset("synthetic:2", size="small")
    assert isinstance(dataset, SyntheticOpenImages)
    truth = dataset.ground_truth([0, 1])
    image_map = [dict(zip(("id", "height", "width"), dataset.image_info(i), strict=True)) for i in range(2)]
    detections, image_ids = openimages_detections(tmp_path / "out" / "mlperf_log_accuracy.json", image_map)
    assert detections and image_ids == {1, 2}
    gt = COCO()
    gt.dataset = truth
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(detections), iouType="bbox")
        evaluator.params.imgIds = list(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert mean_ap == f"mAP={100.0 * evaluator.stats[0]:.3f}%"
