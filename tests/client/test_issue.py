"""The issue loop and end-of-run conditions against FakeSut, for every scenario (no network)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

from edgeperf.client.issue.fake_sut import FakeSut, FakeSutConfig
from edgeperf.client.issue.loop import EndOfRun, EndReason, end_of_run, issue_queries
from edgeperf.client.issue.raw_results import STATUS_INCOMPLETE, STATUS_OK, RunResult
from edgeperf.client.issue.recorder import RunRecorder
from edgeperf.client.issue.sut import QuerySampleResponse
from edgeperf.client.issue.tracker import CompletionTracker
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.scenarios import LoopClock, make_scheduler
from edgeperf.client.plan.settings import Scenario, TestMode, TestSettings

N_SAMPLES = 16


def effective(scenario: Scenario, **changes: object) -> EffectiveSettings:
    base: dict[str, object] = {
        "scenario": scenario,
        "mode": TestMode.PERFORMANCE_ONLY,
        "min_duration_ms": 40,
        "min_query_count": 8,
        "single_stream_expected_latency_ns": 2_000_000.0,
        "multi_stream_expected_latency_ns": 2_000_000.0,
        "multi_stream_samples_per_query": 4,
        "server_target_qps": 500.0,
        "offline_expected_qps": 1000.0,
    }
    base.update(changes)
    return EffectiveSettings.from_requested(
        TestSettings(**base),  # type: ignore[arg-type]
        total_sample_count=N_SAMPLES,
        performance_sample_count=N_SAMPLES,
    )


def simple_schedule(settings: EffectiveSettings) -> tuple[np.ndarray, np.ndarray]:
    """A schedule shaped like LoadGen's (2x the duration for SS/MS), without its RNG."""
    spq = settings.samples_per_query
    factor = 1 if settings.scenario is Scenario.SERVER else 2
    if settings.scenario is Scenario.OFFLINE:
        n = 1
    else:
        n = max(
            settings.min_query_count,
            int(factor * settings.target_duration_ms / 1000 * settings.target_qps) + 1,
        )
    indices = (np.arange(n * spq, dtype=np.int64) % N_SAMPLES).reshape(n, spq)
    offsets = (np.arange(n, dtype=np.int64) * int(1e9 / settings.target_qps)).astype(np.int64)
    return indices, offsets


async def run_once(
    settings: EffectiveSettings,
    sut: FakeSut,
    *,
    drain_timeout_s: float = 5.0,
    abort_after_errors: int | None = None,
    abort_after_silence_ns: int | None = None,
) -> tuple[EndOfRun, RunResult, CompletionTracker]:
    indices, offsets = simple_schedule(settings)
    recorder = RunRecorder(
        samples_per_query=indices.shape[1], n_queries=indices.shape[0], sample_indices=indices
    )
    tracker = CompletionTracker(
        recorder,
        abort_after_errors=abort_after_errors,
        stall_timeout_s=drain_timeout_s,
        abort_after_silence_ns=abort_after_silence_ns,
    )
    clock = LoopClock()
    start = clock.now_ns()
    end = await issue_from(
        start,
        offsets.tolist(),
        sut,
        settings,
        indices,
        tracker,
        recorder,
        clock,
        drain_timeout_s=drain_timeout_s,
    )
    result = recorder.finish(clock.now_ns())
    return end, result, tracker


async def issue_from(
    start: int,
    offsets: list[int],
    sut: FakeSut,
    settings: EffectiveSettings,
    indices: np.ndarray,
    tracker: CompletionTracker,
    recorder: RunRecorder,
    clock: LoopClock,
    *,
    drain_timeout_s: float = 30.0,
) -> EndOfRun:
    """Mark the run's start, then issue the schedule `offsets` from `start` with `settings.scenario`."""
    recorder.mark_start(start)
    scheduler = make_scheduler(
        settings.scenario, start_ns=start, offsets_ns=offsets, progress=tracker, clock=clock
    )
    return await issue_queries(
        sut,
        scheduler=scheduler,
        sample_indices=indices,
        settings=settings,
        tracker=tracker,
        recorder=recorder,
        clock=clock,
        start_ns=start,
        accuracy=False,
        drain_timeout_s=drain_timeout_s,
    )


@pytest.mark.parametrize("scenario", list(Scenario))
async def test_every_scenario_runs_to_a_natural_end_with_every_sample_ok(scenario: Scenario) -> None:
    settings = effective(scenario)
    sut = FakeSut(FakeSutConfig(latency_ns=1_000_000))
    end, result, tracker = await run_once(settings, sut)
    expected = {
        Scenario.SINGLE_STREAM: EndReason.NATURAL,
        Scenario.MULTI_STREAM: EndReason.NATURAL,
        Scenario.SERVER: EndReason.ALL_ISSUED,
        Scenario.OFFLINE: EndReason.NATURAL,
    }[scenario]
    assert end.reason is expected
    assert sut.flushed
    assert result.n_queries == tracker.issued_queries >= 1
    assert np.all(result.sample_status == STATUS_OK)
    assert tracker.outstanding_samples == 0
    # every sample took at least the fake's service time from its query's latency origin
    assert np.all(result.sample_latency_ns >= 1_000_000)
    assert np.all(result.issued_ns >= result.scheduled_ns)
    if scenario in (Scenario.SINGLE_STREAM, Scenario.MULTI_STREAM):
        # issued only after the previous query completed
        done = result.query_completed_ns
        assert np.all(result.issued_ns[1:] >= done[:-1])
        assert result.issued_ns[-1] >= settings.min_duration_ms * 1_000_000
        assert all(len(call) == settings.samples_per_query for call in sut.issue_calls)
    if scenario is Scenario.MULTI_STREAM:
        # contiguous samples, query latency is its slowest sample
        lat = result.sample_latency_ns.reshape(-1, 4).max(axis=1)
        assert np.array_equal(result.query_latency_ns, lat)
    if scenario is Scenario.OFFLINE:
        assert result.scheduled_ns.tolist() == [0]
        assert len(sut.issue_calls) == 1 and len(sut.issue_calls[0]) == settings.samples_per_query


async def test_server_latency_counts_from_the_ideal_time() -> None:
    settings = effective(Scenario.SERVER, min_query_count=20)
    sut = FakeSut(FakeSutConfig(latency_ns=500_000))
    _, result, _ = await run_once(settings, sut)
    _, offsets = simple_schedule(settings)
    assert np.array_equal(result.scheduled_ns, offsets)
    delay = result.issued_ns - result.scheduled_ns
    assert np.all(delay >= 0)
    # latency includes the lateness of the issue
    assert np.all(result.sample_latency_ns >= delay + 500_000)


async def test_server_coalesces_queries_past_their_time() -> None:
    settings = effective(Scenario.SERVER, server_coalesce_queries=True, min_query_count=6)
    indices = (np.arange(6, dtype=np.int64) % N_SAMPLES).reshape(6, 1)
    recorder = RunRecorder(samples_per_query=1, n_queries=6, sample_indices=indices)
    tracker = CompletionTracker(recorder)
    clock = LoopClock()
    start = clock.now_ns() - 10_000_000  # the first five are already late
    offsets = [0, 1_000, 2_000, 3_000, 4_000, 50_000_000]
    sut = FakeSut()
    await issue_from(start, offsets, sut, settings, indices, tracker, recorder, clock)
    assert [len(c) for c in sut.issue_calls] == [5, 1]
    result = recorder.finish(clock.now_ns())
    assert result.scheduled_ns.tolist() == offsets  # each keeps its own ideal time
    assert result.n_queries == 6


@pytest.mark.parametrize("scenario", list(Scenario))
async def test_failed_samples_are_recorded_and_counted(scenario: Scenario) -> None:
    settings = effective(scenario)
    sut = FakeSut(FakeSutConfig(latency_ns=200_000, fail=lambda index: "INTERNAL" if index == 3 else None))
    _, result, tracker = await run_once(settings, sut)
    failed = result.sample_indices[result.sample_status != STATUS_OK]
    assert failed.size > 0 and np.all(failed == 3)
    assert tracker.failed_samples == failed.size == result.error_count
    assert result.errors_by_status() == {"INTERNAL": failed.size}
    assert "INTERNAL" in tracker.last_error
    # NOTE: the log writer reports failures once per distinct message; the tracker adds no per-sample lines.
    assert not any("INTERNAL" in message for _, message, _ in tracker.events)


@pytest.mark.parametrize("scenario", list(Scenario))
async def test_hung_server_ends_at_the_drain_timeout_with_samples_incomplete(scenario: Scenario) -> None:
    settings = effective(scenario)
    sut = FakeSut(FakeSutConfig(latency_ns=100_000, dead_after_samples=5, dead_status=None))
    t0 = time.perf_counter()
    end, result, tracker = await run_once(settings, sut, drain_timeout_s=0.3)
    assert time.perf_counter() - t0 < 5.0
    if scenario in (Scenario.SINGLE_STREAM, Scenario.MULTI_STREAM):
        assert end.reason is EndReason.STALLED and end.is_error
    incomplete = int(np.count_nonzero(result.sample_status == STATUS_INCOMPLETE))
    assert incomplete == tracker.issued_samples - min(5, tracker.issued_samples) > 0
    assert result.n_samples == tracker.issued_samples or scenario is not Scenario.OFFLINE
    assert any("INCOMPLETE" in message and not is_error for _, message, is_error in tracker.events)


@pytest.mark.parametrize("scenario", [Scenario.SINGLE_STREAM, Scenario.MULTI_STREAM, Scenario.SERVER])
async def test_dead_server_ends_the_run_after_consecutive_errors(scenario: Scenario) -> None:
    settings = effective(scenario, min_duration_ms=5_000, min_query_count=5_000)
    sut = FakeSut(FakeSutConfig(latency_ns=50_000, dead_after_samples=10))
    t0 = time.perf_counter()
    end, result, tracker = await run_once(settings, sut, abort_after_errors=20)
    assert time.perf_counter() - t0 < 3.0
    assert end.reason is EndReason.TOO_MANY_ERRORS and end.is_error
    assert "UNAVAILABLE" in end.message
    assert tracker.outstanding_samples == 0
    assert result.errors_by_status()["UNAVAILABLE"] == tracker.failed_samples >= 20


async def test_failures_with_no_success_for_the_silence_window_end_the_run() -> None:
    settings = effective(Scenario.SINGLE_STREAM, min_duration_ms=5_000, min_query_count=5_000)
    sut = FakeSut(FakeSutConfig(latency_ns=1_000_000, dead_after_samples=5, dead_status="DEADLINE_EXCEEDED"))
    end, _, tracker = await run_once(
        settings, sut, abort_after_errors=10_000, abort_after_silence_ns=50_000_000
    )
    assert end.reason is EndReason.TOO_MANY_ERRORS
    assert 0 < tracker.consecutive_errors < 10_000


async def test_single_stream_ran_out_of_generated_queries() -> None:
    settings = effective(Scenario.SINGLE_STREAM, single_stream_expected_latency_ns=50_000_000.0)
    sut = FakeSut()  # far faster than the 50 ms hint: the schedule is exhausted before min duration
    end, _, _ = await run_once(settings, sut)
    assert end.reason is EndReason.RAN_OUT
    assert end.message.startswith("Ending early: Ran out of generated queries")


async def test_cancel_interrupts_and_still_drains() -> None:
    settings = effective(Scenario.SERVER, min_query_count=10_000, server_target_qps=200.0)
    sut = FakeSut(FakeSutConfig(latency_ns=1_000_000))
    task = asyncio.create_task(run_once(settings, sut))
    await asyncio.sleep(0.1)
    task.cancel()
    end, result, tracker = await task
    assert end.reason is EndReason.INTERRUPTED
    assert end.at_ns is not None and "interrupted by the user after" in end.message
    assert tracker.outstanding_samples == 0
    assert 0 < result.n_queries < 10_000


def test_completion_tracker_rejects_duplicates_and_unknown_ids() -> None:
    indices = np.arange(4, dtype=np.int64).reshape(2, 2)
    recorder = RunRecorder(samples_per_query=[2, 2], sample_indices=indices)
    recorder.mark_start(0)
    tracker = CompletionTracker(recorder)
    recorder.record_issue(0, 0, 1)
    tracker.note_issued(0, 0)
    tracker.complete([QuerySampleResponse(id=0), QuerySampleResponse(id=0), QuerySampleResponse(id=99)], 10)
    assert tracker.completed_samples == 1
    messages = [m for _, m, _ in tracker.events]
    assert any("twice" in m for m in messages) and any("never issued" in m for m in messages)


class TestEndOfRun:
    def test_natural_end_needs_both_count_and_duration(self) -> None:
        s = effective(Scenario.SINGLE_STREAM, min_query_count=100, min_duration_ms=1000)
        kw: dict[str, Any] = {"accuracy": False, "outstanding_queries": 0}
        assert end_of_run(s, issued_queries=99, last_issue_offset_ns=2_000_000_000, **kw) is None
        assert end_of_run(s, issued_queries=100, last_issue_offset_ns=999_999_999, **kw) is None
        end = end_of_run(s, issued_queries=100, last_issue_offset_ns=1_000_000_000, **kw)
        assert end is not None and end.reason is EndReason.NATURAL and not end.is_error
        assert end.message == "Ending naturally: Minimum query count and test duration met."

    def test_max_query_count_and_max_duration(self) -> None:
        s = effective(Scenario.MULTI_STREAM, min_query_count=100, max_query_count=50, max_duration_ms=10)
        end = end_of_run(s, accuracy=False, issued_queries=50, outstanding_queries=0, last_issue_offset_ns=0)
        assert end is not None and end.reason is EndReason.MAX_QUERY_COUNT
        assert end.message == "IssueQueryThread 0 Ending early: Max query count reached. query_count 50"
        end = end_of_run(
            s, accuracy=False, issued_queries=5, outstanding_queries=0, last_issue_offset_ns=10_000_001
        )
        assert end is not None and end.reason is EndReason.MAX_DURATION
        assert (
            end.message == "IssueQueryThread 0 Ending early: Max test duration reached. duration_ns 10000001"
        )

    def test_server_outstanding_limit_checked_first_and_no_natural_end(self) -> None:
        s = effective(Scenario.SERVER, server_max_async_queries=3, max_query_count=10)
        kw: dict[str, Any] = {"accuracy": False, "last_issue_offset_ns": 10**12}
        assert end_of_run(s, issued_queries=5, outstanding_queries=3, **kw) is None
        end = end_of_run(s, issued_queries=10, outstanding_queries=4, **kw)
        assert end is not None and end.reason is EndReason.TOO_MANY_OUTSTANDING
        assert (
            end.message
            == "IssueQueryThread 0 Ending early: Too many outstanding queries. issued 10 outstanding 4"
        )

    @pytest.mark.parametrize("scenario", list(Scenario))
    def test_accuracy_mode_never_ends_early(self, scenario: Scenario) -> None:
        s = effective(scenario, max_query_count=1, max_duration_ms=1)
        assert (
            end_of_run(
                s, accuracy=True, issued_queries=10**6, outstanding_queries=10**6, last_issue_offset_ns=10**15
            )
            is None
        )
