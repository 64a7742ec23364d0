"""Per-model statistics with Triton's semantics, and the observer hook Prometheus metrics subscribe to.

Semantics (INFERENCE_PROTOCOL.md §8): success/fail/queue/compute_* count **requests**; a request in a batch is
charged the batch's full compute durations. `batch_stats` counts **executions** per batch size;
`inference_count` is weighted by batch size; `execution_count` counts executions. Queue and compute
durations are recorded for successful requests only, so their counts agree (perf_analyzer requires equal
compute counts).

For S2 (server/metrics.py): implement `StatsObserver` and pass it as `InferenceCore(..., observer=obs)`.
The core calls it on the event loop thread, after every request (`on_request_done`) and every execution
(`on_batch`); queue depth is `InferenceCore.queue_depth(name, version)`. Observer methods must not block.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from edgeperf.server.types import NO_TIMINGS, ServerTimings

__all__ = [
    "BatchStatistics",
    "ComputeStatistics",
    "Duration",
    "InferStatistics",
    "ModelStatistics",
    "StatsObserver",
    "StatsRecorder",
    "wall_clock_ms",
]


_log = logging.getLogger(__name__)


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch.

    NOTE: the only wall-clock reading in the server: Triton's `last_inference` is defined as a wall time.
    Durations everywhere else use the monotonic clock.
    """
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Duration:
    """Triton's StatisticDuration: how many and how long in total."""

    count: int = 0
    ns: int = 0

    def plus(self, ns: int) -> Duration:
        return Duration(self.count + 1, self.ns + ns)


@dataclass(frozen=True, slots=True, kw_only=True)
class ComputeStatistics:
    """The three compute phases Triton times, counted per request and per execution alike."""

    compute_input: Duration = Duration()
    compute_infer: Duration = Duration()
    compute_output: Duration = Duration()


@dataclass(frozen=True, slots=True, kw_only=True)
class InferStatistics(ComputeStatistics):
    """Per-request cumulative durations (Triton's InferStatistics)."""

    success: Duration = Duration()
    fail: Duration = Duration()
    queue: Duration = Duration()


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchStatistics(ComputeStatistics):
    """Per-execution cumulative durations for one batch size (Triton's InferBatchStatistics)."""

    batch_size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelStatistics:
    """A snapshot of one model version's statistics (Triton's ModelStatistics)."""

    name: str
    version: str
    last_inference_ms: int
    """Wall time of the last inference, ms since the epoch; 0 if none yet."""
    inference_count: int
    execution_count: int
    inference_stats: InferStatistics
    batch_stats: tuple[BatchStatistics, ...]
    """Sorted by batch size."""


class StatsObserver(Protocol):
    """Hook for metrics exporters. Called on the event loop thread; must return quickly."""

    def on_request_done(
        self,
        model: str,
        version: str,
        *,
        success: bool,
        reason: str,
        timings: ServerTimings,
        request_ns: int,
    ) -> None:
        """One request finished. `reason` is "" on success, else REJECTED, CANCELED, BACKEND or OTHER;
        `timings` is NO_TIMINGS for a request that failed."""
        ...

    def on_batch(self, model: str, version: str, batch_size: int) -> None:
        """One execution of `batch_size` samples (sum of the batch's request batch sizes) succeeded."""
        ...


class _Acc:
    """A mutable (count, ns) pair for failures; snapshots turn it into a Duration."""

    __slots__ = ("count", "ns")

    def __init__(self) -> None:
        self.count = 0
        self.ns = 0

    def add(self, ns: int) -> None:
        self.count += 1
        self.ns += ns

    def frozen(self) -> Duration:
        return Duration(self.count, self.ns)


class _Sums:
    """Sums of one count of events: every duration Triton keeps for them shares that count.

    NOTE: plain attributes added in place, no call per duration: this runs for every request.
    """

    __slots__ = ("count", "infer_ns", "input_ns", "output_ns", "queue_ns", "request_ns")

    def __init__(self) -> None:
        self.count = self.request_ns = self.queue_ns = self.input_ns = self.infer_ns = self.output_ns = 0

    def compute(self) -> dict[str, Duration]:
        return {
            "compute_input": Duration(self.count, self.input_ns),
            "compute_infer": Duration(self.count, self.infer_ns),
            "compute_output": Duration(self.count, self.output_ns),
        }


@dataclass(slots=True)
class StatsRecorder:
    """Mutable accumulator for one model version; used only from the event loop thread."""

    name: str
    version: str
    observer: StatsObserver | None = None
    wall_ms: Callable[[], int] = wall_clock_ms
    _last_inference_ms: int = 0
    _inference_count: int = 0
    _execution_count: int = 0
    _answered: _Sums = field(default_factory=_Sums)
    """Successful requests: success, queue and compute durations, all counted once per request."""
    _fail: _Acc = field(default_factory=_Acc)
    _batches: dict[int, _Sums] = field(default_factory=dict)
    """Executions by batch size: their compute durations."""

    def record_execution(
        self, batch_size: int, compute_input_ns: int, compute_infer_ns: int, compute_output_ns: int
    ) -> None:
        """One successful execution of `batch_size` samples."""
        acc = self._batches.get(batch_size)
        if acc is None:
            acc = self._batches[batch_size] = _Sums()
        acc.count += 1
        acc.input_ns += compute_input_ns
        acc.infer_ns += compute_infer_ns
        acc.output_ns += compute_output_ns
        self._execution_count += 1
        self._inference_count += batch_size
        self._last_inference_ms = self.wall_ms()
        if self.observer is not None:
            try:
                self.observer.on_batch(self.name, self.version, batch_size)
            except Exception:  # NOTE: metrics must never fail an inference.
                _log.exception("statistics observer failed in on_batch")

    def record_success(self, *, request_ns: int, timings: ServerTimings) -> None:
        """A request answered successfully; its compute durations are its batch's."""
        acc = self._answered
        acc.count += 1
        acc.request_ns += request_ns
        acc.queue_ns += timings.queue_ns
        acc.input_ns += timings.compute_input_ns
        acc.infer_ns += timings.compute_infer_ns
        acc.output_ns += timings.compute_output_ns
        if self.observer is not None:
            self._observe(True, "", timings, request_ns)

    def record_failure(self, *, request_ns: int, reason: str) -> None:
        """A request failed (rejected, timed out, runtime error, cancelled)."""
        self._fail.add(request_ns)
        self._observe(False, reason, NO_TIMINGS, request_ns)

    def _observe(self, success: bool, reason: str, timings: ServerTimings, request_ns: int) -> None:
        if self.observer is None:
            return
        try:
            self.observer.on_request_done(
                self.name,
                self.version,
                success=success,
                reason=reason,
                timings=timings,
                request_ns=request_ns,
            )
        except Exception:  # NOTE: metrics must never fail an inference.
            _log.exception("statistics observer failed in on_request_done")

    def snapshot(self) -> ModelStatistics:
        """An immutable copy of the current values."""
        answered = self._answered
        return ModelStatistics(
            name=self.name,
            version=self.version,
            last_inference_ms=self._last_inference_ms,
            inference_count=self._inference_count,
            execution_count=self._execution_count,
            inference_stats=InferStatistics(
                success=Duration(answered.count, answered.request_ns),
                fail=self._fail.frozen(),
                queue=Duration(answered.count, answered.queue_ns),
                **answered.compute(),
            ),
            batch_stats=tuple(
                BatchStatistics(batch_size=size, **acc.compute())
                for size, acc in sorted(self._batches.items())
            ),
        )
