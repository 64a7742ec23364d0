"""Small in-process KServe v2 gRPC services for the client's tests (not edgeperf's server), on 127.0.0.1:0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import grpc.aio

from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos import model_config_pb2 as mc

# NOTE: (RPC, servicer method, request type, response type) of the unary RPCs a fake may answer.
_UNARY = (
    ("ModelInfer", "infer", pb.ModelInferRequest, pb.ModelInferResponse),
    ("ModelMetadata", "metadata", pb.ModelMetadataRequest, pb.ModelMetadataResponse),
    ("ModelConfig", "config", pb.ModelConfigRequest, pb.ModelConfigResponse),
    ("ServerLive", "live", pb.ServerLiveRequest, pb.ServerLiveResponse),
    ("ServerReady", "ready", pb.ServerReadyRequest, pb.ServerReadyResponse),
    ("ModelReady", "model_ready", pb.ModelReadyRequest, pb.ModelReadyResponse),
)


def add_timings(
    response: pb.ModelInferResponse, queue_ns: int, compute_ns: tuple[int, int, int] = (1, 2, 3)
) -> None:
    """The server-side timings an edgeperf server puts in a response's parameters: queue, then compute
    input, infer and output (the wire names spelled out, so that a renamed constant shows here)."""
    names = (
        "edgeperf_queue_ns",
        "edgeperf_compute_input_ns",
        "edgeperf_compute_infer_ns",
        "edgeperf_compute_output_ns",
    )
    for name, value in zip(names, (queue_ns, *compute_ns), strict=True):
        response.parameters[name].int64_param = value


Tensor = tuple[str, str, list[int]]
"""name, KServe datatype, shape (-1: the batch dimension)."""


class FakeKServe:
    """A live, ready server whose every model is ready and has the tensors and max batch size the subclass
    declares; subclasses answer `infer`, and ModelStreamInfer with a `stream` method."""

    inputs: tuple[Tensor, ...] = (("INPUT0", "FP32", [-1, 4]),)
    outputs: tuple[Tensor, ...]
    max_batch_size: int

    async def metadata(self, request: pb.ModelMetadataRequest, context: Any) -> pb.ModelMetadataResponse:
        def tensors(declared: tuple[Tensor, ...]) -> list[pb.ModelMetadataResponse.TensorMetadata]:
            return [
                pb.ModelMetadataResponse.TensorMetadata(name=n, datatype=d, shape=s) for n, d, s in declared
            ]

        return pb.ModelMetadataResponse(
            name=request.name, inputs=tensors(self.inputs), outputs=tensors(self.outputs)
        )

    async def config(self, request: pb.ModelConfigRequest, context: Any) -> pb.ModelConfigResponse:
        return pb.ModelConfigResponse(
            config=mc.ModelConfig(name=request.name, max_batch_size=self.max_batch_size)
        )

    async def live(self, request: Any, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ready(self, request: Any, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=True)

    async def model_ready(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=True)


@asynccontextmanager
async def serve_fake(fake: FakeKServe) -> AsyncIterator[str]:
    """`fake`'s methods as inference.GRPCInferenceService on 127.0.0.1:0; yields the address."""
    handlers: dict[str, grpc.RpcMethodHandler] = {
        rpc: grpc.unary_unary_rpc_method_handler(
            getattr(fake, method),
            request_deserializer=req.FromString,
            response_serializer=resp.SerializeToString,
        )
        for rpc, method, req, resp in _UNARY
        if hasattr(fake, method)
    }
    if hasattr(fake, "stream"):
        handlers["ModelStreamInfer"] = grpc.stream_stream_rpc_method_handler(
            fake.stream,
            request_deserializer=pb.ModelInferRequest.FromString,
            response_serializer=pb.ModelStreamInferResponse.SerializeToString,
        )
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("inference.GRPCInferenceService", handlers),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)
