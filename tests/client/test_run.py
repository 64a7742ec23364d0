"""`run_with_sut`: every scenario and mode against FakeSut, logs written, interruption handled (no network)."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from edgeperf.client import modes
from edgeperf.client.errors import RunSetupError
from edgeperf.client.issue.fake_sut import FakeSut, FakeSutConfig
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.settings import Scenario, TestMode, TestSettings
from edgeperf.client.report.latency_dump import read_latencies
from edgeperf.client.run import run_with_sut


class ListQsl:
    """A QSL over nothing: FakeSut needs only indices."""

    name = "list-qsl"

    def __init__(self, total: int = 48, performance: int = 32) -> None:
        self.total_sample_count = total
        self.performance_sample_count = performance
        self.loads: list[list[int]] = []
        self.unloads: list[list[int]] = []

    def load_samples(self, indices: Sequence[int]) -> None:
        self.loads.append(list(indices))

    def unload_samples(self, indices: Sequence[int]) -> None:
        self.unloads.append(list(indices))


def settings(
    scenario: Scenario, mode: TestMode = TestMode.PERFORMANCE_ONLY, **changes: object
) -> TestSettings:
    base: dict[str, object] = {
        "scenario": scenario,
        "mode": mode,
        "min_duration_ms": 100,
        "min_query_count": 700 if scenario is Scenario.MULTI_STREAM else 64,
        "single_stream_expected_latency_ns": 300_000.0,
        "multi_stream_expected_latency_ns": 300_000.0,
        "multi_stream_samples_per_query": 2,
        "server_target_qps": 3000.0,
        "server_target_latency_ns": 200_000_000,
        "offline_expected_qps": 5000.0,
    }
    if scenario is Scenario.SERVER:
        base["min_query_count"] = 500
    base.update(changes)
    return TestSettings(**base)  # type: ignore[arg-type]


def service_ns(scenario: Scenario) -> int:
    # NOTE: the fake serves every sample in parallel, so Offline's one query takes one service time;
    # it must outlast min_duration (100 ms) to be valid.
    return 120_000_000 if scenario is Scenario.OFFLINE else 100_000


@pytest.mark.parametrize("scenario", list(Scenario))
async def test_performance_run_is_valid_and_writes_every_log(scenario: Scenario, tmp_path: Path) -> None:
    qsl = ListQsl()
    outcome = await run_with_sut(
        FakeSut(FakeSutConfig(latency_ns=service_ns(scenario))),
        qsl,
        settings(scenario),
        tmp_path,
        drain_timeout_s=5,
    )
    assert outcome.validity == "VALID", outcome.summary_text
    names = {p.name for p in outcome.files}
    assert names == {
        "mlperf_log_summary.txt",
        "mlperf_log_detail.txt",
        "mlperf_log_accuracy.json",
        "result.json",
        "latencies.npz",
    }
    assert all(p.is_file() for p in outcome.files)
    columns = read_latencies(tmp_path)
    assert len(columns["sample_latency_ns"]) == outcome.result_json["metrics"]["sample_count"]  # type: ignore[index]
    assert columns["ok"].all() and (columns["sample_latency_ns"] > 0).all()
    assert outcome.result_json["run"]["validity"] == "VALID"  # type: ignore[index]
    assert json.loads((tmp_path / "result.json").read_text())["run"]["interrupted"] is False
    assert "Official metric" in outcome.summary_text and "not official MLPerf results" in outcome.summary_text
    # performance mode loads the performance set once and unloads it
    assert len(qsl.loads) == 1 and qsl.unloads == qsl.loads
    assert len(set(qsl.loads[0])) == 32


@pytest.mark.parametrize("scenario", list(Scenario))
async def test_submission_run_logs_every_accuracy_sample_then_measures(
    scenario: Scenario, tmp_path: Path
) -> None:
    qsl = ListQsl()
    sut = FakeSut(FakeSutConfig(latency_ns=service_ns(scenario)))
    outcome = await run_with_sut(
        sut, qsl, settings(scenario, TestMode.SUBMISSION_RUN), tmp_path, drain_timeout_s=5
    )
    entries = json.loads((tmp_path / "mlperf_log_accuracy.json").read_text())
    accuracy_indices = sorted(e["qsl_idx"] for e in entries)
    # v2.1: every QSL sample once, set by set (MultiStream may repeat padding entries)
    assert set(accuracy_indices) == set(range(48))
    if scenario is not Scenario.MULTI_STREAM:
        assert accuracy_indices == list(range(48))
    # two accuracy sets (32 + 16) then the performance set
    assert [len(set(s)) for s in qsl.loads] == [32, 16, 32]
    assert outcome.validity == "VALID", outcome.summary_text
    for entry in entries:
        assert bytes.fromhex(entry["data"]) == entry["qsl_idx"].to_bytes(4, "little")


async def test_failed_samples_make_the_run_invalid_with_the_reason(tmp_path: Path) -> None:
    sut = FakeSut(FakeSutConfig(latency_ns=50_000, fail=lambda i: "RESOURCE_EXHAUSTED" if i == 1 else None))
    outcome = await run_with_sut(sut, ListQsl(), settings(Scenario.OFFLINE), tmp_path)
    assert outcome.validity == "INVALID"
    assert any("RESOURCE_EXHAUSTED" in r for r in outcome.invalid_reasons)
    detail = (tmp_path / "mlperf_log_detail.txt").read_text()
    assert "RESOURCE_EXHAUSTED" in detail


async def test_each_failure_message_is_logged_once_with_its_count(tmp_path: Path) -> None:
    def fail(index: int) -> str | None:
        return "RESOURCE_EXHAUSTED" if index % 4 == 1 else "UNAVAILABLE" if index % 4 == 2 else None

    sut = FakeSut(FakeSutConfig(latency_ns=50_000, fail=fail))
    outcome = await run_with_sut(
        sut, ListQsl(), settings(Scenario.SINGLE_STREAM), tmp_path, abort_after_errors=None
    )
    records = [
        json.loads(line.removeprefix(":::MLLOG "))
        for line in (tmp_path / "mlperf_log_detail.txt").read_text().splitlines()
    ]
    errors = [r["value"] for r in records if r["metadata"]["is_error"]]
    by_status = outcome.result_json["errors"]["performance"]["by_status"]  # type: ignore[index]
    assert set(by_status) == {"RESOURCE_EXHAUSTED", "UNAVAILABLE"}
    for status, count in by_status.items():
        assert [e for e in errors if status in e] == [
            f"{count} samples failed with {status}: fake failure: {status}"
        ]
    assert len(errors) == len(by_status)  # nothing per sample, no "failed in all" total on top
    summary_log = (tmp_path / "mlperf_log_summary.txt").read_text()
    assert f"{len(errors)} ERRORS encountered" in summary_log


async def test_stop_event_interrupts_with_complete_invalid_logs(tmp_path: Path) -> None:
    stop = asyncio.Event()
    long = settings(Scenario.SERVER, min_duration_ms=60_000, server_target_qps=500.0)

    async def press_ctrl_c() -> None:
        await asyncio.sleep(0.3)
        stop.set()

    presser = asyncio.create_task(press_ctrl_c())
    outcome = await run_with_sut(
        FakeSut(FakeSutConfig(latency_ns=100_000)), ListQsl(), long, tmp_path, stop=stop
    )
    await presser
    assert outcome.interrupted and outcome.validity == "INVALID"
    reason = next(r for r in outcome.invalid_reasons if r.startswith("Run interrupted by the user after"))
    assert 0.2 < float(reason.split("after ")[1].split(" s")[0]) < 5.0
    summary_log = (tmp_path / "mlperf_log_summary.txt").read_text()
    assert reason in summary_log and "samples failed" not in summary_log
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["validity"]["interrupted_after_s"] == doc["run"]["interrupted_after_s"] > 0
    for line in (tmp_path / "mlperf_log_detail.txt").read_text().splitlines():
        json.loads(line.removeprefix(":::MLLOG "))
    assert "Result is : INVALID" in (tmp_path / "mlperf_log_summary.txt").read_text()


async def test_find_peak_needs_the_server_scenario(tmp_path: Path) -> None:
    with pytest.raises(RunSetupError):
        await run_with_sut(
            FakeSut(), ListQsl(), settings(Scenario.OFFLINE, TestMode.FIND_PEAK_PERFORMANCE), tmp_path
        )


async def test_find_peak_probes_pass_on_the_latency_bound_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake misses the latency bound above 437.7 target QPS (it is told each probe's target), so the
    # search is deterministic. 20 queries a probe can never meet early stopping at p99 (it needs 662):
    # every probe is INVALID, but LoadGen's probes pass on the latency bound alone (PerfConstraintsMet).
    # LoadGen's search from 200 QPS at 1 decimal then ends at 437.6953125, every digit kept.
    target = [0.0]
    real_run_mode = modes.run_mode

    async def run_mode(ctx: Any, probe: EffectiveSettings, *args: Any, **kwargs: Any) -> Any:
        target[0] = probe.target_qps
        return await real_run_mode(ctx, probe, *args, **kwargs)

    monkeypatch.setattr(modes, "run_mode", run_mode)

    def latency(index: int) -> int:
        return 300_000_000 if target[0] > 437.7 else 100_000

    s = settings(
        Scenario.SERVER,
        TestMode.FIND_PEAK_PERFORMANCE,
        min_duration_ms=20,
        min_query_count=20,
        server_target_qps=200.0,
        server_target_latency_ns=250_000_000,
        server_find_peak_qps_decimals_of_precision=1,
    )
    outcome = await run_with_sut(FakeSut(FakeSutConfig(latency_ns=latency)), ListQsl(), s, tmp_path)
    assert outcome.peak_qps == 437.6953125, outcome.summary_text
    assert outcome.validity == "INVALID"  # the reported probe still fails early stopping, as in LoadGen
    detail = [
        json.loads(line.removeprefix(":::MLLOG "))
        for line in (tmp_path / "mlperf_log_detail.txt").read_text().splitlines()
    ]
    value = {d["key"]: d["value"] for d in detail}
    probes = [d["value"] for d in detail if str(d["value"]).startswith("FindPeakPerformance: probing")]
    # every probe's loadable set and generated queries, in order
    tried = [200.0, 400.0, 800.0, 600.0, 500.0, 450.0, 425.0, 437.5, 443.75, 440.625, 439.0625, 438.28125]
    tried += [437.890625, 437.6953125, 437.79296875]
    assert probes == [f"FindPeakPerformance: probing target_qps {q!r}" for q in tried]
    assert sum(d["key"] == "loaded_qsl_set" for d in detail) == len(probes)
    assert sum(d["key"] == "generated_query_count" for d in detail) == len(probes)
    # the requested settings stay the user's; the reported run is the peak probe
    assert value["requested_server_target_qps"] == 200
    assert value["effective_target_qps"] == float(f"{outcome.peak_qps:g}")  # C++ %g, as LoadGen logs it
    messages = [d["value"] for d in detail if d["key"] == "generic_message"]
    assert f"FindPeakPerformance: highest passing target_qps {outcome.peak_qps!r}" in messages
    # the reported probe met the latency bound; early stopping decides its validity, as in LoadGen
    summary = (tmp_path / "mlperf_log_summary.txt").read_text()
    assert "Performance constraints satisfied : Yes" in summary and "Early stopping satisfied: NO" in summary


async def test_abandoning_a_run_stops_issuing_and_leaves_no_unobserved_failure(tmp_path: Path) -> None:
    # A second Ctrl-C cancels the run itself: the issue loop must stop with it, and nothing may fail later
    # with "Task exception was never retrieved".
    loop = asyncio.get_running_loop()
    unobserved: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: unobserved.append(context))
    sut = FakeSut(FakeSutConfig(latency_ns=100_000))
    long = settings(Scenario.SERVER, min_duration_ms=60_000, server_target_qps=500.0)
    run = asyncio.create_task(run_with_sut(sut, ListQsl(), long, tmp_path, stop=asyncio.Event()))
    await asyncio.sleep(0.3)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    issued = len(sut.issue_calls)
    await asyncio.sleep(0.2)
    gc.collect()
    await asyncio.sleep(0)
    assert len(sut.issue_calls) == issued > 0
    assert unobserved == []
