"""Triton's GPU metrics from NVML, rendered into the Prometheus text the metrics port serves.

Names, labels and units are Triton's (docs/user_guide/metrics.md, "GPU Metrics"), one series per GPU
labelled `gpu_uuid`:

    nv_gpu_utilization          gauge    0.0-1.0
    nv_gpu_memory_total_bytes   gauge    bytes
    nv_gpu_memory_used_bytes    gauge    bytes
    nv_gpu_power_usage          gauge    watts
    nv_gpu_power_limit          gauge    watts
    nv_energy_consumption       counter  joules since this server started

NVML is read at scrape time (Triton samples on an interval; a scrape every few seconds costs a few NVML
calls). A reading the GPU does not support is left out of that series rather than written as 0. When
NVML is not there (`gpu_metrics_or_none`), the metrics port simply has no GPU section.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Final

from edgeperf.server.gpu.nvml import GpuSample, Nvml, NvmlError, NvmlUnavailable

__all__ = ["GpuMetrics", "gpu_metrics_or_none"]

_log = logging.getLogger(__name__)

# (name, type, help, reading) in Triton's order.
_SERIES: Final[tuple[tuple[str, str, str, Callable[[GpuSample, float | None], float | None]], ...]] = (
    ("nv_gpu_utilization", "gauge", "GPU utilization rate [0.0 - 1.0)", lambda s, _: s.utilization),
    ("nv_gpu_memory_total_bytes", "gauge", "GPU total memory, in bytes", lambda s, _: s.memory_total_bytes),
    ("nv_gpu_memory_used_bytes", "gauge", "GPU used memory, in bytes", lambda s, _: s.memory_used_bytes),
    ("nv_gpu_power_usage", "gauge", "GPU power usage in watts", lambda s, _: s.power_w),
    ("nv_gpu_power_limit", "gauge", "GPU power management limit in watts", lambda s, _: s.power_limit_w),
    (
        "nv_energy_consumption",
        "counter",
        "GPU energy consumption in joules since the server started",
        lambda s, start: None if s.energy_j is None or start is None else max(s.energy_j - start, 0.0),
    ),
)


def _uuid_label(uuid: str) -> str:
    escaped = uuid.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'gpu_uuid="{escaped}"'


class GpuMetrics:
    """Renders the GPU series of every GPU NVML sees. Thread-safe (scrapes run on HTTP threads)."""

    def __init__(self, nvml: Nvml) -> None:
        self._nvml = nvml
        self._lock = threading.Lock()
        self._count = nvml.device_count()
        # NOTE: NVML's energy counter starts when the driver loads; Triton reports it since its own start.
        self._energy_start = [nvml.energy_j(i) for i in range(self._count)]
        self._warned = False

    @property
    def gpu_count(self) -> int:
        return self._count

    def render(self) -> str:
        """The Prometheus text of the GPU series ('' when no GPU could be read)."""
        with self._lock:
            samples: list[GpuSample] = []
            for index in range(self._count):
                try:
                    samples.append(self._nvml.sample(index))
                except NvmlError as exc:
                    if not self._warned:  # NOTE: once; a scrape every few seconds would flood the log
                        _log.warning("GPU metrics: %s; leaving that GPU out of the scrape", exc)
                        self._warned = True
        if not samples:
            return ""
        lines: list[str] = []
        for name, kind, help_text, reading in _SERIES:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
            for sample in samples:
                value = reading(sample, self._energy_start[sample.index])
                if value is not None:
                    lines.append(f"{name}{{{_uuid_label(sample.uuid)}}} {float(value):.6f}")
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self._nvml.close()


def gpu_metrics_or_none(module: Any | None = None) -> GpuMetrics | None:
    """GpuMetrics over NVML, or None (logged at INFO) when NVML or a GPU is not there.

    `module` replaces pynvml (tests pass a fake).
    """
    try:
        nvml = Nvml.open(module)
    except NvmlUnavailable as exc:
        _log.info("no GPU metrics: %s", exc)
        return None
    try:
        metrics = GpuMetrics(nvml)
    except NvmlError as exc:
        _log.warning("no GPU metrics: %s", exc)
        nvml.close()
        return None
    if metrics.gpu_count == 0:
        _log.info("no GPU metrics: NVML sees no GPU")
        nvml.close()
        return None
    return metrics
