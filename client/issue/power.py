"""Power over the wire: mark the timed pass on the server's MeasurePower stream, then report it.

`PowerMonitor.begin()` is called as the performance pass starts and `end(window_ns)` once it has ended,
with the pass's length up to its last completion (the span `power_begin`..`power_end` of the detail log);
the server totals its sources over exactly that span. The result goes to result.json (`power`), the
detail log (`edgeperf_power_*`), the summary's edgeperf section and `spl.txt`, a sample log in the shape
of SPEC PTDaemon's (`Time,MM-DD-YYYY HH:MM:SS.mmm,Watts,W,Mark,NAME`), one line per server read, so the
average can be recomputed by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import grpc

from edgeperf.protos import edgeperf_service_pb2 as epb

__all__ = ["NOT_MEASURED", "PowerMeasurement", "PowerMonitor", "PowerSourceReading", "power_sources"]

NOT_MEASURED: Final = "power: not measured"
_SERVICE: Final = "/edgeperf.v1.EdgeperfService/"
_START_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PowerSourceReading:
    name: str
    kind: str
    covers: str
    scope: str
    energy_j: float
    average_w: float
    reads: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PowerMeasurement:
    """The server's power over one timed pass."""

    begin: datetime
    """The client's wall clock when the pass started (UTC)."""
    window_ns: int
    energy_j: float
    average_w: float
    covers: str
    """What the total includes, e.g. "CPU package only + DRAM only" or "wall (YOKOGAWA,WT310,...)"."""
    scope: str
    sources: tuple[PowerSourceReading, ...]
    ticks: tuple[tuple[int, float], ...]
    """(ns since the pass started, total watts) per server read."""

    @property
    def end(self) -> datetime:
        return self.begin + timedelta(microseconds=self.window_ns / 1000)

    def per_watt(self, samples: int) -> float | None:
        """Samples per second per watt (= samples per joule) over the window."""
        return samples / self.energy_j if self.energy_j > 0 else None

    def millijoules_per_query(self, queries: int) -> float | None:
        return self.energy_j * 1000 / queries if queries > 0 else None

    def as_json(self, *, samples: int, queries: int, per_query: bool) -> dict[str, object]:
        return {
            "measured": True,
            "average_w": self.average_w,
            "energy_j": self.energy_j,
            "window_s": self.window_ns / 1e9,
            "begin_utc": self.begin.isoformat(timespec="milliseconds"),
            "end_utc": self.end.isoformat(timespec="milliseconds"),
            "covers": self.covers,
            "scope": self.scope,
            "samples_per_s_per_w": self.per_watt(samples),
            "mj_per_query": self.millijoules_per_query(queries) if per_query else None,
            "sources": [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "covers": s.covers,
                    "scope": s.scope,
                    "energy_j": s.energy_j,
                    "average_w": s.average_w,
                    "reads": s.reads,
                }
                for s in self.sources
            ],
            "sample_log": "spl.txt",
        }

    def detail_items(self, *, samples: int, queries: int, per_query: bool) -> list[tuple[str, object]]:
        items: list[tuple[str, object]] = [
            ("edgeperf_power_begin", _ptd_time(self.begin)),
            ("edgeperf_power_end", _ptd_time(self.end)),
            ("edgeperf_power_average_w", round(self.average_w, 6)),
            ("edgeperf_power_energy_j", round(self.energy_j, 6)),
            ("edgeperf_power_covers", self.covers),
        ]
        per_watt = self.per_watt(samples)
        if per_watt is not None:
            items.append(("edgeperf_power_samples_per_s_per_w", round(per_watt, 6)))
        mj = self.millijoules_per_query(queries)
        if per_query and mj is not None:
            items.append(("edgeperf_power_mj_per_query", round(mj, 6)))
        return items

    def summary_lines(self, *, samples: int, queries: int, per_query: bool) -> list[str]:
        lines = [
            f"Power average (W) : {self.average_w:.3f}",
            f"Energy (J) : {self.energy_j:.3f}",
            f"Power covers : {self.covers}",
        ]
        per_watt = self.per_watt(samples)
        if per_watt is not None:
            lines.append(f"Samples per second per watt : {per_watt:.4f}")
        mj = self.millijoules_per_query(queries)
        if per_query and mj is not None:
            lines.append(f"Energy per query (mJ) : {mj:.3f}")
        return lines

    def spl_lines(self, mark: str) -> list[str]:
        """PTDaemon-shaped lines for the reads inside the window (the first read only starts it)."""
        return [
            f"Time,{_ptd_time(self.begin + timedelta(microseconds=t / 1000))},Watts,{watts:.6f},Mark,{mark}\n"
            for t, watts in self.ticks
            if 0 < t <= self.window_ns
        ]


def _ptd_time(t: datetime) -> str:
    """PTDaemon's and LoadGen's power_begin format: MM-DD-YYYY HH:MM:SS.mmm (UTC)."""
    t = t.astimezone(UTC)
    return t.strftime("%m-%d-%Y %H:%M:%S.") + f"{t.microsecond // 1000:03d}"


async def power_sources(
    channel: grpc.aio.Channel, metadata: Sequence[tuple[str, str]] | None, timeout_s: float
) -> tuple[list[epb.PowerSourceInfo], str | None]:
    """The server's power sources, or ([], why not) for a server without any (or without edgeperf's service)."""
    call = channel.unary_unary(
        _SERVICE + "SystemDescription",
        request_serializer=epb.SystemDescriptionRequest.SerializeToString,
        response_deserializer=epb.SystemDescriptionResponse.FromString,
    )
    try:
        answer = await call(epb.SystemDescriptionRequest(), timeout=timeout_s, metadata=metadata)
    except grpc.aio.AioRpcError as exc:
        return [], f"the server has no edgeperf SystemDescription ({exc.code().name})"
    sources = list(answer.power_sources)
    return sources, None if sources else "the server has no power source"


class PowerMonitor:
    """One MeasurePower call around one timed pass. `begin()`, the pass, `end(window_ns)`."""

    def __init__(
        self, channel: grpc.aio.Channel, metadata: Sequence[tuple[str, str]] | None, *, interval_ms: int = 100
    ) -> None:
        self._method = channel.stream_stream(
            _SERVICE + "MeasurePower",
            request_serializer=epb.PowerMark.SerializeToString,
            response_deserializer=epb.PowerEvent.FromString,
        )
        self._metadata = metadata
        self._interval_ms = interval_ms
        self._call: Any = None
        self._reader: asyncio.Task[epb.PowerResult | None] | None = None
        self._ticks: list[tuple[int, float]] = []
        self._begin: datetime | None = None
        self.failure: str | None = None
        """Why the last window has no measurement (the server's source failed, the call broke)."""

    async def begin(self) -> None:
        """Open the window; returns once the server has read its sources for the first time."""
        self._ticks = []
        self.failure = None
        self._call = self._method(metadata=self._metadata)
        try:
            await self._call.write(epb.PowerMark(kind=epb.PowerMark.BEGIN, interval_ms=self._interval_ms))
            started = await asyncio.wait_for(self._call.read(), _START_TIMEOUT_S)
        except (grpc.aio.AioRpcError, TimeoutError) as exc:
            self._fail(exc)
            return
        if started is grpc.aio.EOF or started.WhichOneof("event") != "started":
            self._fail(RuntimeError("the server did not start the window"))
            return
        self._begin = datetime.now(UTC)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> epb.PowerResult | None:
        while True:
            event = await self._call.read()
            if event is grpc.aio.EOF:
                return None
            which = event.WhichOneof("event")
            if which == "tick":
                self._ticks.append((event.tick.t_ns, event.tick.total_watts))
            elif which == "result":
                return event.result  # type: ignore[no-any-return]

    def _fail(self, exc: BaseException) -> None:
        detail = f"{exc.code().name}: {exc.details()}" if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
        self.failure = f"power measurement failed: {detail}"
        if self._call is not None:
            self._call.cancel()
        self._call = None

    async def end(self, window_ns: int) -> PowerMeasurement | None:
        """Close the window at `window_ns` after its start; None (and `failure`) when it was lost."""
        call, reader, begin = self._call, self._reader, self._begin
        self._reader = None
        if call is None or reader is None or begin is None:
            return None
        try:
            await call.write(epb.PowerMark(kind=epb.PowerMark.END, window_ns=max(window_ns, 1)))
            await call.done_writing()
            result = await asyncio.wait_for(reader, _START_TIMEOUT_S)
        except (grpc.aio.AioRpcError, TimeoutError, asyncio.InvalidStateError) as exc:
            reader.cancel()
            self._fail(exc)
            return None
        self._call = None
        if result is None:
            self.failure = "power measurement failed: the server ended the window without a result"
            return None
        # NOTE: the server counts from its first read, which the client's start follows by one network trip.
        ticks = tuple(self._ticks)
        return PowerMeasurement(
            begin=begin,
            window_ns=result.window_ns,
            energy_j=result.energy_j,
            average_w=result.average_w,
            covers=result.covers,
            scope=result.scope,
            sources=tuple(
                PowerSourceReading(
                    name=s.source.name,
                    kind=s.source.kind,
                    covers=s.source.covers,
                    scope=s.source.scope,
                    energy_j=s.energy_j,
                    average_w=s.average_w,
                    reads=s.reads,
                )
                for s in result.sources
            ),
            ticks=ticks,
        )

    def cancel(self) -> None:
        """Abandon an open window (the pass failed to start or the run was abandoned)."""
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        if self._call is not None:
            self._call.cancel()
            self._call = None
