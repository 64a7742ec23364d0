"""Power and energy on the device: one small adapter per source, a window sampler over them.

Sources (`open_sources` parses `serve --power SOURCE[,SOURCE]`; `detect_sources` finds what this machine
has): Linux powercap RAPL (`rapl`), hwmon power/energy channels (`hwmon`), Jetson INA3221 rails
(`jetson`), NVIDIA GPUs through NVML (`nvml`) and an external wall meter over SCPI/VISA (`scpi`).
Every source says what it covers (`SourceInfo.covers`, `.scope`), so a reading is never mistaken for more
than it measures: RAPL is the CPU package, a wall meter the whole system at the wall.
"""

from edgeperf.server.power.base import PowerError, PowerSource, Scope, SourceInfo
from edgeperf.server.power.registry import detect_sources, open_sources, parse_power_spec
from edgeperf.server.power.window import PowerWindow, SourceTotal, WindowResult

__all__ = [
    "PowerError",
    "PowerSource",
    "PowerWindow",
    "Scope",
    "SourceInfo",
    "SourceTotal",
    "WindowResult",
    "detect_sources",
    "open_sources",
    "parse_power_spec",
]
