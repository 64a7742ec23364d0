"""The real monotonic clock: waits end at the deadline or as soon as the future is done."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from edgeperf.server.clock import MonotonicClock, Offload, wait_done
from edgeperf.server.instances import Instance


@pytest.fixture
async def offload() -> AsyncIterator[Offload]:
    instance = Instance("clock-test")
    try:
        yield instance.offload
    finally:
        await instance.close()


@pytest.mark.parametrize("threaded", [False, True])
async def test_wait_times_out_at_the_deadline(threaded: bool, offload: Offload) -> None:
    clock = MonotonicClock()
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    start = clock.now_ns()
    assert not await clock.wait(future, start + 3_000_000, offload=offload if threaded else None)
    elapsed = clock.now_ns() - start
    assert 3_000_000 <= elapsed < 500_000_000
    assert not future.done()


@pytest.mark.parametrize("threaded", [False, True])
async def test_wait_ends_when_the_future_is_done(threaded: bool, offload: Offload) -> None:
    clock = MonotonicClock()
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    loop.call_later(0.01, future.set_result, None)
    start = time.monotonic()
    assert await clock.wait(future, clock.now_ns() + 5_000_000_000, offload=offload if threaded else None)
    assert time.monotonic() - start < 2.5


async def test_a_cancelled_threaded_wait_frees_the_thread_at_once(offload: Offload) -> None:
    clock = MonotonicClock()
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiting = asyncio.create_task(clock.wait(future, clock.now_ns() + 5_000_000_000, offload=offload))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    start = time.monotonic()
    assert await asyncio.wait_for(offload(lambda: 42), 2.5) == 42
    assert time.monotonic() - start < 2.5
    assert not future.cancelled()


async def test_past_deadlines_and_done_futures_return_at_once() -> None:
    clock = MonotonicClock()
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    assert not await clock.wait(future, clock.now_ns() - 1)
    future.set_result(None)
    assert await clock.wait(future, None)


async def test_wait_done_survives_the_cancellation_of_its_waiter() -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    waiting = asyncio.create_task(wait_done(future))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not future.cancelled()
    future.set_result(1)
    await wait_done(future)
