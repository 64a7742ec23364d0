"""A stand-in for the `pynvml` module: the functions edgeperf's NVML wrapper calls, over scripted GPUs.

Pass an instance to `Nvml.open(module=...)`. Values are in NVML's own units (milliwatts, millijoules,
percent, bytes), so the wrapper's unit conversions are exercised. A GPU can be told that a reading is
not supported (NVML_ERROR_NOT_SUPPORTED) or fails outright.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

NOT_SUPPORTED = 3
UNKNOWN = 999


class FakeNVMLError(Exception):
    """Like pynvml.NVMLError: carries the NVML return code in `value`."""

    def __init__(self, value: int) -> None:
        super().__init__(f"fake NVML error {value}")
        self.value = value


@dataclass
class FakeGpu:
    name: str = "NVIDIA H200"
    uuid: str = "GPU-00000000-1111-2222-3333-444444444444"
    memory_total: int = 150_000_000_000
    memory_used: int = 1_000_000_000
    utilization_percent: int = 37
    power_mw: int = 123_456
    power_limit_mw: int = 700_000
    energy_mj: int = 5_000_000
    unsupported: set[str] = field(default_factory=set)
    """Readings that raise NOT_SUPPORTED: "power", "energy", "utilization", "power_limit"."""
    failing: set[str] = field(default_factory=set)
    """Readings that raise another NVML error."""


class FakePynvml:
    """The subset of pynvml's module interface that server/gpu/nvml.py uses."""

    NVMLError = FakeNVMLError

    def __init__(self, gpus: list[FakeGpu], *, driver: str = "570.86.15", init_fails: bool = False) -> None:
        self.gpus = gpus
        self.driver = driver
        self.init_fails = init_fails
        self.initialised = 0
        self.shutdowns = 0

    def _check(self, gpu: FakeGpu, reading: str) -> None:
        if reading in gpu.unsupported:
            raise FakeNVMLError(NOT_SUPPORTED)
        if reading in gpu.failing:
            raise FakeNVMLError(UNKNOWN)

    def nvmlInit(self) -> None:
        if self.init_fails:
            raise FakeNVMLError(12)  # NVML_ERROR_LIBRARY_NOT_FOUND
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self) -> bytes:
        return self.driver.encode()  # NOTE: old pynvml returns bytes; the wrapper must decode

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        if not 0 <= index < len(self.gpus):
            raise FakeNVMLError(2)  # NVML_ERROR_INVALID_ARGUMENT
        return self.gpus[index]

    def nvmlDeviceGetName(self, gpu: FakeGpu) -> str:
        return gpu.name

    def nvmlDeviceGetUUID(self, gpu: FakeGpu) -> str:
        return gpu.uuid

    def nvmlDeviceGetMemoryInfo(self, gpu: FakeGpu) -> Any:
        return SimpleNamespace(
            total=gpu.memory_total, used=gpu.memory_used, free=gpu.memory_total - gpu.memory_used
        )

    def nvmlDeviceGetUtilizationRates(self, gpu: FakeGpu) -> Any:
        self._check(gpu, "utilization")
        return SimpleNamespace(gpu=gpu.utilization_percent, memory=0)

    def nvmlDeviceGetPowerUsage(self, gpu: FakeGpu) -> int:
        self._check(gpu, "power")
        return gpu.power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, gpu: FakeGpu) -> int:
        self._check(gpu, "power_limit")
        return gpu.power_limit_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, gpu: FakeGpu) -> int:
        self._check(gpu, "energy")
        return gpu.energy_mj
