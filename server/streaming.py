"""One ModelStreamInfer call: the stream's requests run at once, answered as they finish, in any order.

Nothing here takes a task per request: the reader task converts each message and starts it in the core
(`InferenceCore.infer_nowait`), the core calls `_answered` on the event loop when the request is
answered, and the answer goes to an outbox that the call's own task drains with `context.write`. (A task,
a semaphore and an asyncio.Queue per request cost more CPU than a tiny model's whole inference.)

At most STREAM_WINDOW requests of one stream are in the server (running, or answered and not yet
written); beyond that reading pauses and HTTP/2 flow control pushes back on the client. Answers wait in
the outbox until written (a client that reads slowly pushes back the same way) and hold their output
bytes in the server's byte budget until then, so new requests are refused instead of answers piling up.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import grpc

from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.server.admission import ByteBudget
from edgeperf.server.converters import stream_error_response, stream_response
from edgeperf.server.core import InferDone
from edgeperf.server.errors import EdgeperfServerError, InvalidInput
from edgeperf.server.grpc_handlers import MalformedMessage
from edgeperf.server.raw_inputs import SplitRequest
from edgeperf.server.types import InferResponse

__all__ = ["STREAM_WINDOW", "Start", "StreamCall"]

logger = logging.getLogger(__name__)

STREAM_WINDOW: Final = 1024
"""Requests one ModelStreamInfer stream may have in the server at once before reading pauses."""

Start = Callable[[pb.ModelInferRequest | SplitRequest, InferDone], "asyncio.Future[Any] | None"]
"""Starts one request: checks and converts it, hands it to the core and returns the handle that
cancels it (None when it was answered at once); raises EdgeperfServerError for a request refused at once."""
Check = Callable[[InferResponse], int]
"""The answer's output bytes; raises EdgeperfServerError for an answer that cannot be sent (too large)."""

_Answer = tuple[pb.ModelStreamInferResponse, int]
"""A message to write and the output bytes it holds in the budget."""
_Item = _Answer | BaseException | None
"""What the writer takes: an answer, an error that ends the stream, or None (the stream is done)."""


class StreamCall:
    """The state of one ModelStreamInfer call; `run` serves it to the end."""

    def __init__(
        self, context: grpc.aio.ServicerContext, *, start: Start, check: Check, budget: ByteBudget
    ) -> None:
        """Args:
        context: the call's context (its metadata decides `triton_grpc_error`).
        start: starts one request (the servicer's, so unary and streamed requests are checked alike).
        check: refuses an answer that cannot be sent.
        budget: the core's byte budget, which also holds answers waiting to be written.
        """
        self._context = context
        self._start = start
        self._check = check
        self._budget = budget
        metadata_items = context.invocation_metadata() or ()
        self._grpc_error = any(
            k == "triton_grpc_error" and str(v).lower() == "true" for k, v in metadata_items
        )
        self._outbox: deque[_Item] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        """The writer waits on it while the outbox is empty."""
        self._room: asyncio.Future[None] | None = None
        """The reader waits on it while STREAM_WINDOW requests are in the server."""
        self._in_server = 0
        """Requests accepted and not yet written."""
        self._unanswered = 0
        """Requests accepted and not yet in the outbox."""
        self._running: dict[int, asyncio.Future[Any]] = {}
        """The handles of requests not yet answered, by the id of their message."""
        self._reading = True
        self._ended: BaseException | None = None
        """Why reading stopped early, if it did; sent once every accepted request is answered."""
        self._closed = False

    async def run(
        self, requests: AsyncIterator[pb.ModelInferRequest | SplitRequest | MalformedMessage]
    ) -> None:
        """Read, run and answer until the client closes the stream (or an error ends it)."""
        loop = asyncio.get_running_loop()
        reader = loop.create_task(self._read_all(requests))
        reader.add_done_callback(self._reader_done)
        outbox = self._outbox
        held = 0
        try:
            while True:
                if not outbox:
                    self._wakeup = loop.create_future()
                    await self._wakeup
                    continue
                item = outbox.popleft()
                if item is None:
                    return
                if isinstance(item, EdgeperfServerError):
                    await self._context.abort(item.grpc_code, str(item))
                elif isinstance(item, BaseException):
                    await self._context.abort(
                        grpc.StatusCode.INTERNAL, f"internal error: {type(item).__name__}: {item}"
                    )
                else:
                    answer, held = item
                    await self._context.write(answer)
                    self._budget.release(held)
                    held = 0
                    self._in_server -= 1
                    if self._room is not None and self._in_server < STREAM_WINDOW:
                        _wake(self._room)
                        self._room = None
        finally:
            self._closed = True
            reader.cancel()
            for handle in list(self._running.values()):
                handle.cancel()
            self._budget.release(held)  # the answer being written when the stream ended
            for left in outbox:
                if isinstance(left, tuple):
                    self._budget.release(left[1])
            outbox.clear()

    async def _read_all(
        self, requests: AsyncIterator[pb.ModelInferRequest | SplitRequest | MalformedMessage]
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for message in requests:
                if self._in_server >= STREAM_WINDOW:
                    self._room = loop.create_future()
                    await self._room
                if isinstance(message, MalformedMessage):
                    # NOTE: the framing is intact (gRPC delimits messages), so the stream can go on.
                    logger.warning("ModelStreamInfer from %s: %s", self._context.peer(), message.describe())
                    if self._grpc_error:
                        self._ended = InvalidInput(message.describe())
                        break
                    self._in_server += 1
                    self._push((stream_error_response(pb.ModelInferRequest(), message.describe()), 0))
                    continue
                self._in_server += 1
                self._unanswered += 1
                self._begin(message)
        except Exception as err:  # NOTE: the requests already accepted are still answered
            logger.warning(
                "ModelStreamInfer from %s: reading the stream failed: %s", self._context.peer(), err
            )
            self._ended = err
        # Every request accepted before the end (or a malformed message) gets its answer first.
        self._reading = False
        if not self._unanswered:
            self._push(self._ended)

    def _begin(self, message: pb.ModelInferRequest | SplitRequest) -> None:
        try:
            handle = self._start(message, functools.partial(self._answered, message))
        except Exception as err:  # NOTE: refused at once; answered like any failure
            self._answered(message, None, err)
            return
        if handle is not None:  # NOTE: None: answered already
            self._running[id(message)] = handle

    def _answered(
        self,
        received: pb.ModelInferRequest | SplitRequest,
        response: InferResponse | None,
        error: BaseException | None,
    ) -> None:
        """On the event loop: one request's answer (or failure) goes to the outbox."""
        message = received.message if isinstance(received, SplitRequest) else received
        self._unanswered -= 1
        self._running.pop(id(received), None)
        if self._closed:
            return  # NOTE: answered as the stream ended; nobody will write it, so it holds no bytes
        if response is not None:
            try:
                size = self._check(response)
            except EdgeperfServerError as err:
                error = err
            else:
                self._budget.hold(size)
                self._push((stream_response(response), size))
        if error is not None:
            if isinstance(error, EdgeperfServerError):
                text = str(error)
            else:  # NOTE: reported on the stream, never crashes the server
                logger.error("unexpected error on ModelStreamInfer", exc_info=error)
                text = f"internal error: {error}"
            self._push(error if self._grpc_error else (stream_error_response(message, text), 0))
        if not self._reading and not self._unanswered:
            self._push(self._ended)

    def _push(self, item: _Item) -> None:
        self._outbox.append(item)
        if self._wakeup is not None:
            _wake(self._wakeup)
            self._wakeup = None

    def _reader_done(self, reader: asyncio.Task[None]) -> None:
        if reader.cancelled() or reader.exception() is not None:
            self._push(None)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
