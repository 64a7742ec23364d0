"""The test modes against any `SystemUnderTest`: accuracy and performance passes and the Server peak search.

`run_with_sut` runs `requested.mode` (AccuracyOnly, PerformanceOnly, SubmissionRun or
FindPeakPerformance) pass by pass, each through the issue loop with its loadable sets, and hands what
they produced to `edgeperf.client.report.finish.finish_run`, which writes the logs. It always returns an
outcome for a run that started; a dead server or a stop request gives an INVALID outcome with complete logs.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from edgeperf.client.errors import RunSetupError
from edgeperf.client.issue.loop import EndOfRun, EndReason, issue_queries
from edgeperf.client.issue.pass_result import LoadableSetLog, ModeResult, ModeRuns
from edgeperf.client.issue.raw_results import RunResult
from edgeperf.client.issue.recorder import RunRecorder
from edgeperf.client.issue.selfcheck import ClientCheck, TimedSection, client_check, issue_delays_ns
from edgeperf.client.issue.sut import InFlightCounted, SystemUnderTest
from edgeperf.client.issue.tracker import CompletionTracker
from edgeperf.client.issue.workers import SutFactory, check_workers
from edgeperf.client.plan.peak_search import find_peak_qps
from edgeperf.client.plan.qsl import QuerySampleLibrary
from edgeperf.client.plan.scenarios import LoopClock, make_scheduler
from edgeperf.client.plan.scenarios.base import Clock
from edgeperf.client.plan.schedule import (
    Schedule,
    SequenceGenerator,
    accuracy_log_mask,
    generate_queries,
    loadable_sets,
)
from edgeperf.client.plan.settings import EffectiveSettings, Scenario, TestMode, TestSettings
from edgeperf.client.report.finish import finish_run
from edgeperf.client.report.metrics import summarize
from edgeperf.client.report.run_outcome import RunOutcome

if TYPE_CHECKING:
    from edgeperf.benchmarks.base import AccuracyReport
    from edgeperf.client.issue.network import NetworkReport
    from edgeperf.client.issue.power import PowerMonitor
    from edgeperf.client.report.progress import ProgressDisplay

__all__ = ["effective_settings", "run_mode", "run_with_sut"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Context:
    sut: SystemUnderTest
    qsl: QuerySampleLibrary
    clock: Clock
    drain_timeout_s: float
    abort_after_errors: int | None
    stop: asyncio.Event | None
    display: ProgressDisplay | None
    workers: int = 1
    factory: SutFactory | None = None
    silence_timeout_s: float | None = None
    """End the pass when samples fail and none succeeded for this long (None: `drain_timeout_s`)."""
    power: PowerMonitor | None = None
    """Marks each performance pass on the server's power stream."""


async def _until_stopped(work: Awaitable[T], stop: asyncio.Event | None) -> T:
    """Await `work`; if `stop` is set first, cancel it (the issue loop then drains and returns)."""
    task = asyncio.ensure_future(work)
    if stop is None:
        return await task
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
        return await task
    finally:
        stopper.cancel()
        if not task.done():
            # NOTE: the caller itself was cancelled (a second Ctrl-C abandons the run): stop the issue loop
            # too and collect its end, so nothing keeps issuing into a closed SUT or fails unobserved.
            task.cancel()
            task.add_done_callback(_collect)


def _collect(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def effective_settings(requested: TestSettings, qsl: QuerySampleLibrary) -> EffectiveSettings:
    return EffectiveSettings.from_requested(
        requested,
        total_sample_count=qsl.total_sample_count,
        performance_sample_count=qsl.performance_sample_count,
    )


async def run_mode(
    ctx: _Context, settings: EffectiveSettings, seq: SequenceGenerator, *, accuracy: bool
) -> ModeResult:
    """One accuracy pass (every loadable set in turn) or one performance pass (the first set)."""
    sets = loadable_sets(settings, ctx.qsl.total_sample_count, accuracy=accuracy)
    if not accuracy:
        sets = sets[:1]
    schedules: list[Schedule] = []
    masks: list[np.ndarray] = []
    first_seq_id = -1
    for loaded in sets:
        # NOTE: LoadGen's distribution range excludes MultiStream's padding entries.
        schedule = generate_queries(settings, loaded, accuracy=accuracy)
        block = seq.assign(schedule)
        if first_seq_id < 0:
            first_seq_id = block.first_sample_id
        schedules.append(schedule)
        masks.append(accuracy_log_mask(settings, block.accuracy_log_values, accuracy=accuracy).reshape(-1))
        # NOTE: the block's float per sample is needed only for the mask; not kept through the run.
        del block
    if not accuracy and ctx.workers > 1:
        assert ctx.factory is not None, "checked by run_with_sut"
        from edgeperf.client.worker_pass import run_pass_with_workers

        passed = await run_pass_with_workers(
            ctx.factory,
            ctx.workers,
            settings,
            loaded=sets[0],
            schedule=schedules[0],
            keep=masks[0],
            first_seq_id=first_seq_id,
            drain_timeout_s=ctx.drain_timeout_s,
            abort_after_errors=ctx.abort_after_errors,
            stop=ctx.stop,
        )
        if ctx.power is None:
            return passed
        # NOTE: the pass starts inside the worker processes, after they have started; marks taken here
        # would add that start-up to the window.
        return dataclasses.replace(passed, power_note="not measured with --workers above 1")
    widths = {s.sample_indices.shape[1] for s in schedules}
    n_queries = sum(s.query_count for s in schedules)
    # NOTE: uniform queries (every performance pass) are described by one int, not a list per query.
    sizes: int | list[int] = (
        widths.pop()
        if len(widths) == 1
        else [s.sample_indices.shape[1] for s in schedules for _ in range(s.query_count)]
    )
    flat_indices = (
        schedules[0].sample_indices.reshape(-1)
        if len(schedules) == 1
        else np.concatenate([s.sample_indices.reshape(-1) for s in schedules])
    )
    recorder = RunRecorder(
        samples_per_query=sizes,
        n_queries=n_queries,
        sample_indices=flat_indices,
        first_seq_id=first_seq_id,
    )
    keep = np.concatenate(masks)
    tracker = CompletionTracker(
        recorder,
        keep=keep,
        abort_after_errors=ctx.abort_after_errors,
        stall_timeout_s=ctx.drain_timeout_s,
        abort_after_silence_ns=(
            None
            if ctx.abort_after_errors is None
            else int((ctx.silence_timeout_s or ctx.drain_timeout_s) * 1e9)
        ),
    )
    # NOTE: samples are loaded before the test starts, as LoadGen does (later sets between passes).
    ctx.qsl.load_samples(sets[0])
    overflow0 = _in_flight(ctx.sut)[1]
    section = TimedSection()
    power = None if accuracy else ctx.power
    if power is not None:
        await power.begin()
    try:
        with section:
            end, set_logs, start_ns = await _timed(
                ctx, settings, sets, schedules, tracker, recorder, accuracy
            )
    except BaseException:
        if power is not None:
            power.cancel()
        raise
    for t, message, is_error in tracker.events:
        recorder.record_event(
            t, "error_runtime" if is_error else "generic_message", message, is_error=is_error
        )
    recorder.record_event(
        ctx.clock.now_ns(),
        "error_runtime" if end.is_error else "generic_message",
        end.message,
        is_error=end.is_error,
    )
    if ctx.display is not None:
        ctx.display.detach()
    stopped_ns = end.at_ns if end.reason is EndReason.INTERRUPTED else None
    result = recorder.finish(ctx.clock.now_ns())
    measured = None
    if power is not None:
        # NOTE: the window ends at the last completion, as the detail log's power_end does.
        done = result.sample_completed_ns
        measured = await power.end(int(done.max()) if done.size else result.end_ns)
    return ModeResult(
        result=result,
        power=measured,
        power_note=None if power is None or measured is not None else power.failure,
        sets=with_active_time(set_logs, schedules, result),
        end=end,
        interrupted_after_s=None if stopped_ns is None else max(stopped_ns - start_ns, 0) / 1e9,
        client=_client_check(ctx, settings, section, result, overflow0),
    )


def with_active_time(
    set_logs: list[LoadableSetLog], schedules: list[Schedule], result: RunResult
) -> tuple[LoadableSetLog, ...]:
    """Each set's time from its start to its last completion (LoadGen's power window per set)."""
    done = result.sample_completed_ns
    out: list[LoadableSetLog] = []
    first = 0
    for ls, schedule in zip(set_logs, schedules, strict=False):
        part = done[first : first + schedule.sample_indices.size]
        first += schedule.sample_indices.size
        # NOTE: never-completed samples are -1, below every completion: no filtered copy is needed.
        last = int(part.max(initial=-1))
        last_ns = result.start_ns + last if last >= 0 else None
        start_ns = ls.start_ns if ls.start_ns is not None else result.start_ns
        active_ns = 0 if last_ns is None else max(last_ns - start_ns, 0)
        out.append(dataclasses.replace(ls, active_ns=active_ns))
    return tuple(out)


async def _timed(
    ctx: _Context,
    settings: EffectiveSettings,
    sets: list[list[int]],
    schedules: list[Schedule],
    tracker: CompletionTracker,
    recorder: RunRecorder,
    accuracy: bool,
) -> tuple[EndOfRun, list[LoadableSetLog], int]:
    """The timed part of a pass: every loadable set through the issue loop, drained."""
    start_ns = ctx.clock.now_ns()
    recorder.mark_start(start_ns)
    if ctx.display is not None:
        ctx.display.attach(
            tracker, settings, start_ns, total_queries=tracker.total_queries, accuracy=accuracy
        )
    end: EndOfRun | None = None
    first_query = 0
    set_logs: list[LoadableSetLog] = []
    for set_index, (loaded, schedule) in enumerate(zip(sets, schedules, strict=True)):
        set_logs.append(
            LoadableSetLog(
                loaded_qsl_set=tuple(loaded),
                generated_query_count=schedule.query_count,
                generated_samples_per_query=schedule.generated_samples_per_query,
                generated_query_duration_ns=schedule.generated_query_duration_ns,
            )
        )
        if set_index > 0:
            ctx.qsl.load_samples(loaded)
        set_start_ns = start_ns if set_index == 0 else ctx.clock.now_ns()
        set_logs[-1] = dataclasses.replace(set_logs[-1], start_ns=set_start_ns)
        scheduler = make_scheduler(
            settings.scenario,
            start_ns=set_start_ns,
            offsets_ns=schedule.scheduled_offsets_ns,
            progress=tracker,
            clock=ctx.clock,
        )
        end = await _until_stopped(
            issue_queries(
                ctx.sut,
                scheduler=scheduler,
                sample_indices=schedule.sample_indices,
                settings=settings,
                tracker=tracker,
                recorder=recorder,
                clock=ctx.clock,
                start_ns=set_start_ns,
                accuracy=accuracy,
                first_query=first_query,
                drain_timeout_s=ctx.drain_timeout_s,
            ),
            ctx.stop,
        )
        ctx.qsl.unload_samples(loaded)
        first_query += schedule.query_count
        if end.reason in (EndReason.INTERRUPTED, EndReason.TOO_MANY_ERRORS, EndReason.STALLED):
            break
    assert end is not None
    return end, set_logs, start_ns


def _in_flight(sut: SystemUnderTest) -> tuple[int | None, int]:
    """The SUT's transport in-flight cap and how many requests waited for it so far (GrpcSut has them)."""
    if isinstance(sut, InFlightCounted):
        return sut.in_flight_cap, sut.in_flight_overflow
    return None, 0


def _client_check(
    ctx: _Context, settings: EffectiveSettings, section: TimedSection, result: RunResult, overflow0: int
) -> ClientCheck:
    assert section.cost is not None
    delays = issue_delays_ns(result.issued_ns, result.scheduled_ns)
    cap, overflow = _in_flight(ctx.sut)
    return client_check(
        delays,
        [(section.cost, delays)],
        samples=result.n_samples,
        late_counts=settings.scenario is Scenario.SERVER,
        in_flight_cap=cap,
        in_flight_overflow=overflow - overflow0,
    )


async def _find_peak(ctx: _Context, settings: EffectiveSettings) -> ModeRuns:
    """LoadGen's FindPeakPerformanceMode: every probe a performance pass on one sequence generator.

    A probe passes when it meets the latency bound (`PerfConstraintsMet`); min duration, min queries and
    early stopping decide only the reported run's validity, as in LoadGen. Only the effective target QPS
    changes between probes (LoadGen edits `TestSettingsInternal`), so the requested settings logged are
    the user's. The reported run is the highest passing probe (the start probe when none passed).
    """
    if settings.server_find_peak_qps_boundary_step_size <= 0:
        # NOTE: LoadGen would widen the bound forever.
        raise RunSetupError(
            "FindPeakPerformance needs server_find_peak_qps_boundary_step_size above 0, not "
            f"{settings.server_find_peak_qps_boundary_step_size!r}"
        )
    seq = SequenceGenerator()
    best: tuple[EffectiveSettings, ModeResult] | None = None
    last: tuple[EffectiveSettings, ModeResult] | None = None
    probe_sets: list[tuple[float, LoadableSetLog]] = []

    async def probe(qps: float) -> bool:
        nonlocal best, last
        if last is not None and (last[1].interrupted or last[1].aborted):
            return False
        probe_settings = dataclasses.replace(settings, target_qps=qps)
        run = await run_mode(ctx, probe_settings, seq, accuracy=False)
        last = (probe_settings, run)
        probe_sets.append((qps, run.sets[0]))
        summary = summarize(probe_settings, run.result)
        passed = summary.perf_constraints_met and not run.interrupted and not run.aborted
        if passed:
            best = (probe_settings, run)
        return passed

    peak_qps, probes = await find_peak_qps(
        probe,
        start_qps=settings.target_qps,
        boundary_step_size=settings.server_find_peak_qps_boundary_step_size,
        decimals_of_precision=settings.server_find_peak_qps_decimals_of_precision,
    )
    # NOTE: when the start fails the search stops there, so the last probe is the start probe.
    chosen = best or last
    assert chosen is not None and last is not None
    chosen_settings, performance = chosen
    if (last[1].interrupted or last[1].aborted) and performance is not last[1]:
        # NOTE: a stop or a dead SUT ends the whole search; the reported pass carries it (INVALID).
        performance = dataclasses.replace(
            performance, end=last[1].end, interrupted_after_s=last[1].interrupted_after_s
        )
    return ModeRuns(
        settings=chosen_settings,
        performance=performance,
        peak_qps=peak_qps,
        probes=tuple(probes),
        probe_sets=tuple(probe_sets),
    )


async def _run_modes(ctx: _Context, settings: EffectiveSettings, requested: TestSettings) -> ModeRuns:
    mode = settings.mode
    if mode is TestMode.FIND_PEAK_PERFORMANCE:
        if settings.scenario is not Scenario.SERVER:
            raise RunSetupError("FindPeakPerformance applies to the Server scenario only")
        return await _find_peak(ctx, settings)
    seq = SequenceGenerator()
    accuracy: ModeResult | None = None
    performance: ModeResult | None = None
    if mode in (TestMode.ACCURACY_ONLY, TestMode.SUBMISSION_RUN):
        accuracy = await run_mode(ctx, settings, seq, accuracy=True)
    accuracy_ended = accuracy is not None and (accuracy.interrupted or accuracy.aborted)
    if mode in (TestMode.PERFORMANCE_ONLY, TestMode.SUBMISSION_RUN) and not accuracy_ended:
        performance = await run_mode(ctx, settings, seq, accuracy=False)
    return ModeRuns(settings=settings, accuracy=accuracy, performance=performance)


async def run_with_sut(
    sut: SystemUnderTest,
    qsl: QuerySampleLibrary,
    requested: TestSettings,
    out_dir: Path,
    *,
    clock: Clock | None = None,
    drain_timeout_s: float = 30.0,
    abort_after_errors: int | None = 100,
    stop: asyncio.Event | None = None,
    display: ProgressDisplay | None = None,
    info_messages: tuple[str, ...] = (),
    score: Callable[[Path], AccuracyReport] | None = None,
    system_name: str = "edgeperf",
    workers: int = 1,
    worker_factory: SutFactory | None = None,
    silence_timeout_s: float | None = None,
    power: PowerMonitor | None = None,
    power_note: str | None = None,
    network: NetworkReport | None = None,
) -> RunOutcome:
    """Run `requested.mode` against `sut` and write the logs under `out_dir`.

    Args:
        score: reads the accuracy log written under `out_dir` and scores it (benchmarks); its text
            becomes `accuracy.txt`.
        stop: set it to end the run early (Ctrl-C); the outcome is then INVALID and marked interrupted.
        workers: processes that issue a Server or Offline performance pass (`edgeperf.client.issue.workers`);
            each opens its own SUT and QSL with `worker_factory`.
        silence_timeout_s: end a pass once samples fail and none has succeeded for this long (a dead link
            or hung server; the request deadline); None: `drain_timeout_s`.
        power: measures the server's power over each performance pass; without it `power_note` says why.
        network: the network characterised before the run, recorded beside the results.
    """
    settings = effective_settings(requested, qsl)
    check_workers(settings, workers)
    if workers > 1 and worker_factory is None:
        raise RunSetupError("workers > 1 needs a worker_factory that opens the SUT in each process")
    own_clock: LoopClock | None = None
    if clock is None:
        clock = own_clock = LoopClock()
    ctx = _Context(
        sut=sut,
        qsl=qsl,
        clock=clock,
        drain_timeout_s=drain_timeout_s,
        abort_after_errors=abort_after_errors,
        stop=stop,
        display=None if workers > 1 else display,
        workers=workers,
        factory=worker_factory,
        silence_timeout_s=silence_timeout_s,
        power=power,
    )
    # NOTE: the logger's start: every detail line's time_ms and both power windows count from it.
    log_start_ns = clock.now_ns()
    test_datetime = datetime.now(UTC)
    header_ns = clock.now_ns() - log_start_ns
    try:
        runs = await _run_modes(ctx, settings, requested)
    finally:
        if own_clock is not None:
            own_clock.close()
    return finish_run(
        runs,
        out_dir,
        sut_name=sut.name,
        qsl_name=qsl.name,
        qsl_total_count=qsl.total_sample_count,
        qsl_performance_count=qsl.performance_sample_count,
        test_datetime=test_datetime,
        log_start_ns=log_start_ns,
        header_ns=header_ns,
        messages=(f"system: {system_name}", *info_messages),
        score=score,
        power_note=power_note,
        network=network,
    )
