"""A small wrapper over NVML (`nvidia-ml-py`, module `pynvml`), loaded lazily, replaceable by a fake in tests.

Only what edgeperf reads: the driver version, each GPU's name, UUID and memory, and per-GPU samples of
utilisation, memory use, power, power limit and the energy counter. Units are converted here once, to
the units Triton's metrics use (INFERENCE_PROTOCOL.md §12): bytes, watts, joules, utilisation 0.0-1.0.

    nvml = Nvml.open()            # imports pynvml and calls nvmlInit; NvmlUnavailable when it cannot
    for gpu in nvml.devices(): ...
    nvml.sample(0).power_w
    nvml.close()                  # nvmlShutdown, once

`Nvml.open(module=fake)` takes any object with pynvml's function names (tests/server/fake_nvml.py); this
is how tests without a GPU exercise the metrics and the system description. Readings a GPU does not
support (NVML_ERROR_NOT_SUPPORTED, e.g. power on some boards) come back as None rather than failing the
whole sample; any other NVML error raises NvmlError naming the GPU and the reading.

pynvml is imported only by `Nvml.open()` without a module, so the CPU install (no nvidia-ml-py) never
imports it. NVML's functions are thread-safe; `close()` is guarded so it runs nvmlShutdown once.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["GpuInfo", "GpuSample", "Nvml", "NvmlError", "NvmlUnavailable", "describe_gpus", "load_pynvml"]

T = TypeVar("T")

_NOT_SUPPORTED = 3
"""NVML_ERROR_NOT_SUPPORTED: the reading does not exist on this GPU (the value is stable across NVML versions)."""


class NvmlUnavailable(RuntimeError):
    """NVML cannot be used here: nvidia-ml-py is not installed, or there is no NVIDIA driver or GPU."""


class NvmlError(RuntimeError):
    """An NVML call failed for another reason than "not supported"."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuInfo:
    """What a GPU is (does not change while the server runs)."""

    index: int
    """NVML's index, which is CUDA's device id when CUDA_VISIBLE_DEVICES is unset."""
    name: str
    """e.g. "NVIDIA H200"."""
    uuid: str
    """e.g. "GPU-5a7c...": Triton's `gpu_uuid` metric label."""
    memory_total_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuSample:
    """One reading of a GPU's counters; None where the GPU does not report it."""

    index: int
    uuid: str
    utilization: float | None
    """Fraction of the last sample period in which a kernel ran, 0.0-1.0."""
    memory_total_bytes: int
    memory_used_bytes: int
    power_w: float | None
    """Instantaneous board power."""
    power_limit_w: float | None
    """The enforced power limit."""
    energy_j: float | None
    """Energy counter since the driver was loaded (Volta and newer)."""


def load_pynvml() -> Any:
    """Import `pynvml` (package nvidia-ml-py).

    Raises:
        NvmlUnavailable: it is not installed; the message says which extra provides it.
    """
    try:
        return importlib.import_module("pynvml")
    except ImportError as exc:
        raise NvmlUnavailable(
            "NVML needs the nvidia-ml-py package (module pynvml): pip install 'edgeperf[gpu]'"
        ) from exc


def _text(value: Any) -> str:
    # NOTE: older nvidia-ml-py versions return bytes for names and UUIDs, newer ones str.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class Nvml:
    """An initialised NVML session. Build it with `Nvml.open()`; call `close()` once done."""

    def __init__(self, module: Any) -> None:
        self._nv = module
        self._lock = threading.Lock()
        self._closed = False
        self._handles: dict[int, Any] = {}

    @classmethod
    def open(cls, module: Any | None = None) -> Nvml:
        """Initialise NVML through `module` (default: the real pynvml, imported now).

        Raises:
            NvmlUnavailable: pynvml missing, or nvmlInit failed (no driver, no GPU, library not found).
        """
        nv = load_pynvml() if module is None else module
        try:
            nv.nvmlInit()
        except Exception as exc:  # NOTE: pynvml raises NVMLError subclasses, a fake may raise anything
            raise NvmlUnavailable(f"NVML cannot start (no NVIDIA driver or GPU here?): {exc}") from exc
        return cls(nv)

    def close(self) -> None:
        """Shut NVML down; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._handles.clear()
        # NOTE: nothing useful to do when shutdown fails at exit
        with contextlib.suppress(Exception):
            self._nv.nvmlShutdown()

    def _call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise NvmlError(f"NVML is closed ({what})")
        try:
            return fn(*args)
        except Exception as exc:
            raise NvmlError(f"NVML {what}: {exc}") from exc

    def _optional(self, what: str, fn: Callable[..., T], *args: Any) -> T | None:
        try:
            return fn(*args)
        except Exception as exc:
            if getattr(exc, "value", None) == _NOT_SUPPORTED:
                return None
            raise NvmlError(f"NVML {what}: {exc}") from exc

    def _handle(self, index: int) -> Any:
        handle = self._handles.get(index)
        if handle is None:
            handle = self._call(f"GPU {index} handle", self._nv.nvmlDeviceGetHandleByIndex, index)
            self._handles[index] = handle
        return handle

    def driver_version(self) -> str:
        return _text(self._call("driver version", self._nv.nvmlSystemGetDriverVersion))

    def device_count(self) -> int:
        return int(self._call("device count", self._nv.nvmlDeviceGetCount))

    def device(self, index: int) -> GpuInfo:
        """Name, UUID and total memory of GPU `index`.

        Raises:
            NvmlError: no such GPU, or NVML failed.
        """
        handle = self._handle(index)
        memory = self._call(f"GPU {index} memory", self._nv.nvmlDeviceGetMemoryInfo, handle)
        return GpuInfo(
            index=index,
            name=_text(self._call(f"GPU {index} name", self._nv.nvmlDeviceGetName, handle)),
            uuid=_text(self._call(f"GPU {index} uuid", self._nv.nvmlDeviceGetUUID, handle)),
            memory_total_bytes=int(memory.total),
        )

    def devices(self) -> list[GpuInfo]:
        return [self.device(i) for i in range(self.device_count())]

    def power_w(self, index: int) -> float | None:
        """Instantaneous board power of GPU `index` in watts; None when the GPU does not report it."""
        mw = self._optional(f"GPU {index} power", self._nv.nvmlDeviceGetPowerUsage, self._handle(index))
        return None if mw is None else mw / 1000.0

    def energy_j(self, index: int) -> float | None:
        """GPU `index`'s energy counter since the driver loaded, in joules; None when not reported."""
        mj = self._optional(
            f"GPU {index} energy", self._nv.nvmlDeviceGetTotalEnergyConsumption, self._handle(index)
        )
        return None if mj is None else mj / 1000.0

    def sample(self, index: int) -> GpuSample:
        """Every counter of GPU `index` now.

        Raises:
            NvmlError: a reading failed for another reason than "not supported".
        """
        handle = self._handle(index)
        uuid = _text(self._call(f"GPU {index} uuid", self._nv.nvmlDeviceGetUUID, handle))
        memory = self._call(f"GPU {index} memory", self._nv.nvmlDeviceGetMemoryInfo, handle)
        rates = self._optional(f"GPU {index} utilization", self._nv.nvmlDeviceGetUtilizationRates, handle)
        limit_mw = self._optional(
            f"GPU {index} power limit", self._nv.nvmlDeviceGetEnforcedPowerLimit, handle
        )
        return GpuSample(
            index=index,
            uuid=uuid,
            utilization=None if rates is None else rates.gpu / 100.0,
            memory_total_bytes=int(memory.total),
            memory_used_bytes=int(memory.used),
            power_w=self.power_w(index),
            power_limit_w=None if limit_mw is None else limit_mw / 1000.0,
            energy_j=self.energy_j(index),
        )


def describe_gpus(module: Any | None = None) -> list[tuple[GpuInfo, str]]:
    """Every GPU NVML sees, with the driver version; [] without nvidia-ml-py, a driver or a GPU.

    Opens and closes its own NVML session (NVML counts nvmlInit/nvmlShutdown pairs, so this does not
    disturb another open session). `module` replaces pynvml (tests pass a fake).
    """
    try:
        nvml = Nvml.open(module)
    except NvmlUnavailable:
        return []
    try:
        driver = nvml.driver_version()
        return [(gpu, driver) for gpu in nvml.devices()]
    except NvmlError:
        return []
    finally:
        nvml.close()
