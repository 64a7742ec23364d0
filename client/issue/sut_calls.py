"""The state `GrpcSut` keeps per call on its timed path: a ModelStreamInfer stream, and the HTTP/2
transport's listeners (`edgeperf.client.issue.h2_connection.CallListener`) for unary calls and streams."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from edgeperf.client.issue.h2_channel import H2Call
from edgeperf.client.issue.sut import QuerySample, QuerySamplesComplete

__all__ = ["StreamCall", "StreamListener", "UnaryCall"]


class StreamCall:
    """One ModelStreamInfer call: the pending requests by id and either the grpc.aio call with its
    write lock and reader task or the HTTP/2 call (written synchronously, read by callbacks)."""

    def __init__(self, call: Any = None) -> None:
        self.call = call
        self.h2: H2Call | None = None
        self.lock = asyncio.Lock()
        self.pending: dict[str, tuple[list[QuerySample], int, QuerySamplesComplete]] = {}
        self.broken: tuple[str, str] | None = None
        self.reader: asyncio.Task[None] | None = None

    def opened(self, call: H2Call) -> None:
        self.h2 = call


class UnaryCall:
    """One unary call over HTTP/2: the response bytes and when they came, then how the call ended."""

    __slots__ = ("complete", "completed_ns", "done", "response", "samples", "sent_ns")

    def __init__(
        self,
        done: Callable[[UnaryCall, str, str], None],
        samples: list[QuerySample],
        complete: QuerySamplesComplete,
    ) -> None:
        self.done = done
        self.samples = samples
        self.complete = complete
        self.response: bytes | None = None
        self.completed_ns = 0
        self.sent_ns = time.perf_counter_ns()

    def message(self, data: bytes) -> None:
        # NOTE: the completion time is the response's arrival, not its trailers' (a frame later at most).
        self.completed_ns = time.perf_counter_ns()
        self.response = data

    def closed(self, status: str, details: str) -> None:
        self.done(self, status, details)


class StreamListener:
    """The responses of one ModelStreamInfer call over HTTP/2."""

    __slots__ = ("broken", "respond", "stream")

    def __init__(
        self,
        stream: StreamCall,
        respond: Callable[[StreamCall, bytes, int], None],
        broken: Callable[[StreamCall, str, str], None],
    ) -> None:
        self.stream = stream
        self.respond = respond
        self.broken = broken

    def message(self, data: bytes) -> None:
        self.respond(self.stream, data, time.perf_counter_ns())

    def closed(self, status: str, details: str) -> None:
        if status == "OK":
            status, details = "UNAVAILABLE", "the server ended the stream"
        self.broken(self.stream, status, details)
