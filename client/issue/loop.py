"""The issue loop: wait for each query's time, hand it to the SUT, track completions, decide the end.

The end-of-run conditions of LoadGen's issue loop (§6.3) are one pure function in
`edgeperf.client.issue.stop` (re-exported here); completions go to a `CompletionTracker`
(`edgeperf.client.issue.tracker`). `issue_queries` runs one schedule through a scheduler and a SUT, in
named steps (which queries this process issues, whether the next may go, coalescing late Server
queries, the end, the drain), and always returns: a dead or hung SUT ends the drain at its timeout,
leaving the missing samples INCOMPLETE in the results.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgeperf.client.issue.recorder import RunRecorder
from edgeperf.client.issue.stop import RAN_OUT_MESSAGE, EndOfRun, EndReason, end_of_run
from edgeperf.client.issue.sut import QuerySample, SystemUnderTest
from edgeperf.client.issue.tracker import CompletionTracker
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.scenarios.base import Clock, Scheduler
from edgeperf.client.plan.scenarios.server import ServerScheduler
from edgeperf.client.plan.settings import Scenario

__all__ = ["EndOfRun", "EndReason", "end_of_run", "issue_queries"]


def _too_many_errors(tracker: CompletionTracker) -> EndOfRun:
    return EndOfRun(
        reason=EndReason.TOO_MANY_ERRORS,
        message=(
            f"Ending early: {tracker.consecutive_errors} samples in a row failed and none "
            f"succeeded since (last: {tracker.last_error})"
        ),
        is_error=True,
    )


@dataclass(frozen=True, slots=True)
class _Share:
    """What of a schedule this process issues: queries `first`, `first + step`, ... below `n_queries`,
    each with its samples `lo:hi` (all of them but in a `--workers N` Offline pass)."""

    n_queries: int
    first: int
    step: int
    lo: int
    hi: int
    coalesce: bool


def _share(
    scheduler: Scheduler, settings: EffectiveSettings, n_queries: int, spq: int, share: tuple[int, int]
) -> _Share:
    worker, workers = share
    coalesce = settings.server_coalesce_queries and isinstance(scheduler, ServerScheduler)
    step = workers if workers > 1 and isinstance(scheduler, ServerScheduler) else 1
    lo, hi = 0, spq
    if workers > 1:
        coalesce = False  # NOTE: refused with workers before the run (`workers.check_workers`)
        if settings.max_query_count is not None:
            n_queries = min(n_queries, settings.max_query_count)
        if step == 1:
            lo, hi = spq * worker // workers, spq * (worker + 1) // workers
            if lo == hi:
                n_queries = 0  # NOTE: fewer samples than workers: this one has none to send
    return _Share(n_queries, worker if step > 1 else 0, step, lo, hi, coalesce)


def _not_issuing(tracker: CompletionTracker, last_query: int) -> EndOfRun | None:
    """Why the next query must not be sent, checked once its time has come; None: send it."""
    if tracker.stalled:
        return EndOfRun(
            reason=EndReason.STALLED,
            message=f"Ending early: query {last_query} had no response for the stall timeout",
            is_error=True,
        )
    if tracker.should_abort:
        # NOTE: SingleStream learns of the failure only here, when the previous query ends: sending
        # the next one to a dead link would add a whole deadline to the run's end.
        return _too_many_errors(tracker)
    return None


def _coalesced(
    scheduler: ServerScheduler,
    indices: npt.NDArray[np.int32],
    q: int,
    scheduled_ns: int,
    issued_ns: int,
    *,
    n_queries: int,
    first_query: int,
    tracker: CompletionTracker,
    recorder: RunRecorder,
) -> tuple[list[QuerySample], int]:
    """Query `q` and every later one already due, recorded as issued now: their samples and count."""
    batch = [(q, scheduled_ns)]
    while q + len(batch) < n_queries and scheduler.scheduled_ns(q + len(batch)) <= issued_ns:
        nxt = q + len(batch)
        batch.append((nxt, scheduler.scheduled_ns(nxt)))
    samples: list[QuerySample] = []
    for local, sched in batch:
        slot = recorder.first_slot(first_query + local)
        samples.extend(QuerySample(slot + k, idx) for k, idx in enumerate(indices[local].tolist()))
        recorder.record_issue(first_query + local, sched, issued_ns)
        tracker.note_issued(first_query + local, sched)
    return samples, len(batch)


def _interrupted(clock: Clock, start_ns: int) -> EndOfRun:
    at_ns = clock.now_ns()
    return EndOfRun(
        reason=EndReason.INTERRUPTED,
        message=f"Ending early: interrupted by the user after {(at_ns - start_ns) / 1e9:.1f} s",
        is_error=True,
        at_ns=at_ns,
    )


def _schedule_done(settings: EffectiveSettings, *, accuracy: bool) -> EndOfRun:
    """The end when every generated query was issued and no other condition ended the run first."""
    if not accuracy and settings.scenario in (Scenario.SINGLE_STREAM, Scenario.MULTI_STREAM):
        return EndOfRun(reason=EndReason.RAN_OUT, message=RAN_OUT_MESSAGE, is_error=True)
    return EndOfRun(reason=EndReason.ALL_ISSUED, message="All generated queries issued.", is_error=False)


async def _drain(
    sut: SystemUnderTest, tracker: CompletionTracker, clock: Clock, end: EndOfRun, drain_timeout_s: float
) -> None:
    """Flush the SUT and wait for the samples in flight; those still missing stay INCOMPLETE."""
    await sut.flush_queries()
    timeout_s = min(drain_timeout_s, 2.0) if end.reason is EndReason.INTERRUPTED else drain_timeout_s
    if not await tracker.wait_all(timeout_s):
        # NOTE: not an error line: the writer reports the INCOMPLETE samples once, with their count.
        tracker.events.append(
            (
                clock.now_ns(),
                f"Stopped waiting for {tracker.outstanding_samples} samples with no response "
                f"{timeout_s:g} s after the last issue (logged as INCOMPLETE)",
                False,
            )
        )


async def issue_queries(
    sut: SystemUnderTest,
    *,
    scheduler: Scheduler,
    sample_indices: npt.NDArray[np.int32],
    settings: EffectiveSettings,
    tracker: CompletionTracker,
    recorder: RunRecorder,
    clock: Clock,
    start_ns: int,
    accuracy: bool,
    first_query: int = 0,
    drain_timeout_s: float = 30.0,
    share: tuple[int, int] = (0, 1),
) -> EndOfRun:
    """Issue the queries of one schedule (one loadable set), then flush and drain the completions.

    Args:
        sample_indices: [n_queries, samples_per_query] QSL indices of the schedule.
        first_query: recorder index of this schedule's first query (accuracy mode runs one schedule
            per loadable set into one recorder).
        drain_timeout_s: after the last issue, how long to wait for outstanding samples.
        share: (worker, workers) of a `--workers N` run (`edgeperf.client.issue.workers`): this process issues
            Server queries worker, worker + N, ... at their absolute times, or its contiguous part of the
            samples of Offline's query; queries at or past `max_query_count` are never issued, so the
            workers together issue exactly what one process would.

    Returns:
        Why issuing stopped. Cancelling the task that runs it stops issuing (INTERRUPTED) and still drains.
    """
    # NOTE: read per query from the array (no list of the whole schedule: ~100 bytes a query).
    indices = sample_indices
    spq = int(indices.shape[1]) if indices.ndim == 2 else 1
    mine = _share(scheduler, settings, int(indices.shape[0]), spq, share)
    n_queries, step, lo, hi = mine.n_queries, mine.step, mine.lo, mine.hi
    complete = tracker.complete
    end: EndOfRun | None = None
    q = mine.first
    try:
        while q < n_queries:
            scheduled_ns = await scheduler.wait(q)
            end = _not_issuing(tracker, first_query + q - 1)
            if end is not None:
                break
            issued_ns = clock.now_ns()
            query = first_query + q
            if mine.coalesce:
                assert isinstance(scheduler, ServerScheduler)
                samples, count = _coalesced(
                    scheduler,
                    indices,
                    q,
                    scheduled_ns,
                    issued_ns,
                    n_queries=n_queries,
                    first_query=first_query,
                    tracker=tracker,
                    recorder=recorder,
                )
                q += count
            else:
                # NOTE: the common path (one query, usually one sample) allocates only its samples.
                slot = recorder.first_slot(query)
                samples = (
                    [QuerySample(slot, int(indices[q, 0]))]
                    if hi - lo == 1 and spq == 1
                    else [
                        QuerySample(slot + k, idx)
                        for k, idx in enumerate(indices[q, lo:hi].tolist(), start=lo)
                    ]
                )
                recorder.record_issue(query, scheduled_ns, issued_ns)
                tracker.note_issued(query, scheduled_ns, hi - lo)
                q += step
            await sut.issue_query(samples, complete)
            end = end_of_run(
                settings,
                accuracy=accuracy,
                issued_queries=first_query + q - step + 1,
                outstanding_queries=tracker.outstanding_queries,
                last_issue_offset_ns=issued_ns - start_ns,
            )
            if end is None and tracker.should_abort:
                end = _too_many_errors(tracker)
            if end is not None:
                break
    except asyncio.CancelledError:
        # NOTE: the caller cancels us to stop (Ctrl-C); the samples in flight are still drained.
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        end = _interrupted(clock, start_ns)
    if end is None:
        end = _schedule_done(settings, accuracy=accuracy)
    await _drain(sut, tracker, clock, end, drain_timeout_s)
    return end
