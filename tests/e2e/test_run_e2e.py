"""Client and server together over loopback: every scenario VALID, and a dying server never hangs a run."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgeperf.client.plan.settings import Scenario, TestMode, TestSettings
from edgeperf.client.run import RunOptions, RunOutcome, run_benchmark
from tests.e2e._runs import run_options
from tests.e2e._server import ServerProcess, serve

pytestmark = pytest.mark.e2e

LOG_FILES = ("mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_accuracy.json", "result.json")


def check_logs(out: Path) -> dict[str, object]:
    for name in LOG_FILES:
        assert (out / name).is_file(), name
    for line in (out / "mlperf_log_detail.txt").read_text().splitlines():
        assert line.startswith(":::MLLOG ")
        json.loads(line[len(":::MLLOG ") :])
    json.loads((out / "mlperf_log_accuracy.json").read_text())
    assert not list(out.glob("*.tmp*")), "no temporary files are left behind"
    doc = json.loads((out / "result.json").read_text())
    assert isinstance(doc, dict)
    return doc


@pytest.mark.parametrize(
    ("scenario", "streaming"),
    [
        (Scenario.SINGLE_STREAM, False),
        (Scenario.MULTI_STREAM, False),
        (Scenario.SERVER, False),
        (Scenario.OFFLINE, False),
        (Scenario.SERVER, True),
        (Scenario.OFFLINE, True),
    ],
)
async def test_each_scenario_is_valid_against_a_real_server(
    tiny_server: ServerProcess, short_conf: Path, tmp_path: Path, scenario: Scenario, streaming: bool
) -> None:
    out = tmp_path / "out"
    outcome = await run_benchmark(
        run_options(tiny_server.address, scenario, out, short_conf, batch_size=16, streaming=streaming)
    )
    assert outcome.validity == "VALID", outcome.summary_text
    doc = check_logs(out)
    assert doc["validity"]["result_validity"] == "VALID"  # type: ignore[index]
    assert "Result is : VALID" in (out / "mlperf_log_summary.txt").read_text()
    breakdown = doc["latency_breakdown_ns"]
    assert isinstance(breakdown, dict)
    # the server reported its queue and compute times through the response parameters
    assert breakdown["server_compute"]["count"] > 0


async def test_accuracy_run_logs_every_sample(
    tiny_server: ServerProcess, short_conf: Path, tmp_path: Path
) -> None:
    out = tmp_path / "acc"
    outcome = await run_benchmark(
        run_options(
            tiny_server.address,
            Scenario.SINGLE_STREAM,
            out,
            short_conf,
            mode=TestMode.ACCURACY_ONLY,
            dataset="synthetic:20",
        )
    )
    assert outcome.validity == "VALID", outcome.summary_text
    entries = json.loads((out / "mlperf_log_accuracy.json").read_text())
    assert sorted(e["qsl_idx"] for e in entries) == list(range(20))
    # OUTPUT0 of the tiny model is 16 float32 values per sample
    assert all(len(e["data"]) == 16 * 4 * 2 for e in entries)


async def _disrupted_run(
    tiny_repo: Path,
    out: Path,
    settings: TestSettings,
    disrupt: Callable[[ServerProcess], None],
    *,
    after_s: float,
    within_s: float,
    **options: Any,
) -> tuple[RunOutcome, float]:
    """A long run of the tiny model at a server of its own, `disrupt` done to the server `after_s` into it.

    Returns the outcome and the seconds from the disruption to the run's end (which must come within
    `within_s`: a run that hangs fails the test).
    """
    with serve(tiny_repo) as server:
        run = asyncio.create_task(
            run_benchmark(
                run_options(server.address, settings.scenario, out, test_settings=settings, **options)
            )
        )
        await asyncio.sleep(after_s)
        disrupted_at = time.perf_counter()
        disrupt(server)
        outcome = await asyncio.wait_for(run, within_s)
    return outcome, time.perf_counter() - disrupted_at


@pytest.mark.parametrize("scenario", [Scenario.SINGLE_STREAM, Scenario.SERVER, Scenario.OFFLINE])
async def test_killed_server_gives_invalid_result_with_every_sample_accounted_for(
    tiny_repo: Path, tmp_path: Path, scenario: Scenario
) -> None:
    settings = TestSettings(
        scenario=scenario,
        min_duration_ms=60_000,
        min_query_count=100_000,
        server_target_qps=300.0,
        offline_expected_qps=200.0,
    )
    out = tmp_path / "killed"
    outcome, ended_s = await _disrupted_run(
        tiny_repo,
        out,
        settings,
        ServerProcess.kill,
        after_s=1.0,
        within_s=30,
        deadline_ms=3_000,
        max_in_flight=4,
        abort_after_errors=20,
    )
    assert ended_s < 15, "the run ends within the deadline, never hangs"
    assert outcome.validity == "INVALID"
    doc = check_logs(out)
    errors = doc["errors"]["performance"]  # type: ignore[index]
    samples, failed = errors["samples"], errors["failed"]
    assert failed > 0
    # every issued sample is either OK or failed with a status: none is lost
    assert samples == doc["metrics"]["sample_count"] + failed  # type: ignore[index]
    assert (
        "UNAVAILABLE" in errors["by_status"]
        or "CANCELLED" in errors["by_status"]
        or failed == errors["by_status"].get("INCOMPLETE")
    )
    assert "samples failed" in (out / "mlperf_log_summary.txt").read_text()


async def test_paused_server_times_out_at_the_deadline(tiny_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "paused"
    settings = TestSettings(scenario=Scenario.SINGLE_STREAM, min_duration_ms=60_000, min_query_count=100_000)
    outcome, _ = await _disrupted_run(
        tiny_repo,
        out,
        settings,
        ServerProcess.pause,
        after_s=0.8,
        within_s=20,
        deadline_ms=500,
        abort_after_errors=3,
    )
    assert outcome.validity == "INVALID"
    doc = check_logs(out)
    by_status = doc["errors"]["performance"]["by_status"]  # type: ignore[index]
    assert by_status.get("DEADLINE_EXCEEDED", 0) >= 1
    # the cause comes first, not a recommendation about expected latency that follows from it
    assert outcome.invalid_reasons[0].startswith("The performance pass ended early: "), (
        outcome.invalid_reasons
    )


async def test_resnet50_logs_only_argmax_and_scores_it(tmp_path: Path) -> None:
    from edgeperf.benchmarks import registry

    repo = tmp_path / "repo"
    registry.get("resnet50").write_model(repo / "resnet50", size="small")
    out = tmp_path / "out"
    with serve(repo) as server:
        outcome = await run_benchmark(
            RunOptions(
                server=server.address,
                model="resnet50",
                benchmark="resnet50",
                benchmark_size="small",
                dataset="synthetic:8",
                scenario=Scenario.OFFLINE,
                mode=TestMode.ACCURACY_ONLY,
                batch_size=4,
                out_dir=out,
            )
        )
    assert outcome.validity == "VALID", outcome.summary_text
    entries = json.loads((out / "mlperf_log_accuracy.json").read_text())
    assert sorted(e["qsl_idx"] for e in entries) == list(range(8))
    # ArgMax:0 alone (not the 1001-float softmax), logged as the reference SUT does: one float32 label
    assert all(len(e["data"]) == 8 for e in entries)
    assert outcome.accuracy is not None and outcome.accuracy.passed, outcome.accuracy
