"""Scheduler timing against a virtual clock: exact schedules, no real sleeping."""

from __future__ import annotations

import asyncio

import pytest

from edgeperf.client.plan.peak_search import find_peak_qps, search_finished
from edgeperf.client.plan.scenarios import make_scheduler
from edgeperf.client.plan.scenarios.base import wait_until
from edgeperf.client.plan.scenarios.offline import OfflineScheduler
from edgeperf.client.plan.scenarios.server import ServerScheduler
from edgeperf.client.plan.settings import Scenario


class VirtualClock:
    """Time moves only when the code under test sleeps or spins."""

    def __init__(self, start_ns: int = 1_000_000_000, spin_step_ns: int = 500) -> None:
        self.t = start_ns
        self.spin_step_ns = spin_step_ns
        self.sleeps: list[int] = []
        self.spins = 0
        self.spin_ns = 1_200_000

    def now_ns(self) -> int:
        return self.t

    async def sleep_ns(self, duration_ns: int) -> None:
        self.sleeps.append(duration_ns)
        self.t += duration_ns
        await asyncio.sleep(0)

    async def yield_now(self, remaining_ns: int) -> None:
        assert remaining_ns > 0
        self.spins += 1
        self.t += self.spin_step_ns
        await asyncio.sleep(0)


class DoneProgress:
    def __init__(self) -> None:
        self.waited: list[int] = []

    async def wait_query_done(self, query: int) -> None:
        self.waited.append(query)


async def test_wait_until_sleeps_then_spins_to_the_deadline() -> None:
    clock = VirtualClock()
    deadline = clock.t + 10_000_000
    await wait_until(deadline, clock, spin_ns=2_000_000)
    assert clock.sleeps == [8_000_000]
    assert clock.spins == 2_000_000 // clock.spin_step_ns  # the last 2 ms are spun, not slept
    assert deadline <= clock.t < deadline + clock.spin_step_ns


async def test_wait_until_returns_at_once_when_late() -> None:
    clock = VirtualClock()
    before = clock.t
    await wait_until(clock.t - 5, clock)
    assert clock.t == before and clock.sleeps == [] and clock.spins == 0


async def test_server_scheduler_returns_ideal_times_and_never_early() -> None:
    clock = VirtualClock(spin_step_ns=700)
    start = clock.t
    offsets = [0, 3_000_000, 3_000_100, 20_000_000]
    scheduler = ServerScheduler(start, offsets, clock, spin_ns=1_000_000)
    for q, offset in enumerate(offsets):
        scheduled = await scheduler.wait(q)
        assert scheduled == start + offset
        assert start + offset <= clock.t < start + offset + 1_000_000


async def test_server_scheduler_late_query_keeps_its_ideal_time() -> None:
    clock = VirtualClock()
    scheduler = ServerScheduler(clock.t, [0, 1_000], clock)
    clock.t += 5_000_000  # the issue loop fell behind
    assert await scheduler.wait(1) == clock.t - 5_000_000 + 1_000


@pytest.mark.parametrize("scenario", list(Scenario))
async def test_make_scheduler_latency_origin_per_scenario(scenario: Scenario) -> None:
    clock = VirtualClock()
    start = clock.t
    progress = DoneProgress()
    scheduler = make_scheduler(
        scenario, start_ns=start, offsets_ns=[0, 4_000_000], progress=progress, clock=clock
    )
    first = await scheduler.wait(0)
    clock.t += 1_000_000  # time passes while query 0 is served
    second = await scheduler.wait(1)
    match scenario:
        case Scenario.SINGLE_STREAM | Scenario.MULTI_STREAM:
            assert (first, second) == (start, start + 1_000_000)
            assert progress.waited == [0]
        case Scenario.SERVER:
            assert (first, second) == (start, start + 4_000_000)
        case Scenario.OFFLINE:
            assert isinstance(scheduler, OfflineScheduler)
            assert (first, second) == (start, start)


async def test_find_peak_qps_grows_then_bisects() -> None:
    true_peak = 137.3

    async def probe(qps: float) -> bool:
        return qps <= true_peak

    peak, steps = await find_peak_qps(probe, start_qps=10.0, boundary_step_size=1.0, decimals_of_precision=1)
    assert peak is not None and true_peak - 0.1 <= peak <= true_peak
    assert [q for q, _ in steps[:5]] == [10.0, 20.0, 40.0, 80.0, 160.0]
    assert steps[4] == (160.0, False)
    assert all(passed == (q <= true_peak) for q, passed in steps)


async def test_find_peak_qps_start_fails() -> None:
    async def probe(qps: float) -> bool:
        return False

    peak, steps = await find_peak_qps(probe, start_qps=5.0, boundary_step_size=1.0, decimals_of_precision=0)
    assert peak is None and steps == [(5.0, False)]


async def test_find_peak_qps_is_loadgens_search_to_the_digit() -> None:
    # LoadGen (loadgen.cc FindBoundaries / FindPeakPerformanceBinarySearch, test_settings_internal.h):
    # widen x2 from 50 until 3200 fails, then probe l + (u - l) / 2 unrounded until
    # floor(l * 10) + 1 >= floor(u * 10). No probe is rounded, and the peak keeps every digit.
    async def probe(qps: float) -> bool:
        return qps <= 2399.25

    peak, steps = await find_peak_qps(probe, start_qps=50.0, boundary_step_size=1.0, decimals_of_precision=1)
    assert [q for q, _ in steps] == [
        50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0,
        2400.0, 2000.0, 2200.0, 2300.0, 2350.0, 2375.0, 2387.5, 2393.75, 2396.875, 2398.4375,
        2399.21875, 2399.609375, 2399.4140625, 2399.31640625,
    ]  # fmt: skip
    assert peak == 2399.21875
    assert search_finished(2399.21875, 2399.31640625, 1) and not search_finished(2399.21875, 2399.4140625, 1)


async def test_find_peak_qps_widens_without_a_probe_cap() -> None:
    async def probe(qps: float) -> bool:
        return qps < 2.0**40

    peak, steps = await find_peak_qps(probe, start_qps=1.0, boundary_step_size=1.0, decimals_of_precision=0)
    assert steps[40] == (2.0**40, False) and peak is not None and 2.0**40 - 1 <= peak < 2.0**40
