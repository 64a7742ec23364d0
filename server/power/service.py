"""The MeasurePower stream: BEGIN, a tick per read, END with the window's length, then the totals.

The client sends BEGIN as its timed pass starts and END (carrying the pass's length, measured on its
own clock) after the pass has ended, so the totals cover exactly the pass although END arrives later;
the only offset is BEGIN's one-way network delay, a fraction of a millisecond on a LAN.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Final

import grpc

from edgeperf.protos import edgeperf_service_pb2 as epb
from edgeperf.server.power.base import PowerError, PowerSource, SourceInfo
from edgeperf.server.power.window import PowerWindow, Tick, WindowResult

__all__ = ["DEFAULT_INTERVAL_MS", "measure_power", "source_info_proto"]

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_MS: Final = 100
"""Often enough to catch every RAPL wrap and to give a meter's samples, rare enough to cost nothing."""
_MIN_INTERVAL_MS: Final = 10
_MAX_INTERVAL_MS: Final = 10_000


def source_info_proto(info: SourceInfo) -> epb.PowerSourceInfo:
    return epb.PowerSourceInfo(name=info.name, kind=info.kind, covers=info.covers, scope=info.scope.value)


def _tick(tick: Tick) -> epb.PowerEvent:
    return epb.PowerEvent(tick=epb.PowerTick(t_ns=tick.t_ns, watts=tick.watts, total_watts=tick.total_w))


def _result(result: WindowResult) -> epb.PowerEvent:
    return epb.PowerEvent(
        result=epb.PowerResult(
            window_ns=result.window_ns,
            energy_j=result.energy_j,
            average_w=result.average_w,
            covers=result.covers,
            scope=result.scope.value,
            sources=[
                epb.PowerSourceTotal(
                    source=source_info_proto(s.info),
                    energy_j=s.energy_j,
                    average_w=s.average_w,
                    reads=s.reads,
                )
                for s in result.sources
            ],
        )
    )


async def _next_mark(marks: AsyncIterator[epb.PowerMark]) -> epb.PowerMark | None:
    async for mark in marks:
        return mark
    return None


async def measure_power(
    sources: Sequence[PowerSource],
    marks: AsyncIterator[epb.PowerMark],
    context: grpc.aio.ServicerContext,
) -> AsyncIterator[epb.PowerEvent]:
    """The events of one MeasurePower call (aborts the call with a status on bad marks or a failed read)."""
    begin = await _next_mark(marks)
    if not isinstance(begin, epb.PowerMark) or begin.kind != epb.PowerMark.BEGIN:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "MeasurePower: the first mark must be BEGIN")
    assert begin is not None
    # NOTE: checked after reading BEGIN, so the client's first write never races the call's end.
    if not sources:
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            "this server measures no power (no source found; see `edgeperf-server serve --power`)",
        )
    interval_ms = begin.interval_ms or DEFAULT_INTERVAL_MS
    if not _MIN_INTERVAL_MS <= interval_ms <= _MAX_INTERVAL_MS:
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"MeasurePower: interval_ms must be in {_MIN_INTERVAL_MS}..{_MAX_INTERVAL_MS}, got {interval_ms}",
        )
    window = PowerWindow(sources)
    end_task = asyncio.ensure_future(_next_mark(marks))
    try:
        first = await window.begin()
        yield epb.PowerEvent(started=epb.PowerStarted(sources=[source_info_proto(i) for i in window.infos]))
        yield _tick(first)
        loop = asyncio.get_running_loop()
        start = loop.time()
        reads = 1
        while True:
            # NOTE: reads are scheduled from the start, not after the previous read, so they do not drift.
            delay = max(start + reads * interval_ms / 1000 - loop.time(), 0.0)
            done, _ = await asyncio.wait({end_task}, timeout=delay)
            if done:
                break
            yield _tick(await window.tick())
            reads += 1
        end = end_task.result()
        if end is not None and (not isinstance(end, epb.PowerMark) or end.kind != epb.PowerMark.END):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "MeasurePower: the second mark must be END")
        yield _tick(await window.tick())
        yield _result(window.result(None if end is None else end.window_ns))
    except PowerError as err:
        logger.warning("power measurement failed: %s", err, extra={"event": "power_failed"})
        await context.abort(grpc.StatusCode.UNAVAILABLE, f"power measurement failed: {err}")
    finally:
        end_task.cancel()
