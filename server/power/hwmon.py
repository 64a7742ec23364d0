"""Linux hwmon: `power*_input` (µW, instantaneous) and `energy*_input` (µJ, a counter) channels.

A chip folder `/sys/class/hwmon/hwmonN` has `name` (the driver: "amdgpu", "k10temp", "ina3221", ...) and
per channel an optional `power1_label`/`energy1_label`. What a channel covers depends on the chip, so it
is named after both ("amdgpu PPT"). Where one channel number has both an energy counter and a power
reading, the counter is used: it integrates in hardware and misses nothing between reads.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from edgeperf.server.power.base import PowerError, Scope, SourceInfo, SysfsSource, read_sysfs_int

__all__ = ["DEFAULT_ROOT", "JETSON_CHIPS", "HwmonChannel", "find_channels"]

DEFAULT_ROOT: Final = Path("/sys/class/hwmon")
_CHANNEL: Final = re.compile(r"^(power|energy)(\d+)_input$")
JETSON_CHIPS: Final = frozenset({"ina3221", "ina3221x"})
"""Left to the jetson adapter, which knows which rail is the board's input."""


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


class HwmonChannel(SysfsSource):
    """One hwmon power or energy channel."""

    def __init__(self, input_path: Path) -> None:
        found = _CHANNEL.match(input_path.name)
        if found is None:
            raise PowerError(f"hwmon: {input_path}: not a power*_input or energy*_input file")
        quantity, number = found.groups()
        chip_dir = input_path.parent
        chip = _text(chip_dir / "name") or chip_dir.name
        label = _text(chip_dir / f"{quantity}{number}_label") or f"{quantity}{number}"
        self._power = quantity == "power"
        info = SourceInfo(
            name=f"hwmon:{chip_dir.name}:{quantity}{number}",
            kind="power" if self._power else "energy",
            covers=f"{chip} {label} only",
            scope=Scope.COMPONENT,
        )
        super().__init__(info)
        self._path = input_path
        self.read()

    def read(self) -> float:
        raw = read_sysfs_int(self._path, self.info.name)
        return raw * 1e-6 if self._power else self._joules(raw)


def find_channels(root: Path = DEFAULT_ROOT, *, skip_chips: frozenset[str] = JETSON_CHIPS) -> list[Path]:
    """Every power/energy input under `root`'s chips, the energy counter preferred per channel number."""
    inputs: list[Path] = []
    if not root.is_dir():
        return inputs
    for chip_dir in sorted(root.iterdir()):
        if (_text(chip_dir / "name") or "") in skip_chips:
            continue
        try:
            channels = sorted(
                (m.group(1), m.group(2), p) for p in chip_dir.iterdir() if (m := _CHANNEL.match(p.name))
            )
        except OSError:
            continue
        counted = {number for quantity, number, _ in channels if quantity == "energy"}
        inputs += [p for quantity, number, p in channels if quantity == "energy" or number not in counted]
    return inputs
