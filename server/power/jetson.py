"""NVIDIA Jetson's on-board INA3221 monitors: one rail, by default the board's input (VDD_IN).

Two sysfs layouts exist. JetPack 5+ (Orin, Xavier on L4T 34+) registers the ina3221 as a hwmon chip:
`.../hwmon/hwmonN/inK_label` names the rail, `inK_input` is its voltage in mV and `currK_input` its
current in mA. JetPack 4 (Nano, TX2, Xavier on L4T 32) uses the ina3221x iio driver:
`.../iio:deviceN/rail_name_K` and `in_powerK_input` in mW. The input rail is VDD_IN on Orin and Xavier
and POM_5V_IN on Nano; it covers the whole module and carrier board after the power jack, not the
power supply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from edgeperf.server.power.base import PowerError, Scope, SourceInfo, read_sysfs_int

__all__ = ["DEFAULT_ROOT", "INPUT_RAILS", "JetsonRail", "find_rails"]

DEFAULT_ROOT: Final = Path("/sys/bus/i2c/drivers")
INPUT_RAILS: Final = ("VDD_IN", "POM_5V_IN")
"""Rails that carry the whole board's power, in the order they are looked for."""


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def find_rails(root: Path = DEFAULT_ROOT) -> dict[str, tuple[Path, ...]]:
    """Rail name -> the files that give its power: (mV, mA) for hwmon, (mW,) for iio."""
    rails: dict[str, tuple[Path, ...]] = {}
    if not root.is_dir():
        return rails
    for label in sorted(root.glob("ina3221*/*/hwmon/hwmon*/in*_label")):
        number = label.name[2:].removesuffix("_label")
        name = _text(label)
        volts, amps = label.parent / f"in{number}_input", label.parent / f"curr{number}_input"
        if name and volts.exists() and amps.exists():
            rails.setdefault(name, (volts, amps))
    for label in sorted(root.glob("ina3221*/*/iio:device*/rail_name_*")):
        number = label.name.removeprefix("rail_name_")
        name = _text(label)
        power = label.parent / f"in_power{number}_input"
        if name and power.exists():
            rails.setdefault(name, (power,))
    return rails


class JetsonRail:
    """Instantaneous power of one INA3221 rail in watts."""

    def __init__(self, rail: str | None = None, root: Path = DEFAULT_ROOT) -> None:
        rails = find_rails(root)
        if rail is None:
            rail = next((r for r in INPUT_RAILS if r in rails), None)
            if rail is None:
                raise PowerError(
                    f"jetson: no INA3221 input rail ({', '.join(INPUT_RAILS)}) under {root}; "
                    f"rails found: {', '.join(rails) or 'none'}"
                )
        if rail not in rails:
            raise PowerError(
                f"jetson: no rail {rail!r} under {root}; rails found: {', '.join(rails) or 'none'}"
            )
        self._files = rails[rail]
        board = rail in INPUT_RAILS
        self._info = SourceInfo(
            name=f"jetson:{rail}",
            kind="power",
            covers=f"whole board ({rail} input rail)" if board else f"{rail} rail only",
            scope=Scope.BOARD if board else Scope.COMPONENT,
        )
        self.read()

    @property
    def info(self) -> SourceInfo:
        return self._info

    def read(self) -> float:
        name = self._info.name
        if len(self._files) == 2:
            millivolts = read_sysfs_int(self._files[0], name)
            milliamps = read_sysfs_int(self._files[1], name)
            return millivolts * milliamps * 1e-6
        return read_sysfs_int(self._files[0], name) * 1e-3

    def close(self) -> None:
        pass
