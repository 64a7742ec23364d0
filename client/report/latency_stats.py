"""Latency statistics as LoadGen computes them, and where the time went (the latency breakdown).

LoadGen's percentile rule (``sorted[int(n * p)]``), integer means, the reported percentiles; the issue
delay and each breakdown component (client wait, rpc, server queue and compute, the remainder) are
summarized the same way, a chunk of samples at a time into one scratch buffer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgeperf.client.issue.raw_results import UNKNOWN_NS, RunResult, percentile_index
from edgeperf.client.report.columns import Chunk, Mask, fill, ok_latency

__all__ = [
    "REPORTED_PERCENTILES",
    "BreakdownComponent",
    "DelayStats",
    "LatencyStats",
    "delay_stats",
    "latency_breakdown",
    "latency_stats",
    "percentile_index",
]

REPORTED_PERCENTILES: tuple[float, ...] = (0.50, 0.90, 0.95, 0.97, 0.99, 0.999)
"""LoadGen's `latency_percentiles` (printed as 50.00 ... 99.90)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyStats:
    """Min, max, integer mean and LoadGen percentiles of a latency array (ns)."""

    count: int
    min_ns: int
    max_ns: int
    mean_ns: int
    target_percentile: float
    target_ns: int
    """The value at the scenario's target percentile."""
    percentiles_ns: tuple[tuple[float, int], ...]
    """(fraction, value) for each of `REPORTED_PERCENTILES`."""

    def at(self, percentile: float) -> int:
        for p, v in self.percentiles_ns:
            if p == percentile:
                return v
        raise KeyError(percentile)


def latency_stats(sorted_ns: npt.NDArray[np.int64], target_percentile: float) -> LatencyStats | None:
    """Statistics of an ascending array as LoadGen computes them; None for an empty array."""
    n = int(sorted_ns.shape[0])
    if n == 0:
        return None
    return LatencyStats(
        count=n,
        min_ns=int(sorted_ns[0]),
        max_ns=int(sorted_ns[-1]),
        mean_ns=int(sorted_ns.sum(dtype=np.int64)) // n,
        target_percentile=target_percentile,
        target_ns=int(sorted_ns[percentile_index(n, target_percentile)]),
        percentiles_ns=tuple((p, int(sorted_ns[percentile_index(n, p)])) for p in REPORTED_PERCENTILES),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DelayStats:
    """Distribution of a non-latency duration (issue delay, a breakdown component), in ns."""

    count: int
    mean_ns: int
    p50_ns: int
    p90_ns: int
    p99_ns: int
    max_ns: int


def delay_stats(values: npt.NDArray[np.int64]) -> DelayStats | None:
    """The stats of `values`, which it reorders in place (a scratch buffer: no sorted copy is made)."""
    n = int(values.shape[0])
    if n == 0:
        return None
    at = {q: percentile_index(n, q) for q in (0.5, 0.9, 0.99)}
    values.partition(sorted({*at.values(), n - 1}))
    return DelayStats(
        count=n,
        mean_ns=int(values.sum(dtype=np.int64)) // n,
        p50_ns=int(values[at[0.5]]),
        p90_ns=int(values[at[0.9]]),
        p99_ns=int(values[at[0.99]]),
        max_ns=int(values[n - 1]),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakdownComponent:
    """One part of the latency breakdown over the successful samples where it is known."""

    name: str
    """end_to_end, client_wait, rpc, server_queue, server_compute, network_and_serialization."""
    description: str
    stats: DelayStats | None


def latency_breakdown(
    result: RunResult, *, scratch: npt.NDArray[np.int64] | None = None
) -> tuple[BreakdownComponent, ...]:
    """Where the time of the successful samples went, from client and server timestamps.

    Args:
        scratch: an int64 buffer with one entry per sample, overwritten (a new one if None).
    """
    buf = np.empty(result.n_samples, dtype=np.int64) if scratch is None else scratch
    parts: tuple[tuple[str, str, Callable[[Chunk], tuple[npt.NDArray[np.int64], Mask]]], ...] = (
        ("end_to_end", "latency as MLPerf measures it: completion - scheduled time", ok_latency),
        (
            "client_wait",
            "scheduled time -> request sent (issue delay and client-side queueing)",
            lambda c: (c.sent - c.scheduled, c.ok),
        ),
        (
            "rpc",
            "request sent -> response received, measured by the client",
            lambda c: (c.completed - c.sent, c.ok),
        ),
        ("server_queue", "server-reported queue time", lambda c: (c.queue, c.ok & (c.queue != UNKNOWN_NS))),
        (
            "server_compute",
            "server-reported compute time (input + infer + output)",
            lambda c: (c.compute, c.ok & (c.compute != UNKNOWN_NS)),
        ),
        (
            "network_and_serialization",
            "rpc - server queue - server compute: network, gRPC and (de)serialization",
            lambda c: (
                c.completed - c.sent - c.queue - c.compute,
                c.ok & (c.queue != UNKNOWN_NS) & (c.compute != UNKNOWN_NS),
            ),
        ),
    )
    return tuple(
        BreakdownComponent(name=name, description=desc, stats=delay_stats(fill(result, buf, pick)))
        for name, desc, pick in parts
    )
