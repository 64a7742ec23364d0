"""Accuracy runs of small stand-ins through a real server on loopback, for the benchmarks' e2e tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeperf.benchmarks import registry
from edgeperf.client.plan.settings import Scenario, TestMode
from edgeperf.client.run import RunOptions, RunOutcome, run_benchmark
from tests.e2e._server import serve


async def accuracy_run(
    address: str,
    *,
    benchmark: str,
    scenario: Scenario,
    dataset: str,
    out: Path,
    model: str = "",
    **options: Any,
) -> tuple[RunOutcome, str]:
    """An AccuracyOnly run of the small `benchmark` served as `model` (default: the benchmark's name) at
    `address`; returns the outcome and the accuracy.txt it wrote under `out`."""
    outcome = await run_benchmark(
        RunOptions(
            server=address,
            model=model or benchmark,
            scenario=scenario,
            mode=TestMode.ACCURACY_ONLY,
            benchmark=benchmark,
            benchmark_size="small",
            dataset=dataset,
            out_dir=out,
            **options,
        )
    )
    return outcome, (out / "accuracy.txt").read_text()


async def small_accuracy_run(
    tmp_path: Path, benchmark: str, *, scenario: Scenario, dataset: str
) -> tuple[RunOutcome, str]:
    """Write the small FP32 stand-in of `benchmark` into a fresh repository, serve it and run
    `accuracy_run` against it (results under `tmp_path / "out"`)."""
    repo = tmp_path / "repo"
    registry.get(benchmark).write_model(repo / benchmark, size="small")
    with serve(repo) as server:
        return await accuracy_run(
            server.address, benchmark=benchmark, scenario=scenario, dataset=dataset, out=tmp_path / "out"
        )
