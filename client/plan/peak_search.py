"""FindPeakPerformance's search: LoadGen's target-QPS bounds and bisection, probe by probe.

Which target QPS each Server probe runs at is planned here; running a probe (a performance pass) and
judging it is the caller's (`edgeperf.client.modes`).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

__all__ = ["PeakSearchStep", "find_peak_qps", "search_finished"]


PeakSearchStep = tuple[float, bool]
"""One probe of the peak search: the target QPS tried and whether the run passed."""


def search_finished(lower_qps: float, upper_qps: float, decimals_of_precision: int) -> bool:
    """LoadGen's `IsFinished`: the bounds agree to `decimals_of_precision` decimals (floor, in double)."""
    scale = math.pow(10, decimals_of_precision)
    return math.floor(lower_qps * scale) + 1 >= math.floor(upper_qps * scale)


async def find_peak_qps(
    probe: Callable[[float], Awaitable[bool]],
    *,
    start_qps: float,
    boundary_step_size: float,
    decimals_of_precision: int,
) -> tuple[float | None, list[PeakSearchStep]]:
    """LoadGen's FindPeakPerformance (`loadgen.cc`): grow an upper bound, then bisect.

    The start QPS must pass (else the result is None). `FindBoundaries` multiplies the QPS by
    (1 + `boundary_step_size`) until a probe fails, with no limit on the number of probes, as LoadGen
    has none. `FindPeakPerformanceBinarySearch` then probes `l + (u - l) / 2` (unrounded) until
    `search_finished(l, u)`; a pass moves the lower bound, a fail the upper. The peak is the last lower
    bound, to every digit LoadGen reports (437.6953125, not 437.7).

    Args:
        probe: runs the Server scenario at a target QPS and says whether it met the latency bound
            (LoadGen's `PerfConstraintsMet`: min duration, min queries and early stopping do not count).

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
    while True:
        upper = lower * (1 + boundary_step_size)
        if not await run(upper):
            break
        lower = upper
    while not search_finished(lower, upper, decimals_of_precision):
        mid = lower + (upper - lower) / 2
        if await run(mid):
            lower = mid
        else:
            upper = mid
    return lower, steps
