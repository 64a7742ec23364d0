"""An accuracy run of the small 3D-UNet stand-in through a real server on loopback: accuracy.txt and gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeperf.benchmarks.unet3d import BENCHMARK
from edgeperf.client.run import RunOptions, run_benchmark
from edgeperf.client.settings import Scenario, TestMode
from tests.e2e._server import serve

pytestmark = pytest.mark.e2e


async def test_accuracy_run_through_the_server(tmp_path: Path, cache_dir: Path) -> None:
    repo = tmp_path / "repo"
    BENCHMARK.write_model(repo / "3d-unet", size="small")
    with serve(repo) as server:
        outcome = await run_benchmark(
            RunOptions(
                server=server.address,
                model="3d-unet",
                scenario=Scenario.OFFLINE,
                mode=TestMode.ACCURACY_ONLY,
                benchmark="3d-unet",
                benchmark_size="small",
                dataset="synthetic:2",
                out_dir=tmp_path / "out",
            )
        )
    assert outcome.validity == "VALID"
    assert outcome.accuracy is not None and outcome.accuracy.passed
    text = (tmp_path / "out" / "accuracy.txt").read_text()
    assert "cases scored: 2 of 2" in text
    assert "Accuracy: mean = 1.00000, kidney = 1.0000, tumor = 1.0000" in text
    assert text.splitlines()[-1] == "PASS: DICE 1.00000 >= target 0.99000 (99% of 1.00000)"
