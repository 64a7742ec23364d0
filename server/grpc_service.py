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
from typing import Any, TypeVar

import grpc

from edgeperf.protos import edgeperf_service_pb2 as epb
from edgeperf.protos import edgeperf_service_pb2_grpc as epb_grpc
from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos import grpc_service_pb2_grpc as pb_grpc
from edgeperf.server.converters import request_from_proto, response_to_proto
from edgeperf.server.core import InferDone, InferenceCore
from edgeperf.server.errors import (
    EdgeperfServerError,
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
from edgeperf.server.raw_inputs import SplitRequest
from edgeperf.server.streaming import STREAM_WINDOW, StreamCall
from edgeperf.server.system import describe_system, server_version
from edgeperf.server.types import InferRequest, InferResponse

__all__ = ["STREAM_WINDOW", "EdgeperfServicer", "InferenceServicer"]

logger = logging.getLogger(__name__)


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

    def _request(
        self, received: pb.ModelInferRequest | SplitRequest, context: grpc.aio.ServicerContext
    ) -> InferRequest:
        self._core.check_accepting()
        start_ns = time.monotonic_ns()
        message, raw = received if isinstance(received, SplitRequest) else (received, None)
        try:
            return request_from_proto(message, deadline_ns=_deadline_ns(context), raw_input_contents=raw)
        except EdgeperfServerError as err:
            self._core.record_rejected(
                message.model_name, message.model_version, err, time.monotonic_ns() - start_ns
            )
            raise

    def _check_size(self, response: InferResponse) -> int:
        """The answer's output bytes; raises MessageTooLarge when they cannot be sent."""
        size = 0
        for array in response.outputs.values():
            size += array.nbytes
        if size > self._max_send_bytes:
            raise MessageTooLarge(
                f"response of {size} bytes exceeds the maximum message size of {self._max_send_bytes} bytes "
                "(server setting --max-message-mb / EDGEPERF_MAX_MESSAGE_MB)"
            )
        return size

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
        self, request: pb.ModelInferRequest | SplitRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInferResponse:
        response = await self._core.infer(self._request(request, context))
        self._check_size(response)
        return response_to_proto(response)

    async def ModelStreamInfer(
        self,
        request_iterator: AsyncIterator[pb.ModelInferRequest | SplitRequest | MalformedMessage],
        context: grpc.aio.ServicerContext,
    ) -> None:
        """Requests on one stream run concurrently; responses are written as they finish, in any order
        (server/streaming.py).

        A failed request answers with `error_message` and the stream stays open, unless the client
        opened the stream with the metadata `triton_grpc_error: true`: then the first failure ends the
        stream with that error's status, as Triton does. A message that does not parse answers in-band
        with `error_message` (no id: none could be read), or ends the stream with INVALID_ARGUMENT under
        `triton_grpc_error`, after the requests accepted before it are answered.
        """

        def start(
            message: pb.ModelInferRequest | SplitRequest, done: InferDone
        ) -> asyncio.Future[Any] | None:
            return self._core.infer_nowait(self._request(message, context), done)

        call = StreamCall(context, start=start, check=self._check_size, budget=self._core.budget)
        await call.run(request_iterator)

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
