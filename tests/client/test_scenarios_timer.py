"""The real clock's precise deadline timer (Linux timerfd): never early, loop keeps running, fd released."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest

from edgeperf.client.plan.scenarios.base import PRECISE_SPIN_NS, SPIN_NS, LoopClock, wait_until
from edgeperf.client.plan.scenarios.timer import DeadlineTimer

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timerfd is Linux-only")


@linux_only
async def test_timer_wakes_at_the_deadline_and_the_loop_runs_meanwhile() -> None:
    timer = DeadlineTimer.create()
    assert timer is not None
    ran: list[int] = []
    loop = asyncio.get_running_loop()
    try:
        for _ in range(5):
            deadline = time.perf_counter_ns() + 3_000_000
            loop.call_soon(lambda: ran.append(time.perf_counter_ns()))
            await timer.sleep_until(deadline)
            woke = time.perf_counter_ns()
            assert woke >= deadline  # never early
            assert woke - deadline < 50_000_000  # loose: the machine may be busy
        assert len(ran) == 5 and all(t < woke for t in ran)
        await timer.sleep_until(time.perf_counter_ns() - 1)  # a past deadline returns at once
    finally:
        timer.close()


@linux_only
async def test_closing_the_clock_releases_its_descriptor() -> None:
    before = len(os.listdir("/proc/self/fd"))
    clock = LoopClock()
    assert clock.spin_ns == PRECISE_SPIN_NS
    assert len(os.listdir("/proc/self/fd")) == before + 1
    clock.close()
    assert len(os.listdir("/proc/self/fd")) == before


async def test_real_clock_wait_is_never_early_with_or_without_the_timer() -> None:
    for clock in (LoopClock(), LoopClock(precise=False)):
        try:
            for _ in range(20):
                deadline = clock.now_ns() + 400_000
                await wait_until(deadline, clock)
                assert deadline <= clock.now_ns() < deadline + 50_000_000
        finally:
            clock.close()
    assert LoopClock(precise=False).spin_ns == SPIN_NS
