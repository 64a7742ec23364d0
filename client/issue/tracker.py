"""`CompletionTracker`: the `QuerySamplesComplete` the SUT calls, counting what completed and what failed.

It records each sample in the `RunRecorder` by its slot (the SUT's sample id), counts completions and
consecutive failures (for the issue loop's end), and wakes the SingleStream/MultiStream scheduler
when a query is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from edgeperf.client.issue.raw_results import STATUS_INCOMPLETE
from edgeperf.client.issue.recorder import RunRecorder
from edgeperf.client.issue.sut import STATUS_OK, QuerySampleResponse

__all__ = ["CompletionTracker"]


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
        # NOTE: what is done is the recorder's status column (INCOMPLETE until a sample completes), and
        # single-sample queries are done with their sample: such a run keeps nothing per query here.
        self._status = recorder.status_column
        self._n_samples = recorder.n_samples
        self._single = recorder.uniform_size == 1
        self._remaining = np.zeros(0 if self._single else recorder.n_queries, dtype=np.int32)
        self._keep_all, self._keep_bits = _keep_bits(keep)
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
        return self._recorder.n_queries

    def note_issued(self, query: int, scheduled_ns: int, size: int | None = None) -> None:
        """`size`: the samples of the query this process sends (a worker's share of Offline's query)."""
        if self._last_ok_ns == 0:
            self._last_ok_ns = scheduled_ns
        if size is None:
            size = self._recorder.query_size(query)
        if not self._single:
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
        status = self._status
        n_samples = self._n_samples
        for response in responses:
            slot = response.id
            if not 0 <= slot < n_samples or status[slot] != STATUS_INCOMPLETE:
                what = "twice" if 0 <= slot < n_samples else "that was never issued"
                self.events.append((completed_ns, f"Attempted to complete a sample {what}: id {slot}", True))
                continue
            query = slot if self._single else recorder.query_of(slot)
            if response.status == STATUS_OK:
                bits = self._keep_bits
                recorder.record_sample_complete(
                    slot,
                    response.sent_ns,
                    completed_ns,
                    response.queue_ns,
                    response.compute_ns,
                    response.data
                    if self._keep_all or (bits and bits[slot >> 3] & (0x80 >> (slot & 7)))
                    else None,
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
            if not self._single:
                remaining = int(self._remaining[query]) - 1
                self._remaining[query] = remaining
                if remaining:
                    continue
            self.completed_queries += 1
            waiter = self._waiter
            if waiter is not None and waiter[0] == query and not waiter[1].done():
                waiter[1].set_result(None)
        all_done = self._all_done
        if all_done is not None and self.outstanding_samples == 0 and not all_done.done():
            all_done.set_result(None)

    def _query_done(self, query: int) -> bool:
        if self._single:
            return bool(self._status[query] != STATUS_INCOMPLETE)
        return bool(self._remaining[query] == 0)

    async def wait_query_done(self, query: int) -> None:
        if self._query_done(query):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter = (query, future)
        try:
            # NOTE: not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives in the same
            # loop turn as the completion, and the issue loop would not stop (a SIGTERM at the wrong moment).
            async with asyncio.timeout(self._stall_timeout_s):
                await future
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
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(self._all_done)
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


def _keep_bits(keep: npt.NDArray[np.bool_] | None) -> tuple[bool, bytes]:
    """(keep every sample, else a bit per sample slot, most significant first; empty: keep none).

    A bit, not a bool, per sample: a long run's accuracy-log mask costs it 1/8 byte a sample.
    """
    if keep is None:
        return False, b""
    mask = np.asarray(keep, dtype=np.bool_)
    if mask.all():
        return True, b""
    return False, np.packbits(mask).tobytes() if mask.any() else b""
