"""Server: Poisson arrivals issued at absolute times; latency from the scheduled time; the peak-QPS search.

Query n is due at `start_ns + scheduled_offsets_ns[n]`. The scheduler sleeps, then spins while
yielding to the event loop, so completions are recorded while it waits; a late query is issued at once
and its lateness counts in its latency, as the rules define (the origin is the ideal time).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence

import numpy as np
import numpy.typing as npt

from edgeperf.client.scenarios.base import Clock, wait_until

__all__ = ["PeakSearchStep", "ServerScheduler", "find_peak_qps"]


class ServerScheduler:
    """Waits for each query's absolute scheduled time."""

    def __init__(
        self,
        start_ns: int,
        offsets_ns: Sequence[int] | npt.NDArray[np.int64],
        clock: Clock,
        *,
        spin_ns: int | None = None,
    ) -> None:
        self._start_ns = start_ns
        self._offsets_ns = offsets_ns
        self._clock = clock
        self._spin_ns = spin_ns

    def scheduled_ns(self, query: int) -> int:
        """The ideal issue time of `query` (absolute ns)."""
        return self._start_ns + int(self._offsets_ns[query])

    async def wait(self, query: int) -> int:
        due_ns = self.scheduled_ns(query)
        await wait_until(due_ns, self._clock, spin_ns=self._spin_ns)
        return due_ns


PeakSearchStep = tuple[float, bool]
"""One probe of the peak search: the target QPS tried and whether the run passed."""


async def find_peak_qps(
    probe: Callable[[float], Awaitable[bool]],
    *,
    start_qps: float,
    boundary_step_size: float,
    decimals_of_precision: int,
    max_probes: int = 32,
) -> tuple[float | None, list[PeakSearchStep]]:
    """LoadGen's FindPeakPerformance: grow an upper bound, then bisect to the given precision.

    The start QPS must pass (else the result is None). The upper bound grows by a factor
    (1 + `boundary_step_size`) while runs pass; then the interval is bisected, each midpoint rounded
    down to `decimals_of_precision` decimals, until it is one step of that precision wide.

    Args:
        probe: runs the Server scenario at a target QPS and says whether the result was VALID.
        max_probes: a bound on the number of runs, so a SUT that passes everything still ends.

    Returns:
        The highest passing target QPS found (or None) and every probe in order.
    """
    steps: list[PeakSearchStep] = []

    async def run(qps: float) -> bool:
        passed = await probe(qps)
        steps.append((qps, passed))
        return passed

    if not await run(start_qps):
        return None, steps
    lower = start_qps
    upper = start_qps * (1.0 + boundary_step_size)
    while len(steps) < max_probes:
        if not await run(upper):
            break
        lower = upper
        upper *= 1.0 + boundary_step_size
    else:
        return lower, steps
    precision = 10.0 ** (-decimals_of_precision)
    scale = 10.0**decimals_of_precision
    while upper - lower > precision and len(steps) < max_probes:
        mid = math.floor((lower + upper) / 2.0 * scale) / scale
        if mid <= lower:
            break
        if await run(mid):
            lower = mid
        else:
            upper = mid
    return lower, steps
