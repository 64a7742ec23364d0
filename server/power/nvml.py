"""NVIDIA GPUs through NVML (edgeperf.server.gpu.nvml): the energy counter where the GPU has one (Volta
and newer), else board power samples. Covers the GPU board only (its memory, VRMs and fan included), not
the host.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from edgeperf.server.gpu.nvml import Nvml, NvmlError, NvmlUnavailable
from edgeperf.server.power.base import EnergyCounter, PowerError, Scope, SourceInfo

__all__ = ["NvmlPower", "open_gpus"]


class NvmlPower:
    """One GPU. The `Nvml` session is shared between GPUs; `open_gpus` closes it with the last one."""

    def __init__(self, nvml: Nvml, index: int, on_close: Callable[[], None] | None = None) -> None:
        self._nvml = nvml
        self._index = index
        self._on_close = on_close
        try:
            name = nvml.device(index).name
            energy = nvml.energy_j(index)
            power = None if energy is not None else nvml.power_w(index)
        except NvmlError as err:
            raise PowerError(f"nvml:{index}: {err}") from None
        if energy is None and power is None:
            raise PowerError(f"nvml:{index}: {name} reports neither an energy counter nor power")
        self._energy = energy is not None
        # NOTE: NVML's counter is in mJ since the driver loaded; a driver reload restarts it (a reset).
        self._counter = EnergyCounter(1e-3)
        self._lock = threading.Lock()
        self._info = SourceInfo(
            name=f"nvml:{index}",
            kind="energy" if self._energy else "power",
            covers=f"GPU {index} board only ({name})",
            scope=Scope.COMPONENT,
        )
        self.read()

    @property
    def info(self) -> SourceInfo:
        return self._info

    def read(self) -> float:
        try:
            if self._energy:
                joules = self._nvml.energy_j(self._index)
                if joules is None:
                    raise PowerError(f"{self._info.name}: the energy counter stopped answering")
                with self._lock:
                    return self._counter.update(round(joules * 1000))
            watts = self._nvml.power_w(self._index)
        except NvmlError as err:
            raise PowerError(f"{self._info.name}: {err}") from None
        if watts is None:
            raise PowerError(f"{self._info.name}: power stopped answering")
        return watts

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()


def open_gpus(index: int | None = None, module: Any | None = None) -> list[NvmlPower]:
    """A source per GPU (or only GPU `index`); `module` replaces pynvml (tests).

    Raises:
        PowerError: NVML unavailable (no nvidia-ml-py, driver or GPU), or a GPU without power readings.
    """
    try:
        nvml = Nvml.open(module)
        count = nvml.device_count()
    except (NvmlUnavailable, NvmlError) as err:
        raise PowerError(f"nvml: {err}") from None
    indices = list(range(count)) if index is None else [index]
    if index is not None and not 0 <= index < count:
        nvml.close()
        raise PowerError(f"nvml:{index}: no such GPU ({count} found)")
    closer = _Closer(nvml, len(indices))
    sources: list[NvmlPower] = []
    try:
        for i in indices:
            sources.append(NvmlPower(nvml, i, closer))
    except PowerError:
        nvml.close()
        raise
    return sources


class _Closer:
    """Shuts NVML down once every GPU source sharing it was closed."""

    def __init__(self, nvml: Nvml, users: int) -> None:
        self._nvml = nvml
        self._left = users
        self._mutex = threading.Lock()

    def __call__(self) -> None:
        with self._mutex:
            self._left -= 1
            done = self._left == 0
        if done:
            self._nvml.close()
