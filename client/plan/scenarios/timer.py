"""A precise deadline timer for the event loop: a Linux timerfd watched by the loop's selector.

asyncio's own timers wake the loop through the selector timeout, which epoll takes in whole
milliseconds, so a sleep overshoots by up to a millisecond and the issue loop had to spin through the
last 1.2 ms before every deadline. A timerfd armed with an absolute `CLOCK_MONOTONIC` time (the clock
behind `time.perf_counter_ns()` on Linux) makes the selector return within tens of microseconds of the
deadline, while completions are still processed as they arrive; the issue loop then spins only through
the last stretch. Where timerfd is unavailable (not Linux, no libc), `DeadlineTimer.create` returns None
and the caller keeps asyncio's timers.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import sys
import time
import weakref

__all__ = ["DeadlineTimer"]

_CLOCK_MONOTONIC = 1
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    if time.get_clock_info("perf_counter").implementation != "clock_gettime(CLOCK_MONOTONIC)":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.timerfd_create.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.timerfd_settime.argtypes = (
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(_Itimerspec),
            ctypes.c_void_p,
        )
    except (OSError, AttributeError):
        return None
    return libc


class DeadlineTimer:
    """One timerfd registered with one event loop; `sleep_until(deadline_ns)` wakes at that absolute time.

    Create it with `DeadlineTimer.create()` inside the running loop; `close()` releases the descriptor
    (it is also released when the timer is garbage collected).
    """

    def __init__(self, libc: ctypes.CDLL, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self._libc = libc
        self._fd = fd
        self._loop = loop
        self._waiter: asyncio.Future[None] | None = None
        self._spec = _Itimerspec()
        loop.add_reader(fd, self._fired)
        self._finalizer = weakref.finalize(self, _release, loop, fd)

    @classmethod
    def create(cls) -> DeadlineTimer | None:
        """A timer for the running loop, or None where timerfd cannot be used."""
        libc = _libc()
        if libc is None:
            return None
        fd = libc.timerfd_create(_CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            return None
        loop = asyncio.get_running_loop()
        try:
            return cls(libc, fd, loop)
        except (NotImplementedError, OSError, ValueError):
            os.close(fd)  # NOTE: a loop without add_reader (Windows proactor) keeps asyncio's timers.
            return None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def _fired(self) -> None:
        try:
            os.read(self._fd, 8)
        except BlockingIOError:
            return
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def sleep_until(self, deadline_ns: int) -> None:
        """Return at about `deadline_ns` (absolute `perf_counter_ns`), letting the loop run meanwhile."""
        if self._waiter is not None:
            raise RuntimeError("DeadlineTimer.sleep_until is already waiting")
        spec = self._spec
        spec.it_value.tv_sec, spec.it_value.tv_nsec = divmod(max(deadline_ns, 1), 1_000_000_000)
        waiter = self._loop.create_future()
        self._waiter = waiter
        if self._libc.timerfd_settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
            self._waiter = None
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")
        try:
            await waiter
        finally:
            if self._waiter is waiter:
                self._waiter = None

    def close(self) -> None:
        self._finalizer()


def _release(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    if not loop.is_closed():
        loop.remove_reader(fd)
    os.close(fd)
