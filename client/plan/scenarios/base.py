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

from edgeperf.client.plan.scenarios.timer import DeadlineTimer

__all__ = [
    "MIN_PRECISE_SPIN_NS",
    "PRECISE_SPIN_NS",
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
PRECISE_SPIN_NS = 30_000
"""The longest spin stretch with a precise timer (`DeadlineTimer`, a timerfd): it wakes within tens of
microseconds, so at most the last 30 us are spun and the loop sleeps (processing completions) before.
A spin burns the CPU it lasts, once per query: 100 us of it was a third of the client's CPU at 1,000 QPS."""
MIN_PRECISE_SPIN_NS = 5_000
"""The shortest: closer than this to a deadline a sleep (a wake-up of the thread) costs more than a spin."""
_LEAD_STEP_NS = 500
"""How far one wake-up moves the timer's lead (`LoopClock`): 3 steps down when the timer woke
earlier than the lead, one up when later, so the lead settles where a quarter of wake-ups come sooner."""


SPIN_PAUSE_S = 50e-6
"""While more than `SPIN_PAUSE_UNTIL_NS` remain, each spin step of the real clock blocks this long
(releasing the GIL and the CPU) before yielding to the loop; closer to the deadline it only yields."""
SPIN_PAUSE_UNTIL_NS = 100_000


class Clock(Protocol):
    """Time for the schedulers; tests inject a virtual clock and assert exact schedules."""

    @property
    def spin_ns(self) -> int:
        """How close to a deadline `wait_until` stops sleeping and spins (the sleep's precision)."""
        ...

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
    """`time.perf_counter_ns()` and the running asyncio event loop, with a precise timer where available.

    Args:
        precise: sleep with a `DeadlineTimer` (Linux timerfd) when one can be made; False keeps
            asyncio's millisecond timers and the long spin.
    """

    def __init__(self, *, precise: bool = True) -> None:
        self._precise = precise
        self._timer: DeadlineTimer | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._lead_ns = MIN_PRECISE_SPIN_NS

    def _deadline_timer(self) -> DeadlineTimer | None:
        if not self._precise:
            return None
        loop = asyncio.get_running_loop()
        if self._timer_loop is not loop:
            if self._timer is not None:
                self._timer.close()
            self._timer = DeadlineTimer.create()
            self._timer_loop = loop
        return self._timer

    @property
    def spin_ns(self) -> int:
        """With the precise timer: how late it wakes (a low quarter of its recent wake-ups), within
        `MIN_PRECISE_SPIN_NS`..`PRECISE_SPIN_NS`. The sleep ends that much before the deadline, and
        only the rest is spun: a spin costs the CPU it lasts, so the cheapest precise wait spins no
        longer than the timer is expected to be early (a few us on a quiet machine, none in a busy VM
        whose wake-ups come 40 us and more after the timer)."""
        return self._lead_ns if self._deadline_timer() is not None else SPIN_NS

    def now_ns(self) -> int:
        return time.perf_counter_ns()

    async def sleep_ns(self, duration_ns: int) -> None:
        timer = self._deadline_timer()
        if timer is None:
            await asyncio.sleep(duration_ns / 1e9)
        else:
            target_ns = time.perf_counter_ns() + duration_ns
            await timer.sleep_until(target_ns)
            late_ns = time.perf_counter_ns() - target_ns
            lead = (
                self._lead_ns - 3 * _LEAD_STEP_NS
                if late_ns < self._lead_ns
                else self._lead_ns + _LEAD_STEP_NS
            )
            self._lead_ns = min(max(lead, MIN_PRECISE_SPIN_NS), PRECISE_SPIN_NS)

    async def yield_now(self, remaining_ns: int) -> None:
        if remaining_ns > SPIN_PAUSE_UNTIL_NS:
            # NOTE: a short blocking sleep releases the GIL and the CPU, so grpc.aio's poller thread and a
            # server on the same small machine keep running; only the last stretch is a pure spin.
            time.sleep(SPIN_PAUSE_S)  # noqa: ASYNC251
        await asyncio.sleep(0)

    def close(self) -> None:
        """Release the timer's descriptor (also released when the clock is garbage collected)."""
        if self._timer is not None:
            self._timer.close()
            self._timer = None
            self._timer_loop = None


async def wait_until(deadline_ns: int, clock: Clock, *, spin_ns: int | None = None) -> None:
    """Return at `deadline_ns` (absolute): sleep while far from it, then spin yielding to the loop.

    Args:
        spin_ns: the spin stretch; None: the clock's (`Clock.spin_ns`).

    When the deadline has passed it returns after one round of the event loop (a late query is issued
    at once, as in LoadGen, after the completions already waiting are recorded).
    """
    remaining_ns = deadline_ns - clock.now_ns()
    if remaining_ns <= 0:
        # NOTE: without this a client behind its schedule never gave the loop a turn: no completion was
        # recorded until it caught up (their times taken late, their responses piling up in memory).
        await asyncio.sleep(0)
        return
    spin = clock.spin_ns if spin_ns is None else spin_ns
    while True:
        if remaining_ns > spin:
            await clock.sleep_ns(remaining_ns - spin)
        else:
            await clock.yield_now(remaining_ns)
        remaining_ns = deadline_ns - clock.now_ns()
        if remaining_ns <= 0:
            return


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
