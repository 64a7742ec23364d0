"""The scheduler seam shared by every scenario: a clock, absolute-deadline waits, and `Scheduler.wait`.

Each scenario module implements `Scheduler.wait(query) -> int`, mirroring LoadGen's
`QueryScheduler<scenario>::Wait`: it returns when query `query` may be issued, with the query's
latency origin (`scheduled_ns`, absolute `perf_counter_ns`). SingleStream and MultiStream share
`wait_for_previous`; Server waits for an absolute time with `wait_until`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = [
    "SPIN_NS",
    "SPIN_PAUSE_S",
    "SPIN_PAUSE_UNTIL_NS",
    "Clock",
    "LoopClock",
    "QueryProgress",
    "Scheduler",
    "wait_for_previous",
    "wait_until",
]

SPIN_NS = 1_200_000
"""Below this much time to a deadline the wait stops sleeping and spins: event-loop timers are only
about a millisecond precise (epoll and uvloop round to whole milliseconds), spinning is a few microseconds."""


SPIN_PAUSE_S = 50e-6
"""While more than `SPIN_PAUSE_UNTIL_NS` remain, each spin step of the real clock blocks this long
(releasing the GIL and the CPU) before yielding to the loop; closer to the deadline it only yields."""
SPIN_PAUSE_UNTIL_NS = 100_000


class Clock(Protocol):
    """Time for the schedulers; tests inject a virtual clock and assert exact schedules."""

    def now_ns(self) -> int:
        """Monotonic time in ns (`time.perf_counter_ns()` for the real clock)."""
        ...

    async def sleep_ns(self, duration_ns: int) -> None:
        """Sleep at most about `duration_ns`, letting other tasks and completions run."""
        ...

    async def yield_now(self, remaining_ns: int) -> None:
        """Let the event loop run one round (completions, I/O) and come back; `remaining_ns` to the deadline."""
        ...


class LoopClock:
    """`time.perf_counter_ns()` and the running asyncio event loop."""

    def now_ns(self) -> int:
        return time.perf_counter_ns()

    async def sleep_ns(self, duration_ns: int) -> None:
        await asyncio.sleep(duration_ns / 1e9)

    async def yield_now(self, remaining_ns: int) -> None:
        if remaining_ns > SPIN_PAUSE_UNTIL_NS:
            # NOTE: a short blocking sleep releases the GIL and the CPU, so grpc.aio's poller thread and a
            # server on the same small machine keep running; only the last stretch is a pure spin.
            time.sleep(SPIN_PAUSE_S)  # noqa: ASYNC251
        await asyncio.sleep(0)


async def wait_until(deadline_ns: int, clock: Clock, *, spin_ns: int = SPIN_NS) -> None:
    """Return at `deadline_ns` (absolute): sleep while far from it, then spin yielding to the loop.

    Returns at once when the deadline has passed (a late query is issued immediately, as in LoadGen).
    """
    while True:
        remaining_ns = deadline_ns - clock.now_ns()
        if remaining_ns <= 0:
            return
        if remaining_ns > spin_ns:
            await clock.sleep_ns(remaining_ns - spin_ns)
        else:
            await clock.yield_now(remaining_ns)


class QueryProgress(Protocol):
    """What a scheduler may ask about completions."""

    async def wait_query_done(self, query: int) -> None:
        """Return once every sample of query `query` has completed (at once if it already has)."""
        ...


class Scheduler(Protocol):
    """LoadGen's `QueryScheduler<scenario>`: when may query `query` be issued, and from when is it timed."""

    async def wait(self, query: int) -> int:
        """Wait until query `query` may be issued.

        Returns:
            The query's latency origin (absolute ns): the ideal time in Server, the wake-up time in
            SingleStream and MultiStream, the test start in Offline.
        """
        ...


async def wait_for_previous(query: int, progress: QueryProgress, clock: Clock) -> int:
    """SingleStream and MultiStream: issue once the previous query has fully completed.

    The latency origin is the moment the issue loop wakes, so the gap between queries is not counted.
    """
    if query > 0:
        await progress.wait_query_done(query - 1)
    return clock.now_ns()
