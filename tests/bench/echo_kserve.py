"""A bare grpc.aio KServe v2 server for client benchmarks: fixed answers, no model, no batching, no statistics.

    python -m tests.bench.echo_kserve PORT_FILE

It answers the readiness and metadata RPCs a client asks before a run (edgeperf and perf_analyzer both
ask ServerLive, ServerReady, ModelReady, ModelMetadata and ModelConfig) and answers every ModelInfer with
one fixed, pre-serialized response, so what a client benchmark measures is the client, not the server.
It writes its port to PORT_FILE once it serves (it binds 127.0.0.1:0) and runs until killed.
ServerMetadata answers with the number of ModelInfer calls served so far as its `version`, so a bench
can count the requests a client sent in a window (`EchoServer.served()`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos import model_config_pb2 as mc

__all__ = ["MODEL", "EchoServer"]

MODEL = "echo"
INPUT = "INPUT0"
OUTPUT = "OUTPUT0"
ELEMENTS = 16
"""FP32 elements per sample in and out: a tiny model, so the wire and the client dominate."""
_SERVICE = "/inference.GRPCInferenceService/"


def _answers() -> dict[str, bytes]:
    metadata = pb.ModelMetadataResponse(
        name=MODEL,
        versions=["1"],
        platform="onnxruntime_onnx",
        inputs=[pb.ModelMetadataResponse.TensorMetadata(name=INPUT, datatype="FP32", shape=[-1, ELEMENTS])],
        outputs=[pb.ModelMetadataResponse.TensorMetadata(name=OUTPUT, datatype="FP32", shape=[-1, ELEMENTS])],
    )
    config = pb.ModelConfigResponse(
        config=mc.ModelConfig(
            name=MODEL,
            platform="onnxruntime_onnx",
            backend="onnxruntime",
            max_batch_size=8,
            input=[mc.ModelInput(name=INPUT, data_type=mc.TYPE_FP32, dims=[ELEMENTS])],
            output=[mc.ModelOutput(name=OUTPUT, data_type=mc.TYPE_FP32, dims=[ELEMENTS])],
        )
    )
    infer = pb.ModelInferResponse(
        model_name=MODEL,
        model_version="1",
        outputs=[pb.ModelInferResponse.InferOutputTensor(name=OUTPUT, datatype="FP32", shape=[1, ELEMENTS])],
        raw_output_contents=[bytes(4 * ELEMENTS)],
    )
    return {
        "ServerLive": pb.ServerLiveResponse(live=True).SerializeToString(),
        "ServerReady": pb.ServerReadyResponse(ready=True).SerializeToString(),
        "ModelReady": pb.ModelReadyResponse(ready=True).SerializeToString(),
        "ModelMetadata": metadata.SerializeToString(),
        "ModelConfig": config.SerializeToString(),
        "ModelInfer": infer.SerializeToString(),
    }


class _Handler(grpc.GenericRpcHandler):
    """Raw bytes in, a fixed answer out: no protobuf work on the server's timed path."""

    def __init__(self) -> None:
        self._methods: dict[str, grpc.RpcMethodHandler] = {}
        self.served = 0
        answers = _answers()
        infer = answers.pop("ModelInfer")
        for name, reply in answers.items():
            self._methods[_SERVICE + name] = grpc.unary_unary_rpc_method_handler(_fixed(reply))

        async def model_infer(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            self.served += 1
            return infer

        async def server_metadata(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            return pb.ServerMetadataResponse(name="echo", version=str(self.served)).SerializeToString()

        async def model_stream_infer(
            requests: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[bytes]:
            # NOTE: the one parse here: a stream's answers are matched to its requests by id.
            async for raw in requests:
                self.served += 1
                request_id = pb.ModelInferRequest.FromString(raw).id
                yield pb.ModelStreamInferResponse(
                    infer_response=_with_id(infer, request_id)
                ).SerializeToString()

        self._methods[_SERVICE + "ModelInfer"] = grpc.unary_unary_rpc_method_handler(model_infer)
        self._methods[_SERVICE + "ModelStreamInfer"] = grpc.stream_stream_rpc_method_handler(
            model_stream_infer
        )
        self._methods[_SERVICE + "ServerMetadata"] = grpc.unary_unary_rpc_method_handler(server_metadata)

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        return self._methods.get(handler_call_details.method)  # type: ignore[attr-defined]


def _with_id(reply: bytes, request_id: str) -> pb.ModelInferResponse:
    response = pb.ModelInferResponse.FromString(reply)
    response.id = request_id
    return response


def _fixed(reply: bytes) -> Callable[[bytes, grpc.aio.ServicerContext[Any, Any]], Any]:
    async def answer(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        return reply

    return answer


async def _serve(port_file: Path) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers([_Handler()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(port))
    os.replace(tmp, port_file)  # NOTE: the parent polls for the file; it must never read half of it.
    await server.wait_for_termination()


class EchoServer:
    """The echo server in its own process (its CPU is not the client's); `close()` stops it."""

    def __init__(self, cpus: set[int] | None = None) -> None:
        """`cpus`: the CPUs it may run on (all its threads), as if it were on a machine of its own."""
        self._dir = tempfile.TemporaryDirectory(prefix="edgeperf-echo-")
        port_file = Path(self._dir.name) / "port"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.echo_kserve", str(port_file)],
            preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus),
        )
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the echo server did not start")
            time.sleep(0.05)
        self.address = f"127.0.0.1:{port_file.read_text()}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def served(self) -> int:
        """ModelInfer calls the server answered so far."""
        for attempt in range(3):
            with grpc.insecure_channel(self.address) as channel:
                call = channel.unary_unary(
                    _SERVICE + "ServerMetadata",
                    request_serializer=pb.ServerMetadataRequest.SerializeToString,
                    response_deserializer=pb.ServerMetadataResponse.FromString,
                )
                try:
                    return int(call(pb.ServerMetadataRequest(), timeout=10).version)
                except grpc.RpcError:
                    # NOTE: on a machine loaded many times over, the count query was seen CANCELLED once.
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._dir.cleanup()


def main() -> None:
    import uvloop

    uvloop.run(_serve(Path(sys.argv[1])))


if __name__ == "__main__":
    main()
