"""Monotonic time for the batcher: the Clock protocol and its real implementation."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

__all__ = ["Clock", "MonotonicClock", "Offload", "wait_done"]

Offload = Callable[[Callable[[], Any]], Awaitable[Any]]
"""Runs a blocking callable on an idle thread and resolves on the event loop (`Instance.offload`)."""


class Clock(Protocol):
    """Monotonic time for the batcher's delays and timeouts."""

    def now_ns(self) -> int:
        """The current monotonic time in nanoseconds."""
        ...

    async def wait(
        self, future: asyncio.Future[Any], deadline_ns: int | None, *, offload: Offload | None = None
    ) -> bool:
        """Wait until `future` is done (True) or `deadline_ns` passes (False); never cancels `future`.

        `offload`, when given, runs a blocking wait on an idle thread, for sub-millisecond precision
        (event-loop timers round up to whole milliseconds).
        """
        ...


def _wake(waiter: asyncio.Future[None], _: object = None) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def wait_done(future: asyncio.Future[Any]) -> None:
    """Wait until `future` is done without cancelling it if the waiting task is cancelled.

    NOTE: cheaper than `asyncio.wait([future])` (no set, no task bookkeeping) and than `asyncio.shield`.
    """
    if future.done():
        return
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    wake = functools.partial(_wake, waiter)
    future.add_done_callback(wake)
    try:
        await waiter
    finally:
        future.remove_done_callback(wake)


class MonotonicClock:
    """`time.monotonic_ns()` and asyncio timers (or a blocking wait on an idle thread)."""

    # NOTE: the C function itself, not a method wrapping it: read several times per request.
    now_ns = staticmethod(time.monotonic_ns)

    async def wait(
        self, future: asyncio.Future[Any], deadline_ns: int | None, *, offload: Offload | None = None
    ) -> bool:
        if future.done():
            return True
        if deadline_ns is None:
            await wait_done(future)
            return True
        timeout_s = (deadline_ns - time.monotonic_ns()) / 1e9
        if timeout_s <= 0:
            return False
        if offload is not None:
            # NOTE: epoll and libuv timers have millisecond resolution, which would turn a 100 us queue
            # delay into 1 ms; a threading.Event wait in the idle instance thread is precise to ~50 us.
            flag = threading.Event()
            release = _set_flag(flag)
            future.add_done_callback(release)
            try:
                await offload(functools.partial(flag.wait, timeout_s))
            finally:
                future.remove_done_callback(release)
                flag.set()  # NOTE: frees the thread at once if this wait was cancelled
            return future.done()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        wake = functools.partial(_wake, waiter)
        future.add_done_callback(wake)
        timer = loop.call_later(timeout_s, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            future.remove_done_callback(wake)
        return future.done()


def _set_flag(flag: threading.Event) -> Callable[[object], None]:
    return lambda _: flag.set()
