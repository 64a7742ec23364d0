"""Registering servicers so that a message that does not parse is the caller's error, not the server's.

grpc's generated `add_*_to_server` functions deserialize with `Message.FromString`; bytes that do not
parse then raise inside grpc, which logs a full ERROR traceback for every such call and answers UNKNOWN
(on a stream, the stream ends with OK and the answers still in flight are lost). Here every request is
decoded by `_decoder`, which never raises: undecodable bytes become a `MalformedMessage`. A unary RPC
given one answers INVALID_ARGUMENT with a single WARNING log line; streaming handlers receive the
`MalformedMessage` in their request iterator and decide (ModelStreamInfer answers it in-band).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
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

    def decode(data: bytes) -> Message | MalformedMessage:
        try:
            return message_type.FromString(data)
        except (DecodeError, ValueError) as err:
            return MalformedMessage(full_name, len(data), str(err))

    return decode


def _rejecting_malformed(
    method_name: str, behaviour: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, MalformedMessage):
            # NOTE: one line, no traceback: a client sending garbage must not flood the server log.
            logger.warning("%s from %s: %s", method_name, context.peer(), request.describe())
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.describe())
        return await behaviour(request, context)

    return unary


def add_service(
    servicer: object, server: grpc.aio.Server, service: descriptor.ServiceDescriptor, messages: ModuleType
) -> None:
    """Register every method of `service` on `server`, served by the same-named methods of `servicer`.

    Args:
        servicer: an instance of the generated `<Service>Servicer` (or a subclass).
        server: the grpc.aio server, not yet started.
        service: the service descriptor, e.g. `grpc_service_pb2.DESCRIPTOR.services_by_name[...]`.
        messages: the generated `*_pb2` module holding the request and response classes.
    """
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method in service.methods:
        request_type: type[Message] = getattr(messages, method.input_type.name)
        response_type: type[Message] = getattr(messages, method.output_type.name)
        behaviour = getattr(servicer, method.name)
        decode = _decoder(request_type)
        encode = response_type.SerializeToString
        if method.client_streaming and method.server_streaming:
            # NOTE: the handler itself answers a MalformedMessage from its request iterator.
            handler = grpc.stream_stream_rpc_method_handler(
                behaviour, request_deserializer=decode, response_serializer=encode
            )
        elif method.client_streaming or method.server_streaming:
            raise ValueError(f"{method.full_name}: one-sided streaming RPCs are not served by edgeperf")
        else:
            handler = grpc.unary_unary_rpc_method_handler(
                _rejecting_malformed(method.full_name, behaviour),
                request_deserializer=decode,
                response_serializer=encode,
            )
        handlers[method.name] = handler
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)
