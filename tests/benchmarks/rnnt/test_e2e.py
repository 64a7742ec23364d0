"""An accuracy run of the small RNN-T stand-in through a real server on loopback: accuracy.txt and gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeperf.benchmarks.rnnt import BENCHMARK
from edgeperf.client.run import RunOptions, run_benchmark
from edgeperf.client.settings import Scenario, TestMode
from tests.e2e._server import serve

pytestmark = pytest.mark.e2e


async def test_accuracy_run_through_the_server(tmp_path: Path, cache_dir: Path) -> None:
    repo = tmp_path / "repo"
    BENCHMARK.write_model(repo / "rnnt", size="small")
    with serve(repo) as server:
        outcome = await run_benchmark(
            RunOptions(
                server=server.address,
                model="rnnt",
                scenario=Scenario.SINGLE_STREAM,
                mode=TestMode.ACCURACY_ONLY,
                benchmark="rnnt",
                benchmark_size="small",
                dataset="synthetic:4",
                out_dir=tmp_path / "out",
            )
        )
    assert outcome.validity == "VALID"
    assert outcome.accuracy is not None and outcome.accuracy.passed and outcome.accuracy.value == 0.0
    text = (tmp_path / "out" / "accuracy.txt").read_text()
    assert "utterances scored: 4 of 4" in text
    assert "Word Error Rate: 0.0%, accuracy=100.0%" in text
    assert text.splitlines()[-1] == "PASS: accuracy (1 - WER) 100.000% >= target 99.000% (99% of 100.000%)"
