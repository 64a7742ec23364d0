"""Derived per-sample columns of a `RunResult`, computed in chunks into one caller-owned buffer.

A 24-hour run holds tens of millions of samples; the summary needs latencies, breakdown components and
issue delays of all of them, but only one at a time and only for order statistics. Building each as a
whole-run numpy expression (``completed - scheduled[sample_query]``, masks, ``np.sort`` copies) cost
several arrays of the run's length at the end of the run, so a long run's peak memory grew with its
length beyond its columns. Here every derived value is computed `CHUNK` samples at a time and written,
compacted, into one reusable int64 buffer; percentiles then partition that buffer in place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgeperf.client.issue.raw_results import STATUS_OK, UNKNOWN_NS, RunResult

__all__ = ["CHUNK", "Chunk", "chunks", "fill", "last_query_done_ns", "ok_latency", "query_values"]

CHUNK = 1 << 14
"""Samples per step: about 1 MB of temporaries per step (some 70 bytes a sample), none per sample of the run."""

I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Chunk:
    """Samples ``[start, stop)`` of a result, with their queries' times gathered per sample."""

    start: int
    stop: int
    scheduled: I64
    """The latency origin of each sample's query."""
    issued: I64
    sent: I64
    """When the request was sent; the query's issue time where unknown (-1)."""
    completed: I64
    queue: I64
    compute: I64
    ok: Mask


def chunks(result: RunResult, chunk: int | None = None) -> Iterator[Chunk]:
    """The result's samples in order, `chunk` (default `CHUNK`) at a time: views of its columns plus
    chunk-sized gathers of the per-query times."""
    chunk = chunk or CHUNK
    for start in range(0, result.n_samples, chunk):
        stop = min(start + chunk, result.n_samples)
        query = result.query_of(np.arange(start, stop, dtype=np.int64))
        issued = result.issued_ns[query]
        sent = result.sample_sent_ns[start:stop]
        yield Chunk(
            start=start,
            stop=stop,
            scheduled=result.scheduled_ns[query],
            issued=issued,
            sent=np.where(sent >= 0, sent, issued),
            completed=result.sample_completed_ns[start:stop],
            # NOTE: float32 in the result (see `RunResult`); whole ns, so the conversion is exact.
            queue=result.server_queue_ns[start:stop].astype(np.int64),
            compute=result.server_compute_ns[start:stop].astype(np.int64),
            ok=result.sample_status[start:stop] == STATUS_OK,
        )


def fill(result: RunResult, out: I64, pick: Callable[[Chunk], tuple[I64, Mask]]) -> I64:
    """Write the values `pick` selects (values, keep mask) from every chunk into `out`, compacted.

    Returns:
        The filled prefix of `out` (a view); `out` needs one entry per sample at most.
    """
    n = 0
    for part in chunks(result):
        values, keep = pick(part)
        kept = values[keep]
        out[n : n + kept.shape[0]] = kept
        n += kept.shape[0]
    return out[:n]


def ok_latency(part: Chunk) -> tuple[I64, Mask]:
    """Completion - the query's latency origin, for the samples that completed with OK."""
    return part.completed - part.scheduled, part.ok


def query_values(result: RunResult, out: I64, value: Callable[[slice], I64]) -> I64:
    """`value(queries)` for every query, chunk by chunk, into the first `n_queries` entries of `out`."""
    n = result.n_queries
    step = CHUNK
    for start in range(0, n, step):
        span = slice(start, min(start + step, n))
        out[span] = value(span)
    return out[:n]


def last_query_done_ns(result: RunResult) -> int:
    """When the last query's last sample completed (ns from the start); -1 if one of its samples never did."""
    if result.n_queries == 0:
        return UNKNOWN_NS
    start, stop = result.query_span(result.n_queries - 1)
    done = result.sample_completed_ns[start:stop]
    if not done.size or int(done.min()) < 0:
        return UNKNOWN_NS
    return int(done.max())
