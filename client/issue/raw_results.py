"""Raw results of one timed run: per-query and per-sample timestamps, statuses and server timings.

`RunResult` holds plain values and knows nothing about scenarios or settings, like LoadGen's
`PerformanceResult`; `edgeperf.client.report.metrics` turns it into metrics. A `RunRecorder`
(`edgeperf.client.issue.recorder`) builds one while the run is in progress.

Sample status codes index `RunResult.status_table`: 0 is ``("OK", "")``, 1 is ``("INCOMPLETE", ...)``
(issued but never completed: the initial state of every slot), and each further code is one distinct
``(gRPC status name, message)`` pair. Failed samples are counted and reported, never dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
F32 = npt.NDArray[np.float32]
K = TypeVar("K")

STATUS_OK = 0
STATUS_INCOMPLETE = 1
UNKNOWN_NS = -1
"""Marks a server timing or timestamp that was not reported or never happened."""

INCOMPLETE_ENTRY = ("INCOMPLETE", "no response was received for the sample before the run ended")


def percentile_index(n: int, percentile: float) -> int:
    """LoadGen's rule: index ``int(n * p)`` into the ascending array (the double product truncated)."""
    return int(n * percentile)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccuracyEntry:
    """One response written to ``mlperf_log_accuracy.json``."""

    seq_id: int
    qsl_idx: int
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RunEvent:
    """A run-level message for the detail log (LoadGen's ``generic_message``/``error_runtime`` lines).

    Attributes:
        time_ns: when it happened, ns from the test start.
        key: the detail-log key, e.g. ``"error_runtime"``, ``"generic_message"``, ``"warning_generic_message"``.
        message: the text (LoadGen's wording where one exists).
        is_error: written with ``is_error: true`` and counted in the summary's error footer.
        is_warning: written with ``is_warning: true`` and counted in the warning footer.
    """

    time_ns: int
    key: str
    message: str
    is_error: bool = False
    is_warning: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """The raw outcome of one run. Every timestamp array is int64 ns relative to the test start.

    Queries are the issued ones only, in issue order (index = query index of the schedule).
    Samples are flattened: the samples of query ``q`` are ``query_offsets[q]:query_offsets[q + 1]``.

    Attributes:
        start_ns: absolute ``time.perf_counter_ns()`` of the test start (the latency origin reference).
        end_ns: when the run ended (last completion or abort), relative to the start.
        query_sizes: the samples of every query (an int: the common case, which then costs no array of
            the run's length), or int64 [n_queries + 1] offsets: the first sample slot of each query.
        scheduled_ns: int64 [n_queries], the latency origin of each query (Server: the ideal scheduled
            time; SingleStream/MultiStream: when the issue loop woke for it; Offline: 0).
        issued_ns: int64 [n_queries], when ``issue_query`` was called.
        sample_sent_ns: int64 [n_samples], when the request carrying the sample was sent (-1 unknown).
        sample_completed_ns: int64 [n_samples], the completion timestamp (-1 if never completed).
        sample_status: int32 [n_samples], index into ``status_table``.
        status_table: ``(status_name, message)`` per code; code 0 is OK, 1 is INCOMPLETE.
        server_queue_ns: float32 [n_samples], server-reported queue time in ns (-1 unknown); float32 halves
            a long run's memory for it: exact below 2**24 ns (16.7 ms), within 1 part in 16 million above.
        server_compute_ns: float32 [n_samples], server-reported compute time (input+infer+output; -1
            unknown), as `server_queue_ns`.
        sample_indices: int32 [n_samples], QSL index of each sample (-1 unknown).
        accuracy: responses kept for the accuracy log, ordered by seq_id.
        events: run-level messages in time order.
    """

    start_ns: int
    end_ns: int
    query_sizes: int | I64
    scheduled_ns: I64
    issued_ns: I64
    sample_sent_ns: I64
    sample_completed_ns: I64
    sample_status: I32
    status_table: tuple[tuple[str, str], ...]
    server_queue_ns: F32
    server_compute_ns: F32
    sample_indices: I32
    accuracy: tuple[AccuracyEntry, ...] = ()
    events: tuple[RunEvent, ...] = ()

    @property
    def n_queries(self) -> int:
        return int(self.scheduled_ns.shape[0])

    @property
    def query_offsets(self) -> I64:
        """int64 [n_queries + 1]: the first sample slot of each query, then the sample count (made on
        each call when the queries are uniform)."""
        if isinstance(self.query_sizes, int):
            offsets = np.arange(self.n_queries + 1, dtype=np.int64)
            offsets *= self.query_sizes
            return offsets
        return self.query_sizes

    def query_span(self, query: int) -> tuple[int, int]:
        """The sample slots ``[start, stop)`` of `query`."""
        if isinstance(self.query_sizes, int):
            return query * self.query_sizes, (query + 1) * self.query_sizes
        return int(self.query_sizes[query]), int(self.query_sizes[query + 1])

    def query_of(self, slots: I64) -> I64:
        """The query of each sample slot in `slots`."""
        if isinstance(self.query_sizes, int):
            return slots // self.query_sizes
        return np.searchsorted(self.query_sizes, slots, side="right") - 1

    @property
    def n_samples(self) -> int:
        return int(self.sample_completed_ns.shape[0])

    @property
    def sample_query(self) -> I64:
        """int64 [n_samples]: the query index of each sample."""
        counts = np.diff(self.query_offsets)
        return np.repeat(np.arange(self.n_queries, dtype=np.int64), counts)

    @property
    def ok_mask(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.sample_status == STATUS_OK, dtype=np.bool_)

    @property
    def completed_mask(self) -> npt.NDArray[np.bool_]:
        return self.sample_completed_ns >= 0

    @property
    def sample_latency_ns(self) -> I64:
        """int64 [n_samples]: completion - the query's scheduled time; -1 where never completed."""
        lat = self.sample_completed_ns - self.scheduled_ns[self.sample_query]
        return np.where(self.completed_mask, lat, UNKNOWN_NS).astype(np.int64)

    @property
    def query_completed_ns(self) -> I64:
        """int64 [n_queries]: when the last sample of each query completed; -1 if any never did."""
        out = np.full(self.n_queries, UNKNOWN_NS, dtype=np.int64)
        if self.n_samples == 0:
            return out
        counts = np.diff(self.query_offsets)
        nonempty = counts > 0
        starts = self.query_offsets[:-1][nonempty]
        last = np.maximum.reduceat(self.sample_completed_ns, starts)
        first_missing = np.minimum.reduceat(self.sample_completed_ns, starts)
        out[nonempty] = np.where(first_missing < 0, UNKNOWN_NS, last)
        return out

    @property
    def query_ok(self) -> npt.NDArray[np.bool_]:
        """bool [n_queries]: every sample of the query completed with OK."""
        bad = (~self.ok_mask).astype(np.int64)
        if self.n_samples == 0:
            return np.ones(self.n_queries, dtype=np.bool_)
        csum = np.concatenate(([0], np.cumsum(bad)))
        offsets = self.query_offsets
        return np.asarray((csum[offsets[1:]] - csum[offsets[:-1]]) == 0, dtype=np.bool_)

    @property
    def query_latency_ns(self) -> I64:
        """int64 [n_queries]: last completion - scheduled time (MultiStream's query latency); -1 if incomplete."""
        done = self.query_completed_ns
        return np.where(done >= 0, done - self.scheduled_ns, UNKNOWN_NS).astype(np.int64)

    @property
    def error_count(self) -> int:
        return int(np.count_nonzero(self.sample_status != STATUS_OK))

    def errors_by_status(self) -> dict[str, int]:
        """Failed-sample counts per status name (``INCOMPLETE`` included), most frequent first."""
        return _count_by(self.sample_status, self.status_table, lambda entry: entry[0])

    def errors_by_message(self) -> dict[tuple[str, str], int]:
        """Failed-sample counts per distinct ``(status name, message)``, most frequent first."""
        return _count_by(self.sample_status, self.status_table, lambda entry: entry)


def _count_by(
    status: I32, table: tuple[tuple[str, str], ...], key: Callable[[tuple[str, str]], K]
) -> dict[K, int]:
    codes, counts = np.unique(status[status != STATUS_OK], return_counts=True)
    out: dict[K, int] = {}
    for code, count in sorted(zip(codes.tolist(), counts.tolist(), strict=True), key=lambda cc: -cc[1]):
        k = key(table[code])
        out[k] = out.get(k, 0) + int(count)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))
