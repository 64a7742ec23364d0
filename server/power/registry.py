"""`serve --power SPEC`: which sources to open, or what this machine has (`auto`, the default).

    SPEC    = ITEM[,ITEM...]        "auto" (detect), "none" (no power measurement)
    ITEM    = rapl[=ROOT]           powercap RAPL package and dram zones (ROOT default /sys/class/powercap)
            | hwmon[=ROOT]          every hwmon power/energy channel (ROOT default /sys/class/hwmon)
            | jetson[:RAIL][=ROOT]  an INA3221 rail, default the board input (ROOT default /sys/bus/i2c/drivers)
            | nvml[:INDEX]          NVIDIA GPUs (all, or one)
            | scpi=RESOURCE[@BACKEND][;query=COMMAND]   a wall meter; must be the last item (it may hold commas)

A named source that cannot be opened is an error (the message says why: no such file, permission, no
driver). Detection skips what it cannot open and says why in `skipped`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeperf.server.power import hwmon, jetson, rapl
from edgeperf.server.power.base import PowerError, PowerSource

__all__ = ["PowerItem", "detect_sources", "open_sources", "parse_power_spec"]

KINDS = ("rapl", "hwmon", "jetson", "nvml", "scpi")


@dataclass(frozen=True, slots=True)
class PowerItem:
    kind: str
    select: str | None = None
    """jetson: the rail; nvml: the GPU index."""
    arg: str | None = None
    """sysfs root for rapl/hwmon/jetson, the VISA target for scpi."""


def parse_power_spec(spec: str) -> list[PowerItem] | None:
    """The items of SPEC; None for "auto". Raises PowerError naming the bad item."""
    text = spec.strip()
    if text == "auto":
        return None
    if text == "none":
        return []
    items: list[PowerItem] = []
    rest = text
    while rest:
        if rest.startswith("scpi="):
            head, rest = rest, ""
        else:
            head, _, rest = rest.partition(",")
        head = head.strip()
        name, eq, arg = head.partition("=")
        kind, colon, select = name.partition(":")
        if kind not in KINDS:
            raise PowerError(
                f"--power {spec!r}: unknown source {kind!r}; known: {', '.join(KINDS)}, auto, none"
            )
        if colon and kind not in ("jetson", "nvml"):
            raise PowerError(f"--power {spec!r}: {kind} takes no ':SELECT' part")
        if kind == "nvml" and colon and not select.isdigit():
            raise PowerError(f"--power {spec!r}: nvml:INDEX needs a GPU index, got {select!r}")
        if kind == "nvml" and eq:
            raise PowerError(f"--power {spec!r}: nvml takes no '=' part")
        if kind == "scpi" and not arg:
            raise PowerError(f"--power {spec!r}: scpi needs =RESOURCE (e.g. scpi=TCPIP::10.0.0.5::INSTR)")
        if eq and not arg:
            raise PowerError(f"--power {spec!r}: {kind}= needs a value")
        items.append(PowerItem(kind, select or None, arg or None))
    if not items:
        raise PowerError(f"--power {spec!r}: no source named")
    return items


@dataclass(frozen=True, slots=True)
class _SysfsTree:
    """A sysfs tree that holds one source per file or folder that `find` lists."""

    default_root: Path
    find: Callable[[Path], list[Path]]
    source: Callable[[Path], PowerSource]
    what: str
    """What `find` looks for, for the error when it finds nothing."""


_SYSFS_TREES = {
    "rapl": _SysfsTree(
        rapl.DEFAULT_ROOT, rapl.find_zones, rapl.RaplZone, "package or dram zone with energy_uj"
    ),
    "hwmon": _SysfsTree(
        hwmon.DEFAULT_ROOT, hwmon.find_channels, hwmon.HwmonChannel, "power*_input or energy*_input channel"
    ),
}


def _open_item(item: PowerItem, nvml_module: Any | None) -> list[PowerSource]:
    match item.kind:
        case "rapl" | "hwmon":
            tree = _SYSFS_TREES[item.kind]
            root = Path(item.arg) if item.arg else tree.default_root
            paths = tree.find(root)
            if not paths:
                raise PowerError(f"{item.kind}: no {tree.what} under {root}")
            return [tree.source(path) for path in paths]
        case "jetson":
            return [jetson.JetsonRail(item.select, Path(item.arg) if item.arg else jetson.DEFAULT_ROOT)]
        case "nvml":
            from edgeperf.server.power.nvml import open_gpus

            return list(open_gpus(None if item.select is None else int(item.select), module=nvml_module))
        case "scpi":
            from edgeperf.server.power.scpi import ScpiMeter

            assert item.arg is not None
            return [ScpiMeter(item.arg)]
    raise PowerError(f"unknown power source {item.kind!r}")


def _close_all(sources: Sequence[PowerSource]) -> None:
    for source in sources:
        source.close()


def open_sources(items: Sequence[PowerItem], *, nvml_module: Any | None = None) -> list[PowerSource]:
    """Open every item (a source each, or one per zone/channel/GPU). Raises PowerError; nothing stays open."""
    sources: list[PowerSource] = []
    try:
        for item in items:
            sources += _open_item(item, nvml_module)
    except BaseException:
        _close_all(sources)
        raise
    names = [s.info.name for s in sources]
    if len(set(names)) != len(names):
        _close_all(sources)
        raise PowerError(f"--power: a source is named twice: {', '.join(names)}")
    return sources


def detect_sources(
    *,
    roots: dict[str, Path] | None = None,
    nvml_module: Any | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[list[PowerSource], list[str]]:
    """What this machine has: every source that opens, and why each other one was skipped.

    `roots` replaces the sysfs roots by kind ("rapl", "hwmon", "jetson") for tests.
    """
    roots = roots or {}
    sources: list[PowerSource] = []
    skipped: list[str] = []
    for kind in ("rapl", "hwmon", "jetson", "nvml"):
        root = roots.get(kind)
        try:
            sources += _open_item(PowerItem(kind, None, None if root is None else str(root)), nvml_module)
        except PowerError as err:
            skipped.append(str(err))
            if log is not None:
                log(str(err))
    return sources, skipped
