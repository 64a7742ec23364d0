"""Prometheus metrics on their own port: Triton-named counters plus edgeperf's latency histograms.

Triton's counters (`nv_inference_*`, INFERENCE_PROTOCOL.md §12) keep their exact names, without the
`_total` suffix prometheus-client would add, so existing Triton dashboards work; they are rendered
here. The histograms (request, queue, compute duration and batch size) come from prometheus-client.
`ServerMetrics` implements the core's `StatsObserver`; the core calls it on the event loop thread for
every request, so an observation is only appended to a deque there; a scrape (on an executor thread,
server/metrics_http.py) folds the pending observations into the counters and histograms, behind a lock, before
rendering, as does the loop itself once 4096 are pending.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from edgeperf.server.types import ServerTimings

__all__ = ["CONTENT_TYPE", "Exposition", "QueueDepths", "ServerMetrics"]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

QueueDepths = Callable[[], Iterable[tuple[str, str, int]]]
"""Returns (model, version, requests waiting in the queue) for every served model version."""

_SECONDS_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
_BATCH_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

# (name, help) of Triton's per-model counters, in Triton's order.
_COUNTERS: Final = (
    ("nv_inference_request_success", "Number of successful inference requests, all batch sizes"),
    ("nv_inference_count", "Number of inferences performed (does not include cached requests)"),
    ("nv_inference_exec_count", "Number of model executions performed (does not include cached requests)"),
    ("nv_inference_request_duration_us", "Cumulative inference request duration in microseconds"),
    ("nv_inference_queue_duration_us", "Cumulative inference queuing duration in microseconds"),
    ("nv_inference_compute_input_duration_us", "Cumulative compute input duration in microseconds"),
    ("nv_inference_compute_infer_duration_us", "Cumulative compute inference duration in microseconds"),
    (
        "nv_inference_compute_output_duration_us",
        "Cumulative inference compute output duration in microseconds",
    ),
)
_FOLD_AT: Final = 4096
"""Pending observations that make the hot path fold them in itself, so memory stays bounded unscraped."""
_REASONS: Final = ("REJECTED", "CANCELED", "BACKEND", "OTHER")


def _labels(model: str, version: str) -> str:
    def esc(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return f'model="{esc(model)}",version="{esc(version)}"'


class ServerMetrics:
    """Per-model counters and histograms fed by the core's statistics observer."""

    def __init__(self, queue_depths: QueueDepths | None = None) -> None:
        self._lock = threading.Lock()
        self._queue_depths = queue_depths
        # (model, version) -> counter name -> value; durations kept in ns and rendered in us.
        self._counters: defaultdict[tuple[str, str], defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self._failures: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self._pending: deque[tuple[Any, ...]] = deque()
        """Observations not yet in the counters and histograms (see `_fold`)."""
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("model", "version")
        self._request_s = Histogram(
            "edgeperf_request_duration_seconds",
            "Server-side request duration (queue + compute + edge overhead) of successful requests",
            labels,
            buckets=_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self._queue_s = Histogram(
            "edgeperf_queue_duration_seconds",
            "Time successful requests waited in the dynamic batcher's queue",
            labels,
            buckets=_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self._compute_s = Histogram(
            "edgeperf_compute_duration_seconds",
            "Compute time (input + infer + output) of the batch each successful request ran in",
            labels,
            buckets=_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self._batch_size = Histogram(
            "edgeperf_batch_size",
            "Samples per model execution",
            labels,
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, str], tuple[Any, Any, Any, Any]] = {}
        self._sections: list[Callable[[], str]] = []

    def set_queue_depths(self, queue_depths: QueueDepths) -> None:
        """Where `nv_inference_pending_request_count` comes from (read at scrape time)."""
        self._queue_depths = queue_depths

    def add_section(self, render: Callable[[], str]) -> None:
        """More exposition text, rendered at scrape time after the model metrics (the GPU metrics)."""
        self._sections.append(render)

    def _histograms(self, model: str, version: str) -> tuple[Any, Any, Any, Any]:
        key = (model, version)
        children = self._children.get(key)
        if children is None:
            children = (
                self._request_s.labels(model, version),
                self._queue_s.labels(model, version),
                self._compute_s.labels(model, version),
                self._batch_size.labels(model, version),
            )
            self._children[key] = children
        return children

    # ------------------------------------------------------------ StatsObserver

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
        # NOTE: hot path: one append (a deque is thread-safe); counters and histograms take the
        # observations when a scrape (or a long backlog) folds them in.
        self._pending.append((model, version, success, reason, timings, request_ns))
        if len(self._pending) >= _FOLD_AT:
            self._fold()

    def on_batch(self, model: str, version: str, batch_size: int) -> None:
        self._pending.append((model, version, batch_size))
        if len(self._pending) >= _FOLD_AT:
            self._fold()

    def _fold(self) -> None:
        """Move pending observations into the counters and histograms (the loop or the scrape thread)."""
        pending = self._pending
        with self._lock:
            while pending:
                try:
                    item = pending.popleft()
                except IndexError:
                    return
                if len(item) == 3:
                    model, version, batch_size = item
                    counters = self._counters[(model, version)]
                    counters["nv_inference_count"] += batch_size
                    counters["nv_inference_exec_count"] += 1
                    self._histograms(model, version)[3].observe(batch_size)
                    continue
                model, version, success, reason, timings, request_ns = item
                if not success:
                    self._failures[(model, version, reason if reason in _REASONS else "OTHER")] += 1
                    continue
                counters = self._counters[(model, version)]
                counters["nv_inference_request_success"] += 1
                counters["nv_inference_request_duration_us"] += request_ns
                counters["nv_inference_queue_duration_us"] += timings.queue_ns
                counters["nv_inference_compute_input_duration_us"] += timings.compute_input_ns
                counters["nv_inference_compute_infer_duration_us"] += timings.compute_infer_ns
                counters["nv_inference_compute_output_duration_us"] += timings.compute_output_ns
                compute_ns = timings.compute_input_ns + timings.compute_infer_ns + timings.compute_output_ns
                request_h, queue_h, compute_h, _ = self._histograms(model, version)
                request_h.observe(request_ns / 1e9)
                queue_h.observe(timings.queue_ns / 1e9)
                compute_h.observe(compute_ns / 1e9)

    # ------------------------------------------------------------ exposition

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        self._fold()
        with self._lock:
            counters = {key: dict(values) for key, values in self._counters.items()}
            failures = dict(self._failures)
        lines: list[str] = []
        for name, help_text in _COUNTERS:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
            for (model, version), values in sorted(counters.items()):
                value = values.get(name, 0)
                if name.endswith("_us"):
                    value //= 1000
                lines.append(f"{name}{{{_labels(model, version)}}} {value}")
        lines += [
            "# HELP nv_inference_request_failure Number of failed inference requests, all batch sizes",
            "# TYPE nv_inference_request_failure counter",
        ]
        for (model, version, reason), value in sorted(failures.items()):
            lines.append(
                f'nv_inference_request_failure{{{_labels(model, version)},reason="{reason}"}} {value}'
            )
        lines += [
            "# HELP nv_inference_pending_request_count Instantaneous number of pending requests awaiting execution",
            "# TYPE nv_inference_pending_request_count gauge",
        ]
        for model, version, depth in sorted(self._queue_depths() if self._queue_depths else ()):
            lines.append(f"nv_inference_pending_request_count{{{_labels(model, version)}}} {depth}")
        extra = "".join(section() for section in self._sections)
        return ("\n".join(lines) + "\n" + extra).encode() + generate_latest(self.registry)


class Exposition(Protocol):
    """What /metrics serves: ServerMetrics, or the sum over `serve --workers N` (server/workers.py)."""

    def render(self) -> bytes: ...
