"""RetinaNet accuracy through a real server on loopback: COCO mAP in accuracy.txt and the gate verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeperf.benchmarks.retinanet import BENCHMARK
from edgeperf.client.run import RunOptions, run_benchmark
from edgeperf.client.settings import Scenario, TestMode
from tests.e2e._server import serve

pytestmark = pytest.mark.e2e


async def test_fp32_standin_detections_pass_the_gate_over_the_network(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    BENCHMARK.write_model(repo / "retinanet", size="small")
    out = tmp_path / "out"
    with serve(repo) as server:
        outcome = await run_benchmark(
            RunOptions(
                server=server.address,
                model="retinanet",
                benchmark="retinanet",
                benchmark_size="small",
                dataset="synthetic:2",
                scenario=Scenario.SINGLE_STREAM,
                mode=TestMode.ACCURACY_ONLY,
                out_dir=out,
            )
        )
    assert outcome.accuracy is not None and outcome.accuracy.passed
    lines = (out / "accuracy.txt").read_text().splitlines()
    assert lines[0].startswith(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]")
    mean_ap = next(line for line in lines if line.startswith("mAP="))
    assert float(mean_ap[4:-1]) == pytest.approx(outcome.accuracy.value, abs=5e-4)
    assert lines[-1].startswith("PASS: mAP=")
