"""One test-mode pass through the issue loop: an accuracy pass (every loadable set) or a performance pass.

`run_mode` generates the pass's queries, sizes the recorder and the tracker, runs each loadable set
through `issue_queries` (`_timed`), and returns what the pass produced (`ModeResult`); a `--workers N`
performance pass goes to `edgeperf.client.issue.worker_pass` instead. `edgeperf.client.modes` chooses
which passes a run makes.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import dataclasses
import functools
import sys
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from edgeperf.client.issue.loop import EndOfRun, EndReason, issue_queries
from edgeperf.client.issue.pass_result import LoadableSetLog, ModeResult, with_active_time
from edgeperf.client.issue.raw_results import RunResult
from edgeperf.client.issue.recorder import RunRecorder
from edgeperf.client.issue.selfcheck import ClientCheck, TimedSection, client_check, issue_delays_ns
from edgeperf.client.issue.sut import InFlightCounted, SystemUnderTest
from edgeperf.client.issue.tracker import CompletionTracker
from edgeperf.client.issue.worker_pass import run_pass_with_workers
from edgeperf.client.issue.workers import SutFactory
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.qsl import QuerySampleLibrary
from edgeperf.client.plan.scenarios import make_scheduler
from edgeperf.client.plan.scenarios.base import Clock
from edgeperf.client.plan.schedule import (
    Schedule,
    SequenceGenerator,
    accuracy_log_mask,
    generate_queries,
    loadable_sets,
)
from edgeperf.client.plan.settings import Scenario

if TYPE_CHECKING:
    from edgeperf.client.issue.power import PowerMonitor

__all__ = ["PassContext", "run_mode"]

T = TypeVar("T")


class PassDisplay(Protocol):
    """A live display that follows a pass (`edgeperf.client.report.progress.ProgressDisplay`)."""

    def attach(
        self,
        tracker: CompletionTracker,
        settings: EffectiveSettings,
        start_ns: int,
        *,
        total_queries: int,
        accuracy: bool,
    ) -> None: ...

    def detach(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class PassContext:
    """What every pass of one run shares: the SUT, the QSL, the clock and how to end a pass early."""

    sut: SystemUnderTest
    qsl: QuerySampleLibrary
    clock: Clock
    drain_timeout_s: float
    abort_after_errors: int | None
    stop: asyncio.Event | None
    display: PassDisplay | None
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


async def run_mode(
    ctx: PassContext, settings: EffectiveSettings, seq: SequenceGenerator, *, accuracy: bool
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
        # NOTE: held by the list only (no loop variable), so dropping the list frees the schedules.
        schedules.append(generate_queries(settings, loaded, accuracy=accuracy))
        block = seq.assign(schedules[-1])
        if first_seq_id < 0:
            first_seq_id = block.first_sample_id
        masks.append(accuracy_log_mask(settings, block.accuracy_log_values, accuracy=accuracy).reshape(-1))
        # NOTE: the block's float per sample is needed only for the mask; not kept through the run.
        del block
    if not accuracy and ctx.workers > 1:
        assert ctx.factory is not None, "checked by run_with_sut"
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
    # NOTE: before the recorder's columns, so they take the place of the set-up's freed temporaries.
    _release_free_memory()
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
    tracker = CompletionTracker(
        recorder,
        keep=masks[0] if len(masks) == 1 else np.concatenate(masks),
        abort_after_errors=ctx.abort_after_errors,
        stall_timeout_s=ctx.drain_timeout_s,
        abort_after_silence_ns=(
            None
            if ctx.abort_after_errors is None
            else int((ctx.silence_timeout_s or ctx.drain_timeout_s) * 1e9)
        ),
    )
    # NOTE: the tracker keeps the masks as bits: a bool a sample no longer lives through the pass.
    del masks
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
    sets_done = with_active_time(set_logs, schedules, result)
    # NOTE: the schedules' offsets (8 bytes a query) are not needed past here; the self-check's issue
    # delays and the summary's buffer take their place instead of adding to the end's peak memory.
    del schedules
    client = _client_check(ctx, settings, section, result, overflow0)
    measured = None
    if power is not None:
        # NOTE: the window ends at the last completion, as the detail log's power_end does.
        done = result.sample_completed_ns
        measured = await power.end(int(done.max()) if done.size else result.end_ns)
    return ModeResult(
        result=result,
        power=measured,
        power_note=None if power is None or measured is not None else power.failure,
        sets=sets_done,
        end=end,
        interrupted_after_s=None if stopped_ns is None else max(stopped_ns - start_ns, 0) / 1e9,
        client=client,
    )


async def _timed(
    ctx: PassContext,
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


def _release_free_memory() -> None:
    """Hand the memory that set-up freed back to the system before the timed part (glibc only).

    Generating the schedule and its accuracy-log mask frees temporaries of 10-20 bytes a query; glibc
    keeps freed heap pages resident, so they stayed in the process's peak RSS beside the recorder's
    columns allocated after them. `malloc_trim(0)` returns every free page (a few ms, once a pass).
    """
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes = (ctypes.c_size_t,)
    except (OSError, AttributeError):  # NOTE: musl and others have no malloc_trim: nothing to release
        return None
    return libc


def _in_flight(sut: SystemUnderTest) -> tuple[int | None, int]:
    """The SUT's transport in-flight cap and how many requests waited for it so far (GrpcSut has them)."""
    if isinstance(sut, InFlightCounted):
        return sut.in_flight_cap, sut.in_flight_overflow
    return None, 0


def _client_check(
    ctx: PassContext, settings: EffectiveSettings, section: TimedSection, result: RunResult, overflow0: int
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
