"""Linux powercap RAPL: `/sys/class/powercap/intel-rapl:*/energy_uj`, CPU package and DRAM zones.

Each zone has `name` ("package-0", "dram", "core", "uncore", "psys"), `energy_uj` (a counter in µJ) and
`max_energy_range_uj` (where the counter wraps back to 0). Package zones cover the CPU package only
(cores, caches, memory controller), dram zones the memory DIMMs; neither sees GPUs, disks, fans or the
power supply. AMD processors expose the same interface (zone names "package-N").
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from edgeperf.server.power.base import PowerError, Scope, SourceInfo, SysfsSource, read_sysfs_int

__all__ = ["DEFAULT_ROOT", "RaplZone", "find_zones"]

DEFAULT_ROOT: Final = Path("/sys/class/powercap")
_COVERS: Final = {"package": "CPU package only", "dram": "DRAM only"}


def _zone_kind(name: str) -> str | None:
    if name.startswith("package"):
        return "package"
    if name == "dram":
        return "dram"
    return None


class RaplZone(SysfsSource):
    """One RAPL zone's energy counter, wrap-around handled."""

    def __init__(self, zone_dir: Path) -> None:
        try:
            name = (zone_dir / "name").read_text(encoding="ascii").strip()
        except OSError as err:
            raise PowerError(f"rapl: {zone_dir / 'name'}: cannot read: {err.strerror or err}") from None
        kind = _zone_kind(name)
        if kind is None:
            raise PowerError(f"rapl: {zone_dir}: zone {name!r} is neither a package nor dram")
        # NOTE: nested zones ("intel-rapl:0:2" dram under package 0) repeat their parent's index in the
        # folder name, which keeps two sockets' dram zones apart.
        info = SourceInfo(
            name=f"rapl:{name}" if name != "dram" else f"rapl:dram-{zone_dir.name.split(':')[1]}",
            kind="energy",
            covers=_COVERS[kind],
            scope=Scope.COMPONENT,
        )
        max_range = read_sysfs_int(zone_dir / "max_energy_range_uj", info.name)
        super().__init__(info, max_range)
        self._energy = zone_dir / "energy_uj"
        self.read()  # NOTE: fails now (permission, missing file) rather than in the middle of a run

    def read(self) -> float:
        return self._joules(read_sysfs_int(self._energy, self.info.name))


def find_zones(root: Path = DEFAULT_ROOT) -> list[Path]:
    """The package and dram zone folders under `root`, in name order (none when powercap is absent)."""
    zones: list[Path] = []
    if not root.is_dir():
        return zones
    for zone in sorted(root.glob("intel-rapl:*")):
        try:
            name = (zone / "name").read_text(encoding="ascii").strip()
        except OSError:
            continue
        if _zone_kind(name) is not None and (zone / "energy_uj").exists():
            zones.append(zone)
    return zones
