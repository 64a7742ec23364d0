"""The gRPC edge: Triton's GRPCInferenceService and edgeperf.v1.EdgeperfService over the InferenceCore.

Each RPC converts the request (server/converters.py), calls the core and converts the answer back
(server/converters.py for inference, server/metadata_converters.py for the rest); the servicer builds
no message itself. Whether requests are accepted is the core's state (`InferenceCore.check_accepting`).
Errors become gRPC statuses in one place (`_map_errors`): an EdgeperfServerError carries its own
status; anything else is INTERNAL.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

import grpc

from edgeperf.protos import edgeperf_service_pb2 as epb
from edgeperf.protos import edgeperf_service_pb2_grpc as epb_grpc
from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos import grpc_service_pb2_grpc as pb_grpc
from edgeperf.server.converters import (
    request_from_proto,
    response_to_proto,
    stream_error_response,
    stream_response,
)
from edgeperf.server.core import InferenceCore
from edgeperf.server.errors import (
    EdgeperfServerError,
    InvalidInput,
    MessageTooLarge,
    ModelNotFound,
    Unsupported,
)
from edgeperf.server.grpc_handlers import MalformedMessage
from edgeperf.server.metadata_converters import (
    model_config_to_proto,
    model_metadata_to_proto,
    repository_index_to_proto,
    server_metadata_to_proto,
    statistics_response,
    system_description_to_proto,
)
from edgeperf.server.peers import PeerStatistics
from edgeperf.server.power.base import PowerSource
from edgeperf.server.power.service import measure_power
from edgeperf.server.system import describe_system, server_version
from edgeperf.server.types import InferResponse

__all__ = ["STREAM_WINDOW", "EdgeperfServicer", "InferenceServicer"]

logger = logging.getLogger(__name__)

STREAM_WINDOW: Final = 1024
"""Requests one ModelStreamInfer stream may have in the server at once before reading pauses."""

_R = TypeVar("_R")
_Handler = Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[_R]]


def _map_errors(method: _Handler[_R]) -> _Handler[_R]:
    """Map exceptions of a unary handler to a gRPC status, once for every RPC."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> _R:
        try:
            return await method(self, request, context)
        except EdgeperfServerError as err:
            await context.abort(err.grpc_code, str(err))
        except Exception as err:  # NOTE: the last line of defence: never crash the server
            logger.exception("unexpected error in %s", method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(err).__name__}: {err}")
        raise AssertionError("context.abort returned")  # pragma: no cover

    return wrapper


def _deadline_ns(context: grpc.aio.ServicerContext) -> int | None:
    remaining_s = context.time_remaining()
    if remaining_s is None:
        return None
    return time.monotonic_ns() + int(remaining_s * 1e9)


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]
    """Triton's inference service. RPCs edgeperf does not serve answer UNIMPLEMENTED."""

    def __init__(
        self,
        core: InferenceCore,
        *,
        max_send_message_bytes: int,
        peers: tuple[str, ...] = (),
        auth_token: str | None = None,
    ) -> None:
        """Args:
        peers: the other workers' private addresses under `serve --workers N`; ModelStatistics then
            answers the sum over every worker (server/workers.py).
        auth_token: the server's bearer token, sent to those peers.
        """
        self._core = core
        self._max_send_bytes = max_send_message_bytes
        self._peers = PeerStatistics(peers, auth_token) if peers else None

    async def close(self) -> None:
        """Release the channels to peer workers, if any."""
        if self._peers is not None:
            await self._peers.close()

    async def _infer(self, message: pb.ModelInferRequest, context: grpc.aio.ServicerContext) -> InferResponse:
        self._core.check_accepting()
        start_ns = time.monotonic_ns()
        try:
            request = request_from_proto(message, deadline_ns=_deadline_ns(context))
        except EdgeperfServerError as err:
            self._core.record_rejected(
                message.model_name, message.model_version, err, time.monotonic_ns() - start_ns
            )
            raise
        response = await self._core.infer(request)
        size = sum(array.nbytes for array in response.outputs.values())
        if size > self._max_send_bytes:
            raise MessageTooLarge(
                f"response of {size} bytes exceeds the maximum message size of {self._max_send_bytes} bytes "
                "(server setting --max-message-mb / EDGEPERF_MAX_MESSAGE_MB)"
            )
        return response

    # ------------------------------------------------------------ health and metadata

    @_map_errors
    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=self._core.live)

    @_map_errors
    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self._core.ready)

    @_map_errors
    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelReadyResponse:
        try:
            self._core.model(request.name, request.version)
        except ModelNotFound:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=self._core.ready)

    @_map_errors
    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerMetadataResponse:
        return server_metadata_to_proto(server_version())

    @_map_errors
    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        model = self._core.model(request.name, request.version)
        return model_metadata_to_proto(model.name, model.versions, model.config)

    @_map_errors
    async def ModelConfig(
        self, request: pb.ModelConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelConfigResponse:
        return model_config_to_proto(self._core.model(request.name, request.version).config)

    @_map_errors
    async def ModelStatistics(
        self, request: pb.ModelStatisticsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelStatisticsResponse:
        response = statistics_response(self._core.statistics(request.name, request.version))
        if self._peers is None or PeerStatistics.asked_by_peer(context):
            return response
        return await self._peers.summed(request, response)

    @_map_errors
    async def RepositoryIndex(
        self, request: pb.RepositoryIndexRequest, context: grpc.aio.ServicerContext
    ) -> pb.RepositoryIndexResponse:
        return repository_index_to_proto(self._core.models(), ready_only=request.ready)

    # ------------------------------------------------------------ inference

    @_map_errors
    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInferResponse:
        return response_to_proto(await self._infer(request, context))

    async def ModelStreamInfer(
        self,
        request_iterator: AsyncIterator[pb.ModelInferRequest | MalformedMessage],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.ModelStreamInferResponse]:
        """Requests on one stream run concurrently; responses are written as they finish, in any order.

        A failed request answers with `error_message` and the stream stays open, unless the client
        opened the stream with the metadata `triton_grpc_error: true`: then the first failure ends the
        stream with that error's status, as Triton does. A message that does not parse answers in-band
        with `error_message` (no id: none could be read), or ends the stream with INVALID_ARGUMENT under
        `triton_grpc_error`, after the requests accepted before it are answered.
        """
        metadata_items = context.invocation_metadata() or ()
        grpc_error = any(k == "triton_grpc_error" and str(v).lower() == "true" for k, v in metadata_items)
        # NOTE: answers wait here until written (a client that reads slowly pushes back through HTTP/2
        # flow control); their output bytes stay in the byte budget until then, so new requests are refused
        # instead of answers piling up in memory.
        outbox: asyncio.Queue[
            tuple[pb.ModelStreamInferResponse, int] | EdgeperfServerError | Exception | None
        ] = asyncio.Queue()
        budget = self._core.budget
        pending: set[asyncio.Task[None]] = set()
        # NOTE: at most STREAM_WINDOW requests of one stream are in the server (running or answered but not
        # yet written); beyond that reading pauses, and HTTP/2 flow control pushes back on the client.
        window = asyncio.Semaphore(STREAM_WINDOW)

        async def one(message: pb.ModelInferRequest) -> None:
            try:
                response = await self._infer(message, context)
                size = sum(array.nbytes for array in response.outputs.values())
                budget.hold(size)
                outbox.put_nowait((stream_response(response), size))
            except EdgeperfServerError as err:
                outbox.put_nowait(err if grpc_error else (stream_error_response(message, str(err)), 0))
            except Exception as err:  # NOTE: reported on the stream, never crashes the server
                logger.exception("unexpected error on ModelStreamInfer")
                outbox.put_nowait(
                    err if grpc_error else (stream_error_response(message, f"internal error: {err}"), 0)
                )

        async def read_all() -> None:
            ended: EdgeperfServerError | Exception | None = None
            try:
                async for message in request_iterator:
                    if isinstance(message, MalformedMessage):
                        # NOTE: the framing is intact (gRPC delimits messages), so the stream can go on.
                        logger.warning("ModelStreamInfer from %s: %s", context.peer(), message.describe())
                        if grpc_error:
                            ended = InvalidInput(message.describe())
                            break
                        await window.acquire()
                        outbox.put_nowait(
                            (stream_error_response(pb.ModelInferRequest(), message.describe()), 0)
                        )
                        continue
                    await window.acquire()
                    task = asyncio.create_task(one(message))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
            except Exception as err:  # NOTE: the requests already accepted are still answered below
                logger.warning("ModelStreamInfer from %s: reading the stream failed: %s", context.peer(), err)
                ended = err
            # Every request accepted before the end (or a malformed message) gets its answer first.
            while pending:
                await asyncio.gather(*pending)
            outbox.put_nowait(ended)

        reader = asyncio.create_task(read_all())
        reader.add_done_callback(
            lambda t: outbox.put_nowait(None) if t.cancelled() or t.exception() else None
        )
        held = 0
        try:
            while (item := await outbox.get()) is not None:
                if isinstance(item, EdgeperfServerError):
                    await context.abort(item.grpc_code, str(item))
                elif isinstance(item, Exception):
                    await context.abort(
                        grpc.StatusCode.INTERNAL, f"internal error: {type(item).__name__}: {item}"
                    )
                else:
                    answer, held = item
                    yield answer
                    budget.release(held)
                    held = 0
                    window.release()
        finally:
            reader.cancel()
            for task in list(pending):
                task.cancel()
            budget.release(held)  # the answer being written when the stream ended
            while not outbox.empty():
                left = outbox.get_nowait()
                if isinstance(left, tuple):
                    budget.release(left[1])

    # ------------------------------------------------------------ not served

    async def _unimplemented(self, request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "edgeperf does not serve this RPC")

    @_map_errors
    async def RepositoryModelLoad(self, request: Any, context: grpc.aio.ServicerContext) -> None:
        raise Unsupported(
            "edgeperf loads its model repository at start-up; RepositoryModelLoad is not served"
        )

    @_map_errors
    async def RepositoryModelUnload(self, request: Any, context: grpc.aio.ServicerContext) -> None:
        raise Unsupported(
            "edgeperf loads its model repository at start-up; RepositoryModelUnload is not served"
        )

    SystemSharedMemoryStatus = _unimplemented
    SystemSharedMemoryRegister = _unimplemented
    SystemSharedMemoryUnregister = _unimplemented
    CudaSharedMemoryStatus = _unimplemented
    CudaSharedMemoryRegister = _unimplemented
    CudaSharedMemoryUnregister = _unimplemented
    TraceSetting = _unimplemented
    LogSettings = _unimplemented


class EdgeperfServicer(epb_grpc.EdgeperfServiceServicer):  # type: ignore[misc]
    """edgeperf's extras: what the device is, its power between two marks, an echo to time the network."""

    def __init__(
        self,
        nvml_module: Any | None = None,
        *,
        power_sources: Sequence[PowerSource] = (),
        max_send_message_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self._nvml_module = nvml_module
        self._power = list(power_sources)
        self._max_send = max_send_message_bytes

    @_map_errors
    async def SystemDescription(
        self, request: epb.SystemDescriptionRequest, context: grpc.aio.ServicerContext
    ) -> epb.SystemDescriptionResponse:
        infos = [source.info for source in self._power]
        facts = await asyncio.to_thread(describe_system, server_version(), self._nvml_module, infos)
        return system_description_to_proto(facts)

    async def MeasurePower(
        self, request_iterator: AsyncIterator[epb.PowerMark], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[epb.PowerEvent]:
        # NOTE: grpc.aio serves a stream only from an async generator function, so this one re-yields.
        async for event in measure_power(self._power, request_iterator, context):
            yield event

    @_map_errors
    async def Echo(self, request: epb.EchoRequest, context: grpc.aio.ServicerContext) -> epb.EchoResponse:
        # NOTE: the payload's protobuf framing adds a few bytes; 64 leaves room for it.
        if request.response_bytes > self._max_send - 64:
            raise MessageTooLarge(
                f"Echo: response_bytes {request.response_bytes} exceeds the server's largest message "
                f"({self._max_send} bytes)"
            )
        return epb.EchoResponse(payload=bytes(request.response_bytes))
