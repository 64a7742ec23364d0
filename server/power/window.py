"""A measurement window over the sources: read every `interval`, integrate, total between two marks.

Each source gives a trace of (time, joules since the window began, watts). Energy sources read their
counter (watts are the counter's rate since the previous read); power sources are integrated with the
trapezoid rule. The energy between any two instants inside the trace is interpolated linearly between
the reads around them, which is how a window ends exactly `window_ns` after it began although the end
mark arrives later (the client measures the timed pass, then says how long it was).

The headline total adds the sources of the widest scope present (a wall meter, else board rails, else
components); adding a wall meter to the CPU package would count the package twice.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from edgeperf.server.power.base import PowerError, PowerSource, Scope, SourceInfo

__all__ = ["PowerWindow", "SourceTotal", "Tick", "WindowResult", "headline"]

_SCOPE_RANK = {Scope.COMPONENT: 0, Scope.BOARD: 1, Scope.WALL: 2}


@dataclass
class _Trace:
    info: SourceInfo
    times_ns: list[int] = field(default_factory=list)
    joules: list[float] = field(default_factory=list)
    watts: list[float] = field(default_factory=list)
    _base: float = 0.0

    def add(self, t_ns: int, value: float) -> float:
        """Record one read; returns the watts it stands for."""
        if self.info.kind == "energy":
            if not self.times_ns:
                self._base = value
                cumulative, watts = 0.0, 0.0
            else:
                cumulative = value - self._base
                dt = (t_ns - self.times_ns[-1]) / 1e9
                watts = (cumulative - self.joules[-1]) / dt if dt > 0 else self.watts[-1]
        else:
            watts = value
            cumulative = (
                0.0
                if not self.times_ns
                else self.joules[-1] + (self.watts[-1] + watts) / 2 * (t_ns - self.times_ns[-1]) / 1e9
            )
        self.times_ns.append(t_ns)
        self.joules.append(cumulative)
        self.watts.append(watts)
        return watts

    def energy_at(self, t_ns: int) -> float:
        """Joules since the window began at `t_ns`, interpolated between reads (clamped to the trace)."""
        times = self.times_ns
        if t_ns <= times[0]:
            return self.joules[0]
        if t_ns >= times[-1]:
            return self.joules[-1]
        i = bisect.bisect_right(times, t_ns)
        t0, t1 = times[i - 1], times[i]
        e0, e1 = self.joules[i - 1], self.joules[i]
        return e0 + (e1 - e0) * (t_ns - t0) / (t1 - t0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """One read of every source."""

    t_ns: int
    """Since the window began (the server's monotonic clock)."""
    watts: tuple[float, ...]
    """Per source, in the window's source order; energy sources: the rate since the previous tick."""
    total_w: float
    """The headline sources' sum."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceTotal:
    info: SourceInfo
    energy_j: float
    average_w: float
    reads: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowResult:
    window_ns: int
    energy_j: float
    """The headline sources' energy over the window."""
    average_w: float
    covers: str
    scope: Scope
    sources: tuple[SourceTotal, ...]


def headline(infos: Sequence[SourceInfo]) -> list[int]:
    """Indices of the sources the total adds: those of the widest scope present."""
    widest = max(_SCOPE_RANK[i.scope] for i in infos)
    return [n for n, i in enumerate(infos) if _SCOPE_RANK[i.scope] == widest]


class PowerWindow:
    """Reads `sources` from `begin()` until `finish()`; one window per measurement, not reusable."""

    def __init__(self, sources: Sequence[PowerSource]) -> None:
        if not sources:
            raise PowerError("no power source")
        self._sources = list(sources)
        self._traces = [_Trace(s.info) for s in self._sources]
        self._headline = headline([s.info for s in self._sources])
        self._start_ns: int | None = None

    @property
    def infos(self) -> list[SourceInfo]:
        return [s.info for s in self._sources]

    def _read_all(self) -> Tick:
        watts: list[float] = []
        for source, trace in zip(self._sources, self._traces, strict=True):
            value = source.read()
            now = time.monotonic_ns()
            if self._start_ns is None:  # NOTE: time 0 is the first read, not the thread hop before it
                self._start_ns = now
            t_ns = now - self._start_ns
            watts.append(trace.add(t_ns, value))
        return Tick(
            t_ns=self._traces[0].times_ns[-1],
            watts=tuple(watts),
            total_w=sum(watts[i] for i in self._headline),
        )

    async def begin(self) -> Tick:
        """The first read, which is the window's time 0."""
        return await asyncio.to_thread(self._read_all)

    async def tick(self) -> Tick:
        """Read every source now (in a thread: sysfs, NVML and instruments block)."""
        return await asyncio.to_thread(self._read_all)

    def result(self, window_ns: int | None = None) -> WindowResult:
        """Totals over [0, window_ns] (default: up to the last read); call after a last `tick()`."""
        last = min(t.times_ns[-1] for t in self._traces)
        end = last if window_ns is None or window_ns <= 0 else min(window_ns, last)
        totals: list[SourceTotal] = []
        for trace in self._traces:
            energy = trace.energy_at(end) - trace.energy_at(0)
            reads = sum(1 for t in trace.times_ns if t <= end)
            totals.append(
                SourceTotal(
                    info=trace.info,
                    energy_j=energy,
                    average_w=energy / end * 1e9 if end > 0 else 0.0,
                    reads=reads,
                )
            )
        chosen = [totals[i] for i in self._headline]
        energy = sum(t.energy_j for t in chosen)
        return WindowResult(
            window_ns=end,
            energy_j=energy,
            average_w=energy / end * 1e9 if end > 0 else 0.0,
            covers=" + ".join(t.info.covers for t in chosen),
            scope=chosen[0].info.scope,
            sources=tuple(totals),
        )
