"""Small in-process KServe v2 gRPC services for the client's tests (not edgeperf's server), on 127.0.0.1:0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import grpc.aio

from edgeperf.protos import grpc_service_pb2 as pb

# NOTE: (RPC, servicer method, request type, response type) of the unary RPCs a fake may answer.
_UNARY = (
    ("ModelInfer", "infer", pb.ModelInferRequest, pb.ModelInferResponse),
    ("ModelMetadata", "metadata", pb.ModelMetadataRequest, pb.ModelMetadataResponse),
    ("ModelConfig", "config", pb.ModelConfigRequest, pb.ModelConfigResponse),
    ("ServerLive", "live", pb.ServerLiveRequest, pb.ServerLiveResponse),
    ("ServerReady", "ready", pb.ServerReadyRequest, pb.ServerReadyResponse),
    ("ModelReady", "model_ready", pb.ModelReadyRequest, pb.ModelReadyResponse),
)


class FakeKServe:
    """A live, ready server whose every model is ready; subclasses answer infer, metadata and config, and
    ModelStreamInfer with a `stream` method."""

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
