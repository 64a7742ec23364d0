"""`RunRecorder`: builds a run's `RunResult` while the run is in progress, in pre-sized columns.

The issue loop and the completion tracker call its `record_*` methods, which are O(1), take absolute
`time.perf_counter_ns()` timestamps and store them in pre-sized slots (no per-sample objects, except
the response bytes kept for the accuracy log). `finish()` converts every timestamp to nanoseconds
relative to the test start.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from edgeperf.client.issue.raw_results import (
    F32,
    I32,
    I64,
    INCOMPLETE_ENTRY,
    STATUS_INCOMPLETE,
    STATUS_OK,
    UNKNOWN_NS,
    AccuracyEntry,
    RunEvent,
    RunResult,
)

__all__ = ["RecorderColumns", "RunRecorder"]


@dataclass(frozen=True, slots=True)
class RecorderColumns:
    """The arrays a `RunRecorder` writes: per query scheduled and issued times, per sample the rest.

    28 bytes a sample and 16 a query: the timestamps are exact int64 ns; the server's queue and compute
    times are float32 ns (exact below 2**24 ns, 16.7 ms; within 1 part in 16 million above), durations
    that only feed the latency breakdown's statistics.
    """

    scheduled: I64
    issued: I64
    sent: I64
    completed: I64
    queue: F32
    compute: F32
    status: I32

    @classmethod
    def new(cls, n_queries: int, n_samples: int) -> RecorderColumns:
        columns = cls.views(np.empty(cls.nbytes(n_queries, n_samples), dtype=np.uint8), n_queries, n_samples)
        columns.fill()
        return columns

    @staticmethod
    def nbytes(n_queries: int, n_samples: int) -> int:
        return 16 * n_queries + 28 * n_samples

    @classmethod
    def views(cls, buffer: npt.NDArray[np.uint8], n_queries: int, n_samples: int) -> RecorderColumns:
        """Columns laid out in one byte buffer (a shared memory map for `--workers N`); the 8-byte
        columns first, so every column is aligned."""
        q, s = 8 * n_queries, 8 * n_samples
        i64 = [buffer[k : k + q].view(np.int64) for k in (0, q)]
        base = 2 * q
        j64 = [buffer[base + k * s : base + (k + 1) * s].view(np.int64) for k in range(2)]
        base += 2 * s
        f = 4 * n_samples
        f32 = [buffer[base + k * f : base + (k + 1) * f].view(np.float32) for k in range(2)]
        status = buffer[base + 2 * f : base + 3 * f].view(np.int32)
        return cls(i64[0], i64[1], j64[0], j64[1], f32[0], f32[1], status)

    def fill(self) -> None:
        for column in (self.scheduled, self.issued, self.sent, self.completed, self.queue, self.compute):
            column.fill(UNKNOWN_NS)
        self.status.fill(STATUS_INCOMPLETE)


class RunRecorder:
    """Builds a `RunResult` while the run is in progress.

    Pre-sized from the schedule; every ``record_*`` method is O(1). The recorder owns the layout: a
    sample is addressed by its flat slot (`first_slot`, `query_of`, `slot`), the SUT's sample id.
    Timestamps passed in are absolute ``time.perf_counter_ns()`` values; ``finish`` makes them relative
    to ``start_ns``. Queries must be issued in index order (as every
    LoadGen scenario does); queries never issued are left out of the result.

    Not thread-safe beyond what the GIL gives: call it from the event loop that drives the run.

    Args:
        samples_per_query: samples in each query; an int for uniform queries, or a sequence with one
            count per query (accuracy-mode remainder queries).
        n_queries: number of queries (required when ``samples_per_query`` is an int).
        sample_indices: QSL index of each sample, shape [n_queries, spq] or flat (optional; used for
            the accuracy log). An int32 array (the schedule's) is kept by reference, not copied: the
            recorder never writes it, and sharing it saves 4 bytes a sample.
        first_seq_id: the sequence id of sample slot 0 (LoadGen's global sample counter continues from
            an accuracy run to the performance run of a SubmissionRun).
        columns: record into these arrays (shared memory of a `--workers N` run, filled with the
            initial values by their creator) instead of new ones.
        any_order: accept queries issued out of order (one worker's share of the schedule).
        status_code_base: the first code of new failure statuses (workers keep apart ranges, merged later).
    """

    __slots__ = (
        "_accuracy",
        "_any_order",
        "_code_base",
        "_completed",
        "_compute",
        "_events",
        "_finished",
        "_first_seq_id",
        "_issued",
        "_n_issued",
        "_n_queries",
        "_offsets",
        "_offsets_list",
        "_queue",
        "_sample_indices",
        "_scheduled",
        "_sent",
        "_spq",
        "_start_ns",
        "_status",
        "_status_codes",
        "_status_table",
    )

    def __init__(
        self,
        *,
        samples_per_query: int | Sequence[int],
        n_queries: int | None = None,
        sample_indices: npt.ArrayLike | None = None,
        first_seq_id: int = 0,
        columns: RecorderColumns | None = None,
        any_order: bool = False,
        status_code_base: int = 0,
    ) -> None:
        if isinstance(samples_per_query, int):
            if n_queries is None:
                raise ValueError("n_queries is required when samples_per_query is an int")
            if samples_per_query < 1 or n_queries < 0:
                raise ValueError(f"bad sizes: samples_per_query={samples_per_query} n_queries={n_queries}")
            self._spq: int = samples_per_query
            self._n_queries = n_queries
            self._offsets: I64 | None = None  # NOTE: uniform queries need no per-query offsets
            self._offsets_list: list[int] | None = None
        else:
            counts = np.asarray(samples_per_query, dtype=np.int64)
            if n_queries is not None and n_queries != counts.shape[0]:
                raise ValueError("n_queries disagrees with len(samples_per_query)")
            if counts.size and int(counts.min()) < 1:
                raise ValueError("every query needs at least one sample")
            n_queries = int(counts.shape[0])
            self._spq = 0
            self._n_queries = n_queries
            self._offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
            self._offsets_list = self._offsets.tolist()
        n_samples = self.first_slot(n_queries)
        # NOTE: preallocated numpy columns, not lists of Python ints (which cost ~40 bytes a value): a
        # run's memory is fixed at its start, 44 bytes per single-sample query, whatever it lasts.
        if columns is None:
            columns = RecorderColumns.new(n_queries, n_samples)
        elif columns.issued.shape[0] != n_queries or columns.sent.shape[0] != n_samples:
            raise ValueError("the columns do not match the query and sample counts")
        self._scheduled = columns.scheduled
        self._issued = columns.issued
        self._sent = columns.sent
        self._completed = columns.completed
        self._queue = columns.queue
        self._compute = columns.compute
        self._status = columns.status
        self._any_order = any_order
        self._code_base = status_code_base
        if sample_indices is None:
            self._sample_indices: I32 = np.full(n_samples, UNKNOWN_NS, dtype=np.int32)
        else:
            self._sample_indices = _int32_indices(sample_indices)
            if self._sample_indices.shape[0] != n_samples:
                raise ValueError(
                    f"sample_indices has {self._sample_indices.shape[0]} entries, expected {n_samples}"
                )
        self._status_table: list[tuple[str, str]] = [("OK", ""), INCOMPLETE_ENTRY]
        self._status_codes: dict[tuple[str, str], int] = {
            entry: i for i, entry in enumerate(self._status_table)
        }
        self._accuracy: dict[int, bytes] = {}
        self._events: list[tuple[int, str, str, bool, bool]] = []
        self._first_seq_id = first_seq_id
        self._finished = False
        self._start_ns: int | None = None
        self._n_issued = 0

    @property
    def n_queries(self) -> int:
        return self._n_queries

    @property
    def n_samples(self) -> int:
        return self.first_slot(self._n_queries)

    @property
    def uniform_size(self) -> int:
        """The samples of every query when they are all the same size; 0 when they differ."""
        return self._spq

    @property
    def status_column(self) -> I32:
        """Each sample slot's status code as recorded so far (read it only: `STATUS_INCOMPLETE` until
        the sample completes or fails; the tracker tells a second completion from it)."""
        return self._status

    def first_slot(self, query_idx: int) -> int:
        """The flat sample slot of the first sample of query ``query_idx``."""
        if self._offsets_list is None:
            return query_idx * self._spq
        return self._offsets_list[query_idx]

    def query_size(self, query_idx: int) -> int:
        """The samples of query ``query_idx``."""
        if self._offsets_list is None:
            return self._spq
        return self._offsets_list[query_idx + 1] - self._offsets_list[query_idx]

    def query_of(self, slot: int) -> int:
        """The query that sample slot ``slot`` belongs to."""
        if self._offsets_list is None:
            return slot // self._spq
        return bisect.bisect_right(self._offsets_list, slot) - 1

    def scheduled_ns(self, query_idx: int) -> int:
        """The latency origin recorded for an issued query (absolute ns)."""
        return int(self._scheduled[query_idx])

    @property
    def n_issued(self) -> int:
        return self._n_issued

    def slot(self, query_idx: int, sample_pos: int) -> int:
        """The flat sample slot of sample ``sample_pos`` of query ``query_idx``."""
        return self.first_slot(query_idx) + sample_pos

    def mark_start(self, start_ns: int) -> None:
        """Sets the test start (absolute ``perf_counter_ns``); every later timestamp is relative to it."""
        if self._start_ns is not None:
            raise RuntimeError("mark_start called twice")
        self._start_ns = start_ns

    def record_issue(self, query_idx: int, scheduled_ns: int, issued_ns: int) -> None:
        """Query ``query_idx`` was passed to the SUT at ``issued_ns``; its latency origin is ``scheduled_ns``."""
        if query_idx != self._n_issued and not self._any_order:
            raise ValueError(f"queries must be issued in order: got {query_idx}, expected {self._n_issued}")
        self._scheduled[query_idx] = scheduled_ns
        self._issued[query_idx] = issued_ns
        self._n_issued = max(self._n_issued, query_idx + 1)

    def record_sample_complete(
        self,
        slot: int,
        sent_ns: int,
        completed_ns: int,
        server_queue_ns: int = UNKNOWN_NS,
        server_compute_ns: int = UNKNOWN_NS,
        data: bytes | None = None,
    ) -> None:
        """The sample in ``slot`` completed with OK. ``data`` (response bytes) is kept for the accuracy log if given."""
        self._sent[slot] = sent_ns
        self._completed[slot] = completed_ns
        self._queue[slot] = server_queue_ns
        self._compute[slot] = server_compute_ns
        self._status[slot] = STATUS_OK
        if data is not None:
            self._accuracy[slot] = data

    def record_error(self, slot: int, sent_ns: int, completed_ns: int, status: str, message: str) -> None:
        """The sample in ``slot`` failed: ``status`` is the gRPC status name (``"UNAVAILABLE"``), ``message`` its details."""
        if status == "OK":
            raise ValueError("record_error needs a failure status, not OK")
        key = (status, message)
        code = self._status_codes.get(key)
        if code is None:
            code = len(self._status_table) + self._code_base
            self._status_table.append(key)
            self._status_codes[key] = code
        self._sent[slot] = sent_ns
        self._completed[slot] = completed_ns
        self._status[slot] = code

    @property
    def status_entries(self) -> list[tuple[str, str]]:
        """This recorder's failure statuses; entry i (i >= 2) was written as code base + i."""
        return list(self._status_table)

    def take_accuracy(self) -> dict[int, bytes]:
        """The response bytes kept for the accuracy log, by sample slot (a worker hands them over)."""
        out, self._accuracy = self._accuracy, {}
        return out

    def merge_worker(
        self, entries: list[tuple[str, str]], code_base: int, accuracy: dict[int, bytes]
    ) -> None:
        """Adopt a worker's failure statuses (written as `code_base` + index) and its accuracy bytes."""
        status = self._status
        for i, entry in enumerate(entries):
            if i >= 2:
                status[status == code_base + i] = self._code_for(entry)
        self._accuracy.update(accuracy)

    def adopt_issued(self) -> int:
        """After workers wrote the columns: the issued queries are the prefix before the first gap."""
        gaps = np.flatnonzero(self._issued < 0)
        self._n_issued = int(gaps[0]) if gaps.size else self._n_queries
        return self._n_issued

    def detach_columns(self) -> None:
        """Copy the columns into memory of their own (the shared map they were written in goes away)."""
        self._scheduled, self._issued = np.array(self._scheduled), np.array(self._issued)
        self._sent, self._completed = np.array(self._sent), np.array(self._completed)
        self._queue, self._compute = np.array(self._queue), np.array(self._compute)
        self._status = np.array(self._status)

    def _code_for(self, key: tuple[str, str]) -> int:
        code = self._status_codes.get(key)
        if code is None:
            code = len(self._status_table)
            self._status_table.append(key)
            self._status_codes[key] = code
        return code

    def record_event(
        self, time_ns: int, key: str, message: str, *, is_error: bool = False, is_warning: bool = False
    ) -> None:
        """A run-level message for the detail log, e.g. ``("error_runtime", "... Ending early: ...")``."""
        self._events.append((time_ns, key, message, is_error, is_warning))

    def finish(self, end_ns: int) -> RunResult:
        """Freezes what was recorded into a `RunResult` (timestamps relative to the start)."""
        if self._start_ns is None:
            raise RuntimeError("finish called before mark_start")
        if self._finished:
            raise RuntimeError("finish called twice")
        self._finished = True
        t0 = self._start_ns
        nq = self._n_issued
        ns = self.first_slot(nq)

        def rel(column: I64) -> I64:
            # NOTE: in place, so finishing a long run allocates no second copy of its columns.
            np.subtract(column, t0, out=column, where=column >= 0)
            return _ro(column)

        seq0 = self._first_seq_id
        accuracy = tuple(
            AccuracyEntry(seq_id=seq0 + i, qsl_idx=int(self._sample_indices[i]), data=d)
            for i, d in sorted(self._accuracy.items())
            if i < ns
        )
        events = tuple(
            RunEvent(time_ns=t - t0, key=k, message=m, is_error=e, is_warning=w)
            for t, k, m, e, w in sorted(self._events, key=lambda ev: ev[0])
        )
        return RunResult(
            start_ns=t0,
            end_ns=end_ns - t0,
            query_sizes=self._spq if self._offsets is None else _ro(self._offsets[: nq + 1].copy()),
            scheduled_ns=rel(self._scheduled[:nq]),
            issued_ns=rel(self._issued[:nq]),
            sample_sent_ns=rel(self._sent[:ns]),
            sample_completed_ns=rel(self._completed[:ns]),
            sample_status=_ro(self._status[:ns]),
            status_table=tuple(self._status_table),
            server_queue_ns=_ro(self._queue[:ns]),
            server_compute_ns=_ro(self._compute[:ns]),
            sample_indices=_ro(self._sample_indices[:ns]),
            accuracy=accuracy,
            events=events,
        )


def _int32_indices(indices: npt.ArrayLike) -> I32:
    """Flat int32 QSL indices: the schedule's own array when it is int32 already (not copied)."""
    flat = np.asarray(indices).reshape(-1)
    if flat.dtype == np.int32:
        return flat
    if flat.size and not (int(flat.min()) >= -1 and int(flat.max()) < 2**31):
        raise ValueError("sample_indices must be QSL indices below 2**31 (or -1: unknown)")
    return flat.astype(np.int32)


_A = TypeVar("_A", bound="np.ndarray[tuple[int, ...], np.dtype[np.generic]]")


def _ro(a: _A) -> _A:
    a.flags.writeable = False
    return a
