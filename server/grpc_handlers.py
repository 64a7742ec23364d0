"""Registering servicers so that a message that does not parse is the caller's error, not the server's.

grpc's generated `add_*_to_server` functions deserialize with `Message.FromString`; bytes that do not
parse then raise inside grpc, which logs a full ERROR traceback for every such call and answers UNKNOWN
(on a stream, the stream ends with OK and the answers still in flight are lost). Here every request is
decoded by `_decoder`, which never raises: undecodable bytes become a `MalformedMessage`, and the call
answers INVALID_ARGUMENT with a single WARNING log line, unless the method handles it in-band
(ModelStreamInfer answers it on the stream). Health and reflection are registered the same way: they
are open without a token, so they must not let anyone fill the log with tracebacks either.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import grpc
from google.protobuf import descriptor
from google.protobuf.message import DecodeError, Message

__all__ = ["MalformedMessage", "add_service"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MalformedMessage:
    """Request bytes that do not parse as the method's request message."""

    type_name: str
    """Full protobuf name of the message expected, e.g. `inference.ModelInferRequest`."""
    size: int
    """Length of the bytes received."""
    error: str

    def describe(self) -> str:
        return f"malformed {self.type_name}: {self.size} bytes that do not parse ({self.error})"


def _decoder(message_type: type[Message]) -> Callable[[bytes], Message | MalformedMessage]:
    full_name = message_type.DESCRIPTOR.full_name
    parse = message_type.FromString  # NOTE: once: upb finds it on the class only after a failed lookup

    def decode(data: bytes) -> Message | MalformedMessage:
        try:
            return parse(data)
        except (DecodeError, ValueError) as err:
            return MalformedMessage(full_name, len(data), str(err))

    return decode


async def _refuse(method_name: str, message: MalformedMessage, context: grpc.aio.ServicerContext) -> None:
    # NOTE: one line, no traceback: a client sending garbage must not flood the server log.
    logger.warning("%s from %s: %s", method_name, context.peer(), message.describe())
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message.describe())


async def _respond(result: Any, context: grpc.aio.ServicerContext) -> None:
    """Send a response-streaming behaviour's answers: an async generator's items, or await a coroutine
    that writes them itself (grpcio-health-checking's Watch does)."""
    if inspect.isasyncgen(result):
        async for item in result:
            await context.write(item)
    else:
        await result


def _unary_unary(method_name: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, MalformedMessage):
            await _refuse(method_name, request, context)
        return await behaviour(request, context)

    return handle


def _unary_stream(method_name: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> None:
        if isinstance(request, MalformedMessage):
            await _refuse(method_name, request, context)
        await _respond(behaviour(request, context), context)

    return handle


def _stream_stream(method_name: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
    async def handle(request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> None:
        async def checked() -> AsyncIterator[Any]:
            async for request in request_iterator:
                if isinstance(request, MalformedMessage):
                    await _refuse(method_name, request, context)
                yield request

        await _respond(behaviour(checked(), context), context)

    return handle


def add_service(
    servicer: object,
    server: grpc.aio.Server,
    service: descriptor.ServiceDescriptor,
    messages: ModuleType,
    *,
    in_band: frozenset[str] = frozenset(),
    decoders: Mapping[str, Callable[[bytes], Any]] | None = None,
) -> None:
    """Register every method of `service` on `server`, served by the same-named methods of `servicer`.

    A request that does not parse ends the call with INVALID_ARGUMENT and one WARNING line, except for
    the bidirectional methods named in `in_band`, whose behaviour receives the MalformedMessage in its
    request iterator and answers it itself.

    Args:
        servicer: an instance of the generated `<Service>Servicer` (or a subclass), or a library's
            servicer (grpcio-health-checking, grpcio-reflection).
        server: the grpc.aio server, not yet started.
        service: the service descriptor, e.g. `grpc_service_pb2.DESCRIPTOR.services_by_name[...]`.
        messages: the generated `*_pb2` module holding the request and response classes.
        in_band: names of bidirectional methods that handle MalformedMessage themselves.
        decoders: method name -> its own request deserializer, which must never raise either (it
            returns a MalformedMessage instead); the others parse with `FromString`.
    """
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method in service.methods:
        request_type: type[Message] = getattr(messages, method.input_type.name)
        response_type: type[Message] = getattr(messages, method.output_type.name)
        behaviour = getattr(servicer, method.name)
        codec: dict[str, Any] = {
            "request_deserializer": (decoders or {}).get(method.name) or _decoder(request_type),
            "response_serializer": response_type.SerializeToString,
        }
        if method.client_streaming and method.server_streaming:
            if method.name not in in_band:
                behaviour = _stream_stream(method.full_name, behaviour)
            handler = grpc.stream_stream_rpc_method_handler(behaviour, **codec)
        elif method.server_streaming:
            handler = grpc.unary_stream_rpc_method_handler(
                _unary_stream(method.full_name, behaviour), **codec
            )
        elif method.client_streaming:
            raise ValueError(f"{method.full_name}: client-streaming RPCs are not served by edgeperf")
        else:
            handler = grpc.unary_unary_rpc_method_handler(_unary_unary(method.full_name, behaviour), **codec)
        handlers[method.name] = handler
    # NOTE: generic handlers only, never `add_registered_method_handlers`: grpc.aio then keeps one pending
    # request task per registered method and waits on all of them (`asyncio.wait`) for every call it
    # accepts; with our ~27 methods that cost 50-110 us of CPU per request.
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
