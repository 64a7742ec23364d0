"""The server's periodic malloc_trim: freed memory that glibc keeps in its heap goes back to the system.

80 MiB of 4 KiB blocks are allocated with libc's malloc and freed, with one block above them still held,
so glibc cannot shrink its heap by itself: the pages stay resident until `malloc_trim` releases them.
That is what the soak showed (RSS following the load's past peaks, not what was in use).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from pathlib import Path

import pytest

from edgeperf.server.memory import MallocTrimmer

pytestmark = pytest.mark.timeout(60)

_BLOCK = 4096
_BLOCKS = 20_480


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("VmRSS not in /proc/self/status")


async def test_the_trimmer_gives_freed_heap_pages_back() -> None:
    trimmer = MallocTrimmer(period_s=0.05)
    if not trimmer.available:
        pytest.skip("not glibc: malloc_trim does not exist here")
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    blocks = [libc.malloc(_BLOCK) for _ in range(_BLOCKS)]
    pin = libc.malloc(_BLOCK)  # NOTE: above the others, so freeing them leaves a hole, not a top to cut
    for block in blocks:
        libc.memset(block, 1, _BLOCK)
    for block in blocks:
        libc.free(block)
    kept = _rss_mib()
    trimmer.start()
    try:
        for _ in range(100):
            await asyncio.sleep(0.05)
            if trimmer.trims >= 2:
                break
    finally:
        await trimmer.stop()
        libc.free(pin)
    assert trimmer.trims >= 1
    assert _rss_mib() < kept - 40, f"RSS {kept:.0f} -> {_rss_mib():.0f} MiB after {trimmer.trims} trims"


async def test_stop_without_start_and_a_bad_period() -> None:
    await MallocTrimmer().stop()
    with pytest.raises(ValueError, match="period"):
        MallocTrimmer(period_s=0)
