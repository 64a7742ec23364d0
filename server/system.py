"""What this machine is: host, OS, CPU, memory, accelerators, ONNX Runtime build, power sources.

Plain facts gathered from /proc, the OS, NVML and ONNX Runtime, with no gRPC or protobuf in sight;
server/metadata_converters.py turns them into the SystemDescription message.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import onnxruntime

from edgeperf.server.gpu.nvml import describe_gpus
from edgeperf.server.power.base import SourceInfo

__all__ = ["Accelerator", "SystemFacts", "describe_system", "server_version"]


def server_version() -> str:
    """The installed edgeperf distribution's version; "0+unknown" when it is not installed."""
    try:
        return metadata.version("edgeperf")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class Accelerator:
    """A GPU NVML sees, or an ONNX Runtime execution provider other than the CPU one."""

    name: str
    kind: str
    """"gpu" or "execution-provider"."""
    memory_bytes: int = 0
    """Total device memory; 0 where unknown (execution providers)."""
    driver_version: str = ""
    uuid: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemFacts:
    host_name: str
    os: str
    """System and release, e.g. "Linux 6.8.0"."""
    cpu_model: str
    cpu_cores: int
    memory_bytes: int
    """Physical memory; 0 where the OS does not say."""
    accelerators: tuple[Accelerator, ...]
    onnxruntime_version: str
    onnxruntime_providers: tuple[str, ...]
    edgeperf_version: str
    python_version: str
    machine: str
    power_sources: tuple[SourceInfo, ...]
    """The sources MeasurePower reads."""


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def describe_system(
    edgeperf_version: str, nvml_module: Any | None = None, power_sources: Sequence[SourceInfo] = ()
) -> SystemFacts:
    """Gather the facts; blocking (files, NVML), so the server calls it on a thread.

    Args:
        edgeperf_version: the version to report (`server_version()`).
        nvml_module: replaces pynvml (tests pass a fake); GPUs are listed only when NVML answers.
        power_sources: the sources MeasurePower reads.
    """
    providers = tuple(onnxruntime.get_available_providers())
    gpus = [
        Accelerator(
            name=gpu.name,
            kind="gpu",
            memory_bytes=gpu.memory_total_bytes,
            driver_version=driver,
            uuid=gpu.uuid,
        )
        for gpu, driver in describe_gpus(nvml_module)
    ]
    providers_in_use = [
        Accelerator(name=provider.removesuffix("ExecutionProvider"), kind="execution-provider")
        for provider in providers
        if provider != "CPUExecutionProvider"
    ]
    return SystemFacts(
        host_name=socket.gethostname(),
        os=f"{platform.system()} {platform.release()}",
        cpu_model=_cpu_model(),
        cpu_cores=os.cpu_count() or 0,
        memory_bytes=_memory_bytes(),
        accelerators=(*gpus, *providers_in_use),
        onnxruntime_version=onnxruntime.__version__,
        onnxruntime_providers=providers,
        edgeperf_version=edgeperf_version,
        python_version=sys.version.split()[0],
        machine=platform.machine(),
        power_sources=tuple(power_sources),
    )
