"""The issue loop: wait for each query's time, hand it to the SUT, track completions, decide the end.

The end-of-run conditions of LoadGen's issue loop (§6.3) are one pure function in
`edgeperf.client.issue.stop` (re-exported here). `CompletionTracker` is the `QuerySamplesComplete` the SUT
calls: it records each sample in the `RunRecorder` by its slot, counts failures and wakes the
SingleStream/MultiStream scheduler. `issue_queries` runs one
schedule through a scheduler and a SUT and always returns: a dead or hung SUT ends the drain at its
timeout, leaving the missing samples INCOMPLETE in the results.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from edgeperf.client.issue.recorder import RunRecorder
from edgeperf.client.issue.stop import RAN_OUT_MESSAGE, EndOfRun, EndReason, end_of_run
from edgeperf.client.issue.sut import STATUS_OK, QuerySample, QuerySampleResponse, SystemUnderTest
from edgeperf.client.plan.scenarios.base import Clock, Scheduler
from edgeperf.client.plan.scenarios.server import ServerScheduler
from edgeperf.client.plan.settings import EffectiveSettings, Scenario

__all__ = ["CompletionTracker", "EndOfRun", "EndReason", "end_of_run", "issue_queries"]


class CompletionTracker:
    """Counts completions and follows which queries are done; the recorder stores them.

    Sample ids are the recorder's flat sample slots: the recorder owns the layout (which query a slot
    belongs to), this only counts. Call `note_issued` before handing a query to the SUT. Call only from
    the event loop thread.

    Args:
        recorder: where samples are recorded; its queries and their sizes are the ones tracked.
        keep: pass response bytes to the recorder (accuracy log) for the sample slots where it is
            true; None: for none.
        abort_after_errors: consecutive failed samples after which `should_abort` turns true; None: never.
        stall_timeout_s: how long `wait_query_done` waits before it gives up and sets `stalled`
            (a SUT that never answers must not hang SingleStream or MultiStream).
        abort_after_silence_ns: `should_abort` also turns true when samples keep failing and nothing
            succeeded for this long (a hung server: its requests time out one deadline after the last
            success); None: never.
    """

    def __init__(
        self,
        recorder: RunRecorder,
        *,
        keep: npt.NDArray[np.bool_] | None = None,
        abort_after_errors: int | None = None,
        stall_timeout_s: float = 60.0,
        abort_after_silence_ns: int | None = None,
    ) -> None:
        self._recorder = recorder
        self._stall_timeout_s = stall_timeout_s
        self._silence_ns = abort_after_silence_ns
        self._last_ok_ns = 0
        self._last_error_ns = 0
        self.stalled = False
        # NOTE: numpy columns, not lists: a fixed few bytes per query for the whole run (see recorder.py).
        self._remaining = np.zeros(recorder.n_queries, dtype=np.int32)
        self._done = bytearray(recorder.n_samples)
        self._keep: npt.NDArray[np.bool_] | None = None if keep is None else np.asarray(keep, dtype=bool)
        self._abort_after = abort_after_errors
        self._waiter: tuple[int, asyncio.Future[None]] | None = None
        self._all_done: asyncio.Future[None] | None = None
        self.issued_queries = 0
        self.issued_samples = 0
        self.completed_queries = 0
        self.completed_samples = 0
        self.failed_samples = 0
        self.consecutive_errors = 0
        self.last_error = ""
        self.window_latency_sum_ns = 0
        self.window_latency_count = 0
        self.events: list[tuple[int, str, bool]] = []
        """(absolute ns, message, is_error) for the detail log."""

    @property
    def total_queries(self) -> int:
        return int(self._remaining.shape[0])

    def note_issued(self, query: int, scheduled_ns: int, size: int | None = None) -> None:
        """`size`: the samples of the query this process sends (a worker's share of Offline's query)."""
        if self._last_ok_ns == 0:
            self._last_ok_ns = scheduled_ns
        if size is None:
            size = self._recorder.query_size(query)
        self._remaining[query] = size
        self.issued_queries += 1
        self.issued_samples += size

    @property
    def outstanding_queries(self) -> int:
        return self.issued_queries - self.completed_queries

    @property
    def outstanding_samples(self) -> int:
        return self.issued_samples - self.completed_samples

    @property
    def should_abort(self) -> bool:
        if self.consecutive_errors == 0:
            return False
        if self._abort_after is not None and self.consecutive_errors >= self._abort_after:
            return True
        return self._silence_ns is not None and self._last_error_ns - self._last_ok_ns >= self._silence_ns

    def complete(self, responses: Sequence[QuerySampleResponse], completed_ns: int) -> None:
        """`QuerySamplesComplete`: record each response; `completed_ns` was taken on arrival."""
        recorder = self._recorder
        keep = self._keep
        for response in responses:
            slot = response.id
            if not 0 <= slot < len(self._done) or self._done[slot]:
                what = "twice" if 0 <= slot < len(self._done) else "that was never issued"
                self.events.append((completed_ns, f"Attempted to complete a sample {what}: id {slot}", True))
                continue
            self._done[slot] = 1
            query = recorder.query_of(slot)
            if response.status == STATUS_OK:
                recorder.record_sample_complete(
                    slot,
                    response.sent_ns,
                    completed_ns,
                    response.queue_ns,
                    response.compute_ns,
                    response.data if keep is not None and keep[slot] else None,
                )
                self.consecutive_errors = 0
                self._last_ok_ns = completed_ns
                self.window_latency_sum_ns += completed_ns - recorder.scheduled_ns(query)
                self.window_latency_count += 1
            else:
                recorder.record_error(slot, response.sent_ns, completed_ns, response.status, response.error)
                self.failed_samples += 1
                self.consecutive_errors += 1
                self._last_error_ns = completed_ns
                # NOTE: failures are logged by the writer, one line per distinct (status, message) with its
                # count; an event per failed sample here would list them twice.
                self.last_error = f"{response.status}: {response.error}"
            self.completed_samples += 1
            remaining = int(self._remaining[query]) - 1
            self._remaining[query] = remaining
            if remaining == 0:
                self.completed_queries += 1
                waiter = self._waiter
                if waiter is not None and waiter[0] == query and not waiter[1].done():
                    waiter[1].set_result(None)
        all_done = self._all_done
        if all_done is not None and self.outstanding_samples == 0 and not all_done.done():
            all_done.set_result(None)

    async def wait_query_done(self, query: int) -> None:
        if self._remaining[query] == 0:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter = (query, future)
        try:
            await asyncio.wait_for(future, self._stall_timeout_s)
        except TimeoutError:
            self.stalled = True
        finally:
            self._waiter = None

    async def wait_all(self, timeout_s: float) -> bool:
        """Wait until every issued sample has completed; False if `timeout_s` passed first."""
        if self.outstanding_samples == 0:
            return True
        self._all_done = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._all_done), timeout_s)
        except TimeoutError:
            return False
        finally:
            self._all_done = None
        return True

    def take_latency_window(self) -> tuple[int, int]:
        """(sum of latencies in ns, count) of OK samples since the last call; for the progress display."""
        out = (self.window_latency_sum_ns, self.window_latency_count)
        self.window_latency_sum_ns = 0
        self.window_latency_count = 0
        return out


def _too_many_errors(tracker: CompletionTracker) -> EndOfRun:
    return EndOfRun(
        reason=EndReason.TOO_MANY_ERRORS,
        message=(
            f"Ending early: {tracker.consecutive_errors} samples in a row failed and none "
            f"succeeded since (last: {tracker.last_error})"
        ),
        is_error=True,
    )


async def issue_queries(
    sut: SystemUnderTest,
    *,
    scheduler: Scheduler,
    sample_indices: npt.NDArray[np.int64],
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
    n_queries = int(indices.shape[0])
    spq = int(indices.shape[1]) if indices.ndim == 2 else 1
    coalesce = settings.server_coalesce_queries and isinstance(scheduler, ServerScheduler)
    complete = tracker.complete
    end: EndOfRun | None = None
    worker, workers = share
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
    q = worker if step > 1 else 0
    try:
        while q < n_queries:
            scheduled_ns = await scheduler.wait(q)
            if tracker.stalled:
                end = EndOfRun(
                    reason=EndReason.STALLED,
                    message=f"Ending early: query {first_query + q - 1} had no response for the stall timeout",
                    is_error=True,
                )
                break
            if tracker.should_abort:
                # NOTE: SingleStream learns of the failure only here, when the previous query ends: sending
                # the next one to a dead link would add a whole deadline to the run's end.
                end = _too_many_errors(tracker)
                break
            issued_ns = clock.now_ns()
            query = first_query + q
            if coalesce:
                assert isinstance(scheduler, ServerScheduler)
                batch = [(q, scheduled_ns)]
                while q + len(batch) < n_queries and scheduler.scheduled_ns(q + len(batch)) <= issued_ns:
                    nxt = q + len(batch)
                    batch.append((nxt, scheduler.scheduled_ns(nxt)))
                samples: list[QuerySample] = []
                for local, sched in batch:
                    slot = recorder.first_slot(first_query + local)
                    samples.extend(
                        QuerySample(slot + k, idx) for k, idx in enumerate(indices[local].tolist())
                    )
                    recorder.record_issue(first_query + local, sched, issued_ns)
                    tracker.note_issued(first_query + local, sched)
                q += len(batch)
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
        at_ns = clock.now_ns()
        end = EndOfRun(
            reason=EndReason.INTERRUPTED,
            message=f"Ending early: interrupted by the user after {(at_ns - start_ns) / 1e9:.1f} s",
            is_error=True,
            at_ns=at_ns,
        )
    if end is None:
        ran_out = not accuracy and settings.scenario in (Scenario.SINGLE_STREAM, Scenario.MULTI_STREAM)
        end = (
            EndOfRun(reason=EndReason.RAN_OUT, message=RAN_OUT_MESSAGE, is_error=True)
            if ran_out
            else EndOfRun(
                reason=EndReason.ALL_ISSUED, message="All generated queries issued.", is_error=False
            )
        )
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
    return end
