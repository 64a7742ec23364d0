"""Admission: what the server takes in before it refuses, so overload ends in a status, never a drop.

Two limits, both checked on the event loop thread (so no lock):

* `InflightLimit` (`--max-inflight`): inference RPCs (ModelInfer calls, open ModelStreamInfer streams)
  in the server at once. Beyond it `AdmissionInterceptor` answers RESOURCE_EXHAUSTED at once, before
  the request is parsed, counts the refusal (`edgeperf_requests_refused_total{reason="max_inflight"}`)
  and logs it (one WARNING per `LOG_EVERY_S` with the count). Why the server needs its own limit: the
  grpc.aio server takes calls from gRPC core one at a time on the event loop; when calls arrive faster
  than the loop takes them, core queues them, and past its pending-request limit (1000, hard 3000)
  core drops them at random, which the client sees as CANCELLED and nobody counts. `grpc_options`
  bounds that queue per connection (HTTP/2 MAX_CONCURRENT_STREAMS) and lifts core's drop limit above
  it, so what arrives is either answered or refused by this module, by the model's queue
  (`max_queue_size`: UNAVAILABLE) or the byte budget (UNAVAILABLE); a connection opening more streams
  than it may gets REFUSED_STREAM from HTTP/2 (the client sees UNAVAILABLE and may retry).
* `ByteBudget`: request data held in the server (queued, batching or running).

Without it, memory is bounded only by what clients send: one ModelStreamInfer stream of 80 ResNet50
batch-32 requests (19.3 MB each) took a server from 352 MB to 3.7 GB. Every request reserves the bytes
of its input tensors when the core accepts it and releases them when it is answered; a request that
would take the total over the limit is refused at once with `OverBudget` (UNAVAILABLE, like a full
queue, so clients back off and retry). A request larger than the whole budget is still accepted when
nothing else is held, so the budget never makes a valid request impossible.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final

import grpc
import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter

from edgeperf.server.errors import Busy, OverBudget

__all__ = [
    "INFERENCE_METHODS",
    "AdmissionInterceptor",
    "ByteBudget",
    "InflightLimit",
    "grpc_options",
    "request_bytes",
]

logger = logging.getLogger(__name__)

_MIB: Final = 1024 * 1024

INFERENCE_METHODS: Final = frozenset(
    {"/inference.GRPCInferenceService/ModelInfer", "/inference.GRPCInferenceService/ModelStreamInfer"}
)
"""The RPCs that count against `--max-inflight`; health, metadata and statistics are always answered."""

LOG_EVERY_S: Final = 10.0
"""At most one refusal WARNING per this many seconds (with the count since the last one)."""

_STREAMS_PER_LIMIT: Final = 2
"""HTTP/2 streams one connection may hold, per `--max-inflight`: above the limit, so that a single
client can reach it and be refused (and counted) by the server itself."""

_UNREQUESTED_S: Final = 24 * 3600
"""Seconds gRPC core keeps a call the event loop has not taken yet (its default, 30, drops it)."""

_CONNECTIONS_BACKLOG: Final = 16
"""Connections whose whole stream allowance gRPC core may hold unaccepted before it drops calls."""


def grpc_options(max_inflight: int) -> list[tuple[str, int]]:
    """gRPC server options that keep core from dropping calls (CANCELLED) under overload.

    Per connection at most `_STREAMS_PER_LIMIT * max_inflight` HTTP/2 streams; a client that opens
    more at once (grpc's own clients do, in a burst) gets REFUSED_STREAM, seen as UNAVAILABLE. Core's
    pending-call limits, past which it drops calls the event loop has not taken yet, go above
    `_CONNECTIONS_BACKLOG` such connections, and the time it keeps such a call from 30 s to a day.
    HTTP/2 overload protection is off, so the stream limit counts open streams only, not streams
    already closed whose memory core has not freed yet."""
    streams = _STREAMS_PER_LIMIT * max_inflight
    backlog = _CONNECTIONS_BACKLOG * streams
    return [
        ("grpc.max_concurrent_streams", streams),
        ("grpc.http2.max_concurrent_streams_overload_protection", 0),
        ("grpc.server.max_pending_requests", backlog),
        ("grpc.server.max_pending_requests_hard_limit", backlog),
        # NOTE: core also drops (CANCELLED) a call it held this long without the loop taking it; a
        # starved server's calls should end by the client's own deadline (DEADLINE_EXCEEDED) instead.
        ("grpc.server_max_unrequested_time_in_server", _UNREQUESTED_S),
    ]


class InflightLimit:
    """Count inference RPCs in the server and refuse (count, log) those beyond `limit`."""

    def __init__(self, limit: int, registry: CollectorRegistry | None = None) -> None:
        if limit <= 0:
            raise ValueError(f"the in-flight limit must be > 0, got {limit}")
        self.limit = limit
        self.in_flight = 0
        self.refused = 0
        """Refusals since start (the Prometheus counter carries the same number)."""
        self._counter = Counter(
            "edgeperf_requests_refused",
            "Inference RPCs refused at once with RESOURCE_EXHAUSTED because the server held --max-inflight",
            ("reason",),
            registry=registry,
        ).labels("max_inflight")
        self._logged_at = -LOG_EVERY_S
        self._logged_count = 0

    @property
    def full(self) -> bool:
        return self.in_flight >= self.limit

    def refuse(self) -> Busy:
        """Count one refusal (and log now and then); returns the error to answer with."""
        self.refused += 1
        self._counter.inc()
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_S:
            logger.warning(
                "refused %d inference RPC(s) with RESOURCE_EXHAUSTED: %d in flight, the limit is %d "
                "(--max-inflight)",
                self.refused - self._logged_count,
                self.in_flight,
                self.limit,
                extra={
                    "event": "refused",
                    "reason": "max_inflight",
                    "refused": self.refused - self._logged_count,
                    "refused_total": self.refused,
                    "in_flight": self.in_flight,
                    "max_inflight": self.limit,
                },
            )
            self._logged_at = now
            self._logged_count = self.refused
        return Busy(
            f"server busy: {self.in_flight} inference RPCs in flight, the limit is {self.limit} "
            "(--max-inflight / EDGEPERF_MAX_INFLIGHT); retry later"
        )


class AdmissionInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Apply an `InflightLimit` to the inference RPCs.

    A call that finds the limit reached is refused before its request is parsed (the refusing handler
    takes the raw bytes); an admitted call counts from its handler's start to its end, and checks the
    limit again there (calls admitted together while their messages arrived cannot overshoot it).
    """

    def __init__(self, limit: InflightLimit, methods: frozenset[str] = INFERENCE_METHODS) -> None:
        self._limit = limit
        self._methods = methods
        # NOTE: method -> (handler from the service, its counted version): built once per method.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}
        self._refusing: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method not in self._methods:
            return handler
        if self._limit.full:
            return self._refusing.get(method) or self._refusing.setdefault(method, self._refuser(handler))
        cached = self._wrapped.get(method)
        if cached is None or cached[0] is not handler:
            cached = (handler, self._counted(handler))
            self._wrapped[method] = cached
        return cached[1]

    def _refuser(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        limit = self._limit

        async def refuse(request: Any, context: grpc.aio.ServicerContext) -> None:
            err = limit.refuse()
            await context.abort(err.grpc_code, str(err))

        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(refuse)
        return grpc.unary_unary_rpc_method_handler(refuse)

    def _counted(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=self._counted_call(handler.unary_unary))
        if handler.stream_stream is None:
            raise ValueError("the in-flight limit covers unary and bidirectional RPCs only")
        stream_behaviour = handler.stream_stream
        if not inspect.isasyncgenfunction(stream_behaviour):
            return handler._replace(stream_stream=self._counted_call(stream_behaviour))
        limit = self._limit

        async def stream_gen(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if limit.full:
                err = limit.refuse()
                await context.abort(err.grpc_code, str(err))
            limit.in_flight += 1
            try:
                async for item in stream_behaviour(requests, context):
                    yield item
            finally:
                limit.in_flight -= 1

        return handler._replace(stream_stream=stream_gen)

    def _counted_call(
        self, behaviour: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
    ) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
        """`behaviour` counted: the same wrapper serves a unary handler (a request) and a
        bidirectional one that returns instead of yielding (a request iterator)."""
        limit = self._limit

        async def counted(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if limit.full:
                err = limit.refuse()
                await context.abort(err.grpc_code, str(err))
            limit.in_flight += 1
            try:
                return await behaviour(request, context)
            finally:
                limit.in_flight -= 1

        return counted


def request_bytes(inputs: Mapping[str, npt.NDArray[Any]]) -> int:
    """Bytes of the request's tensors (BYTES tensors: the sum of their elements' lengths, as sent)."""
    total = 0
    for array in inputs.values():
        if not isinstance(array, np.ndarray):
            continue  # NOTE: not a tensor; validation refuses the request right after
        if array.dtype.kind == "O":  # NOTE: a kind test; `== np.object_` converts the type on every call
            total += sum(len(item) for item in array.flat)
        else:
            total += array.nbytes
    return total


class ByteBudget:
    """Reserve and release request bytes against a fixed limit."""

    def __init__(self, limit_bytes: int) -> None:
        if limit_bytes <= 0:
            raise ValueError(f"the byte budget must be > 0, got {limit_bytes}")
        self.limit_bytes = limit_bytes
        self.used_bytes = 0

    def reserve(self, size: int) -> None:
        """Take `size` bytes, to be given back with `release(size)`.

        Raises:
            OverBudget: the bytes held would exceed the limit (and something else is held).
        """
        if self.used_bytes and self.used_bytes + size > self.limit_bytes:
            raise OverBudget(
                f"request of {size / _MIB:.1f} MiB refused: the server holds {self.used_bytes / _MIB:.1f} MiB "
                f"of request data and its budget is {self.limit_bytes / _MIB:.0f} MiB "
                "(--max-queued-mb / EDGEPERF_MAX_QUEUED_MB); retry later"
            )
        self.used_bytes += size

    def hold(self, size: int) -> None:
        """Take `size` bytes without a check: an answer already computed, waiting to be written."""
        self.used_bytes += size

    def release(self, size: int) -> None:
        self.used_bytes -= size
