"""The gRPC edge: Triton's GRPCInferenceService and edgeperf.v1.EdgeperfService over the InferenceCore.

Each RPC converts the request (server/converters.py), calls the core and converts the answer back.
Errors become gRPC statuses in one place (`_map_errors`): an EdgeperfServerError carries its own
status; anything else is INTERNAL.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import platform
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from importlib import metadata
from typing import Any, Final, TypeVar

import grpc
from google.protobuf import json_format

from edgeperf.protos import edgeperf_service_pb2 as epb
from edgeperf.protos import edgeperf_service_pb2_grpc as epb_grpc
from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos import grpc_service_pb2_grpc as pb_grpc
from edgeperf.protos import model_config_pb2 as mc
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
    ShuttingDown,
    Unsupported,
)
from edgeperf.server.gpu.nvml import describe_gpus
from edgeperf.server.grpc_handlers import MalformedMessage
from edgeperf.server.peers import PeerStatistics
from edgeperf.server.power.base import PowerSource, SourceInfo
from edgeperf.server.power.service import measure_power, source_info_proto
from edgeperf.server.stats import Duration, ModelStatistics
from edgeperf.server.types import InferResponse

__all__ = [
    "EXTENSIONS",
    "SHUTDOWN_MESSAGE",
    "STREAM_WINDOW",
    "EdgeperfServicer",
    "InferenceServicer",
    "server_version",
]

logger = logging.getLogger(__name__)

SHUTDOWN_MESSAGE: Final = "GRPC server is shutting down and has stopped accepting new requests."
"""Triton's exact message for requests that arrive while the server drains."""

STREAM_WINDOW: Final = 1024
"""Requests one ModelStreamInfer stream may have in the server at once before reading pauses."""

EXTENSIONS: Final = ("model_configuration", "model_repository", "schedule_policy", "parameters", "statistics")
"""ServerMetadata extensions; perf_analyzer collects server statistics only when "statistics" is listed."""

_R = TypeVar("_R")
_Handler = Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[_R]]


def server_version() -> str:
    try:
        return metadata.version("edgeperf")
    except metadata.PackageNotFoundError:
        return "0+unknown"


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


def _duration(value: Duration) -> pb.StatisticDuration:
    return pb.StatisticDuration(count=value.count, ns=value.ns)


def statistics_to_proto(stats: ModelStatistics) -> pb.ModelStatistics:
    """Core statistics snapshot -> Triton's ModelStatistics (version stays a numeric string)."""
    inference = stats.inference_stats
    return pb.ModelStatistics(
        name=stats.name,
        version=stats.version,
        last_inference=stats.last_inference_ms,
        inference_count=stats.inference_count,
        execution_count=stats.execution_count,
        inference_stats=pb.InferStatistics(
            success=_duration(inference.success),
            fail=_duration(inference.fail),
            queue=_duration(inference.queue),
            compute_input=_duration(inference.compute_input),
            compute_infer=_duration(inference.compute_infer),
            compute_output=_duration(inference.compute_output),
            cache_hit=pb.StatisticDuration(),
            cache_miss=pb.StatisticDuration(),
        ),
        batch_stats=[
            pb.InferBatchStatistics(
                batch_size=batch.batch_size,
                compute_input=_duration(batch.compute_input),
                compute_infer=_duration(batch.compute_infer),
                compute_output=_duration(batch.compute_output),
            )
            for batch in stats.batch_stats
        ],
    )


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
        self._accepting = True
        self._peers = PeerStatistics(peers, auth_token) if peers else None

    def stop_accepting(self) -> None:
        """New inference requests (unary and on open streams) answer UNAVAILABLE from now on."""
        self._accepting = False

    async def close(self) -> None:
        """Release the channels to peer workers, if any."""
        if self._peers is not None:
            await self._peers.close()

    async def _infer(self, message: pb.ModelInferRequest, context: grpc.aio.ServicerContext) -> InferResponse:
        if not self._accepting:
            raise ShuttingDown(SHUTDOWN_MESSAGE)
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
        return pb.ServerReadyResponse(ready=self._accepting and self._core.ready)

    @_map_errors
    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelReadyResponse:
        try:
            self._core.model(request.name, request.version)
        except ModelNotFound:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=self._accepting and self._core.ready)

    @_map_errors
    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name="edgeperf", version=server_version(), extensions=EXTENSIONS)

    @_map_errors
    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        model = self._core.model(request.name, request.version)
        config = model.config
        batch = (-1,) if config.max_batch_size > 0 else ()
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=model.name,
            versions=model.versions,
            platform=config.platform,
            inputs=[tensor(name=t.name, datatype=t.datatype, shape=(*batch, *t.dims)) for t in config.inputs],
            outputs=[
                tensor(name=t.name, datatype=t.datatype, shape=(*batch, *t.dims)) for t in config.outputs
            ],
        )

    @_map_errors
    async def ModelConfig(
        self, request: pb.ModelConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelConfigResponse:
        config = self._core.model(request.name, request.version).config
        message = json_format.ParseDict(dict(config.document), mc.ModelConfig(), ignore_unknown_fields=True)
        message.name = config.name
        message.platform = config.platform
        message.backend = config.backend
        message.max_batch_size = config.max_batch_size
        return pb.ModelConfigResponse(config=message)

    @_map_errors
    async def ModelStatistics(
        self, request: pb.ModelStatisticsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelStatisticsResponse:
        stats = self._core.statistics(request.name, request.version)
        response = pb.ModelStatisticsResponse(model_stats=[statistics_to_proto(s) for s in stats])
        if self._peers is None or PeerStatistics.asked_by_peer(context):
            return response
        return await self._peers.summed(request, response)

    @_map_errors
    async def RepositoryIndex(
        self, request: pb.RepositoryIndexRequest, context: grpc.aio.ServicerContext
    ) -> pb.RepositoryIndexResponse:
        index = pb.RepositoryIndexResponse.ModelIndex
        models = [m for m in self._core.models() if not request.ready or m.state == "READY"]
        return pb.RepositoryIndexResponse(
            models=[
                index(name=m.name, version=version, state=m.state, reason=m.reason)
                for m in models
                for version in (m.versions or ("",))
            ]
        )

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


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def describe_system(
    edgeperf_version: str, nvml_module: Any | None = None, power_sources: Sequence[SourceInfo] = ()
) -> epb.SystemDescriptionResponse:
    """What this machine is: host, OS, CPU, memory, its GPUs (through NVML; `nvml_module` replaces
    pynvml in tests), ONNX Runtime build and its providers, and the power sources MeasurePower reads."""
    import onnxruntime

    providers = list(onnxruntime.get_available_providers())
    accelerators = [
        epb.Accelerator(
            name=gpu.name,
            kind="gpu",
            memory_bytes=gpu.memory_total_bytes,
            driver_version=driver,
            uuid=gpu.uuid,
        )
        for gpu, driver in describe_gpus(nvml_module)
    ]
    accelerators += [
        epb.Accelerator(name=provider.removesuffix("ExecutionProvider"), kind="execution-provider")
        for provider in providers
        if provider != "CPUExecutionProvider"
    ]
    return epb.SystemDescriptionResponse(
        host_name=socket.gethostname(),
        os=f"{platform.system()} {platform.release()}",
        cpu_model=_cpu_model(),
        cpu_cores=os.cpu_count() or 0,
        memory_bytes=_memory_bytes(),
        accelerators=accelerators,
        onnxruntime_version=onnxruntime.__version__,
        onnxruntime_providers=providers,
        edgeperf_version=edgeperf_version,
        python_version=sys.version.split()[0],
        machine=platform.machine(),
        power_sources=[source_info_proto(info) for info in power_sources],
    )


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
        return await asyncio.to_thread(describe_system, server_version(), self._nvml_module, infos)

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
