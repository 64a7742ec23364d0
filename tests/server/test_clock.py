"""The real monotonic clock: waits end at the deadline or as soon as the future is done."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from edgeperf.server.clock import MonotonicClock


@pytest.mark.parametrize("threaded", [False, True])
async def test_wait_times_out_at_the_deadline(threaded: bool) -> None:
    clock = MonotonicClock()
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with ThreadPoolExecutor(1) as thread:
        start = clock.now_ns()
        assert not await clock.wait(future, start + 3_000_000, thread=thread if threaded else None)
        elapsed = clock.now_ns() - start
    assert 3_000_000 <= elapsed < 500_000_000
    assert not future.done()


@pytest.mark.parametrize("threaded", [False, True])
async def test_wait_ends_when_the_future_is_done(threaded: bool) -> None:
    clock = MonotonicClock()
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    loop.call_later(0.01, future.set_result, None)
    with ThreadPoolExecutor(1) as thread:
        start = time.monotonic()
        assert await clock.wait(future, clock.now_ns() + 5_000_000_000, thread=thread if threaded else None)
    assert time.monotonic() - start < 2.5


async def test_past_deadlines_and_done_futures_return_at_once() -> None:
    clock = MonotonicClock()
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    assert not await clock.wait(future, clock.now_ns() - 1)
    future.set_result(None)
    assert await clock.wait(future, None)
