"""Monotonic time for the batcher: the Clock protocol and its real implementation."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Executor
from typing import Any, Protocol

__all__ = ["Clock", "MonotonicClock"]


class Clock(Protocol):
    """Monotonic time for the batcher's delays and timeouts."""

    def now_ns(self) -> int:
        """The current monotonic time in nanoseconds."""
        ...

    async def wait(
        self, future: asyncio.Future[Any], deadline_ns: int | None, *, thread: Executor | None = None
    ) -> bool:
        """Wait until `future` is done (True) or `deadline_ns` passes (False); never cancels `future`.

        `thread`, when given, is an idle executor the wait may block in for sub-millisecond precision
        (event-loop timers round up to whole milliseconds).
        """
        ...


class MonotonicClock:
    """`time.monotonic_ns()` and asyncio timers."""

    def now_ns(self) -> int:
        return time.monotonic_ns()

    async def wait(
        self, future: asyncio.Future[Any], deadline_ns: int | None, *, thread: Executor | None = None
    ) -> bool:
        if future.done():
            return True
        if deadline_ns is None:
            await asyncio.wait([future])
            return True
        timeout_s = (deadline_ns - time.monotonic_ns()) / 1e9
        if timeout_s <= 0:
            return False
        if thread is not None:
            # NOTE: epoll and libuv timers have millisecond resolution, which would turn a 100 us queue
            # delay into 1 ms; a threading.Event wait in the idle instance thread is precise to ~50 us.
            flag = threading.Event()
            future.add_done_callback(lambda _: flag.set())
            await asyncio.get_running_loop().run_in_executor(thread, flag.wait, timeout_s)
            return future.done()
        await asyncio.wait([future], timeout=timeout_s)
        return future.done()
