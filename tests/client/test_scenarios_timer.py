"""The real clock's precise deadline timer (Linux timerfd): never early, loop keeps running, fd released."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest

from edgeperf.client.plan.scenarios.base import (
    MIN_PRECISE_SPIN_NS,
    PRECISE_SPIN_NS,
    SPIN_NS,
    LoopClock,
    wait_until,
)
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
    assert clock.spin_ns == MIN_PRECISE_SPIN_NS  # the precise timer, with its shortest lead to start
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
                # NOTE: the precise timer's lead follows its wake-ups, within its bounds
                assert clock.spin_ns == SPIN_NS or MIN_PRECISE_SPIN_NS <= clock.spin_ns <= PRECISE_SPIN_NS
        finally:
            clock.close()
    assert LoopClock(precise=False).spin_ns == SPIN_NS


async def test_the_precise_lead_follows_how_late_the_timer_wakes(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = LoopClock()
    if clock.spin_ns == SPIN_NS:
        clock.close()
        pytest.skip("no precise timer on this platform")
    late = {"ns": 0}
    real_ns = time.perf_counter_ns

    # NOTE: the clock reads the time before arming and after waking; the second read is `late` later.
    async def sleep_until(deadline_ns: int) -> None:
        late["target"] = deadline_ns

    timer = clock._deadline_timer()
    assert timer is not None
    monkeypatch.setattr(timer, "sleep_until", sleep_until)
    reads = iter(range(10**6))

    def fake_ns() -> int:
        # every other read is the wake-up: the target plus the lateness under test
        return late["target"] + late["ns"] if next(reads) % 2 else real_ns()

    monkeypatch.setattr(time, "perf_counter_ns", fake_ns)
    try:
        late["ns"] = 100_000  # a busy VM: always late by more than the longest lead
        for _ in range(200):
            await clock.sleep_ns(1_000_000)
        assert clock.spin_ns == PRECISE_SPIN_NS
        late["ns"] = 0  # a timer that wakes on time: no lead needed, the shortest one stays
        for _ in range(200):
            await clock.sleep_ns(1_000_000)
        assert clock.spin_ns == MIN_PRECISE_SPIN_NS
        late["ns"] = 12_000  # in between: the lead settles near the lateness
        for _ in range(200):
            await clock.sleep_ns(1_000_000)
        assert abs(clock.spin_ns - 12_000) <= 2_000
    finally:
        monkeypatch.undo()
        clock.close()
