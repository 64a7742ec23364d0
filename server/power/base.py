"""What every power source is: a `SourceInfo` and a `read()` of cumulative energy or instantaneous power.

Two kinds exist. An energy source (RAPL, hwmon energy*_input, NVML's energy counter) returns the joules
counted since it was opened; `EnergyCounter` turns the raw hardware counter into that, handling
wrap-around and resets. A power source (hwmon power*_input, INA3221 rails, a wall meter) returns watts
at the moment of the read; the window integrates those over time.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final, Literal, Protocol

import grpc

from edgeperf.server.errors import EdgeperfServerError

__all__ = [
    "EnergyCounter",
    "PowerError",
    "PowerSource",
    "Scope",
    "SourceInfo",
    "SysfsSource",
    "read_sysfs_int",
]


class PowerError(EdgeperfServerError):
    """A power source cannot be opened or read; the message names the source and the file or device."""

    grpc_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNAVAILABLE


class Scope(enum.StrEnum):
    """How much of the system a source sees, from least to most."""

    COMPONENT = "component"
    """One part: a CPU package, DRAM, one GPU, one rail."""
    BOARD = "board"
    """The whole board behind its input rail (Jetson VDD_IN), not the power supply's losses."""
    WALL = "wall"
    """The whole system at the wall socket: what MLPerf power results measure."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceInfo:
    name: str
    """Unique among the server's sources, e.g. "rapl:package-0", "nvml:0", "scpi"."""
    kind: Literal["energy", "power"]
    """"energy": `read()` is a cumulative counter in joules; "power": `read()` is watts now."""
    covers: str
    """What the reading includes, for people: "CPU package only", "whole board (VDD_IN)", "wall"."""
    scope: Scope


class PowerSource(Protocol):
    """One channel. `read()` may block (a file, NVML, an instrument): callers run it in a thread."""

    @property
    def info(self) -> SourceInfo: ...

    def read(self) -> float:
        """Joules since open (energy sources) or watts now (power sources).

        Raises:
            PowerError: the reading failed; the message names the source.
        """
        ...

    def close(self) -> None: ...


def read_sysfs_int(path: Path, source: str) -> int:
    """An integer sysfs attribute; PowerError with the cause (permission, missing file, bad text)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except PermissionError:
        raise PowerError(
            f"{source}: {path}: permission denied (RAPL energy_uj is readable by root only since Linux 5.10; "
            "run the server as root or grant read access to the file)"
        ) from None
    except OSError as err:
        raise PowerError(f"{source}: {path}: cannot read: {err.strerror or err}") from None
    try:
        return int(text)
    except ValueError:
        raise PowerError(f"{source}: {path}: not an integer: {text[:40]!r}") from None


class EnergyCounter:
    """Raw counter values (in `unit_j` joules per count) to joules since the first value.

    A value below the previous one is a wrap-around when the counter's range is known (RAPL's
    `max_energy_range_uj`): the counter passed its maximum and restarted at 0, so the energy is what was
    left to the maximum plus the new value. Without a known range (hwmon energy*_input, NVML) it is a
    reset (driver reload, device reset): the counter restarted from 0, so the new value is the energy
    since. Either way at most one wrap per read is assumed, so a source must be read more often than its
    counter wraps (RAPL: ~60 s at full load on large packages; the window reads every 100 ms).
    """

    def __init__(self, unit_j: float, max_range: int | None = None) -> None:
        self._unit_j = unit_j
        self._max_range = max_range
        self._last: int | None = None
        self._total = 0
        self.wraps = 0
        self.resets = 0

    def update(self, raw: int) -> float:
        """The new raw value; returns joules since the first `update`."""
        last = self._last
        self._last = raw
        if last is None:
            return 0.0
        if raw >= last:
            self._total += raw - last
        elif self._max_range is not None and last <= self._max_range:
            self._total += self._max_range - last + raw
            self.wraps += 1
        else:
            self._total += raw
            self.resets += 1
        return self._total * self._unit_j


class SysfsSource:
    """What the sysfs sources (RAPL zones, hwmon channels) share: their info, an energy counter that reads
    from the window's thread and a caller's thread update under a lock, and nothing to close (every read
    opens and closes its file)."""

    def __init__(self, info: SourceInfo, max_range_uj: int | None = None) -> None:
        self.info: Final = info
        self.counter: Final = EnergyCounter(1e-6, max_range_uj)  # sysfs counts microjoules
        self._lock = threading.Lock()

    def _joules(self, raw: int) -> float:
        """`raw` counter value to joules since the first read."""
        with self._lock:
            return self.counter.update(raw)

    def close(self) -> None:
        pass
