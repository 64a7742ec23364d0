"""An in-process SUT with configurable latency and failures, the counterpart of httpx's MockTransport."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edgeperf.client.issue.sut import STATUS_OK, QuerySample, QuerySampleResponse, QuerySamplesComplete

__all__ = ["FakeSut", "FakeSutConfig"]


def _index_bytes(index: int) -> bytes:
    return index.to_bytes(4, "little")


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeSutConfig:
    """How the fake answers."""

    latency_ns: int | Callable[[int], int] = 0
    """Service time per sample, constant or a function of the QSL index."""
    fail: Callable[[int], str | None] | None = None
    """QSL index -> gRPC status name to fail the sample with, or None to answer it."""
    dead_after_samples: int | None = None
    """After this many samples the fake behaves like a dead server: see `dead_status`."""
    dead_status: str | None = "UNAVAILABLE"
    """Status of samples after `dead_after_samples`; None: they are never answered (a hung server)."""
    data: Callable[[int], bytes] = _index_bytes
    """Response bytes of a sample (default: its QSL index, 4 bytes little endian)."""
    queue_ns: int = -1
    compute_ns: int = -1


def _fire(complete: QuerySamplesComplete, responses: list[QuerySampleResponse]) -> None:
    complete(responses, time.perf_counter_ns())


class FakeSut:
    """Answers every sample after its configured latency on the running event loop, no network."""

    def __init__(self, config: FakeSutConfig | None = None, *, name: str = "FakeSut") -> None:
        self._config = config or FakeSutConfig()
        self._name = name
        self.issued_samples = 0
        self.issue_calls: list[tuple[int, ...]] = []
        """QSL indices of every `issue_query` call, in order (for tests)."""
        self.flushed = False

    @property
    def name(self) -> str:
        return self._name

    async def issue_query(self, samples: Sequence[QuerySample], complete: QuerySamplesComplete) -> None:
        loop = asyncio.get_running_loop()
        self.issue_calls.append(tuple(s.index for s in samples))
        by_latency: dict[int, list[QuerySampleResponse]] = {}
        cfg = self._config
        for sample in samples:
            self.issued_samples += 1
            latency = cfg.latency_ns(sample.index) if callable(cfg.latency_ns) else cfg.latency_ns
            status = cfg.fail(sample.index) if cfg.fail is not None else None
            if cfg.dead_after_samples is not None and self.issued_samples > cfg.dead_after_samples:
                if cfg.dead_status is None:
                    continue
                status = cfg.dead_status
            if status is None or status == STATUS_OK:
                response = QuerySampleResponse(
                    id=sample.id,
                    data=cfg.data(sample.index),
                    queue_ns=cfg.queue_ns,
                    compute_ns=cfg.compute_ns,
                )
            else:
                response = QuerySampleResponse(id=sample.id, status=status, error=f"fake failure: {status}")
            by_latency.setdefault(latency, []).append(response)
        for latency, responses in by_latency.items():
            loop.call_later(latency / 1e9, _fire, complete, responses)

    async def flush_queries(self) -> None:
        self.flushed = True
