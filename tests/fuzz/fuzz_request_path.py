"""Coverage-guided fuzzing of the server's request path, from the bytes on the wire to the gRPC answer.

`make fuzz` (bounded, `FUZZ_SECONDS`, default 300): atheris drives an in-process edgeperf server through a
real gRPC channel with raw bytes as ModelInfer, ModelStreamInfer and the metadata RPCs' messages. A
structure-aware mutator (the half of the mutations that parse as a ModelInferRequest get a field changed:
shapes, datatypes, raw lengths, parameters, outputs) works beside libFuzzer's byte mutations.

The invariant, checked for every input: the call ends with a gRPC status within CALL_TIMEOUT_S, the status
is one a client error or an overload may get (never UNKNOWN or INTERNAL, which mean an unhandled
exception), and the next good request is answered with the right output. A violation is a crash: atheris
writes the input as `crash-*` under the artifact folder, and it becomes a regression test.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import tempfile
import threading
from pathlib import Path

import atheris
import grpc
import numpy as np

with atheris.instrument_imports(include=["edgeperf.server"]):
    from edgeperf.protos import grpc_service_pb2 as pb
    from edgeperf.server.app import EdgeperfServer
    from edgeperf.server.settings import ServerConfig
    from tests.server.edge_process import build_repository

SERVICE = "/inference.GRPCInferenceService/"
UNARY = ("ModelInfer", "ModelMetadata", "ModelConfig", "ModelStatistics", "RepositoryIndex", "ModelReady")
CALL_TIMEOUT_S = 10.0
GOOD_EVERY = 64
"""Check the good request after every failed call and every GOOD_EVERY calls."""
ALLOWED = frozenset(
    {
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)
DATATYPES = ("FP32", "FP16", "FP64", "INT8", "INT64", "UINT8", "BOOL", "BYTES", "BF16", "", "fp32", "X" * 40)
EXTREME_DIMS = (-1, 0, 1, 16, 2**31, 2**62, 2**63 - 1, -(2**63))


class Target:
    """The server on its own event loop thread and the channel the fuzz inputs go through."""

    def __init__(self, workdir: Path) -> None:
        repo = build_repository(workdir / "repo", slow=True, slow_delay_us=1_000)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        config = ServerConfig(
            model_repository=repo, listen="127.0.0.1:0", metrics_listen="127.0.0.1:0", grace_s=1.0
        )
        self.server = EdgeperfServer(config)
        asyncio.run_coroutine_threadsafe(self.server.__aenter__(), self.loop).result(120)
        self.channel = grpc.insecure_channel(self.server.address)
        self.unary = {name: self.channel.unary_unary(SERVICE + name) for name in UNARY}
        self.stream = self.channel.stream_stream(SERVICE + "ModelStreamInfer")
        self.good = good_request().SerializeToString()
        self.good_answer = self._good_output()
        self.calls = 0

    def _good_output(self) -> bytes:
        raw = self.unary["ModelInfer"](self.good, timeout=CALL_TIMEOUT_S)
        response = pb.ModelInferResponse.FromString(raw)
        assert response.outputs[0].name == "OUTPUT0", response
        return bytes(response.raw_output_contents[0])

    def check_good(self) -> None:
        """The server is alive and still right: the good request gets the same output as at the start."""
        if self._good_output() != self.good_answer:
            raise AssertionError("a good request was answered wrongly after a fuzz input")

    def one(self, data: bytes) -> None:
        self.calls += 1
        method = data[0] % (len(UNARY) + 1) if data else 0
        body = data[1:]
        try:
            if method == len(UNARY):
                # NOTE: one stream carries up to three messages, split at a 0xFF 0x00 marker.
                messages = body.split(b"\xff\x00")[:3]
                for _ in self.stream(iter(messages), timeout=CALL_TIMEOUT_S):
                    pass
            else:
                self.unary[UNARY[method]](body, timeout=CALL_TIMEOUT_S)
            status = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            status = exc.code()
            if status not in ALLOWED:
                raise AssertionError(f"status {status.name}: {exc.details()}") from None
        if status is not grpc.StatusCode.OK or self.calls % GOOD_EVERY == 0:
            self.check_good()


def good_request() -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name="tiny", id="good")
    message.inputs.add(name="INPUT0", datatype="FP32", shape=[1, 16])
    message.raw_input_contents.append(np.arange(16, dtype="<f4").tobytes())
    message.outputs.add(name="OUTPUT0")
    return message


def seeds() -> list[bytes]:
    """Valid and nearly valid inputs for every method, so mutation starts from the interesting paths."""
    good = good_request()
    typed = pb.ModelInferRequest(model_name="tiny")
    typed.inputs.add(name="INPUT0", datatype="FP32", shape=[2, 16]).contents.fp32_contents.extend([0.5] * 32)
    slow = pb.ModelInferRequest()
    slow.CopyFrom(good)
    slow.model_name = "tiny_slow"
    slow.parameters["timeout"].int64_param = 100
    slow.parameters["priority"].int64_param = 1
    infer = [m.SerializeToString() for m in (good, typed, slow)]
    out = [bytes([0]) + body for body in infer]
    out.append(bytes([len(UNARY)]) + b"\xff\x00".join(infer))
    for i, name in enumerate(UNARY[1:], start=1):
        del name
        out.append(bytes([i]) + pb.ModelMetadataRequest(name="tiny").SerializeToString())
    return out


def mutate_message(message: pb.ModelInferRequest, rng: random.Random) -> None:
    """Change one field the way a broken or hostile client might."""
    choice = rng.randrange(9)
    if choice == 0 and message.inputs:
        tensor = rng.choice(message.inputs)
        if tensor.shape:
            tensor.shape[rng.randrange(len(tensor.shape))] = rng.choice(EXTREME_DIMS)
        else:
            tensor.shape.append(rng.choice(EXTREME_DIMS))
    elif choice == 1 and message.inputs:
        rng.choice(message.inputs).datatype = rng.choice(DATATYPES)
    elif choice == 2 and message.raw_input_contents:
        k = rng.randrange(len(message.raw_input_contents))
        raw = message.raw_input_contents[k]
        message.raw_input_contents[k] = raw[: rng.randrange(len(raw) + 1)] + bytes(rng.randrange(3) * 4)
    elif choice == 3 and message.inputs:
        message.inputs.add().CopyFrom(rng.choice(message.inputs))
    elif choice == 4:
        parameter = message.parameters[rng.choice(["timeout", "priority", "sequence_id", "binary_data_size"])]
        kind = rng.randrange(4)
        if kind == 0:
            parameter.int64_param = rng.choice(EXTREME_DIMS)
        elif kind == 1:
            parameter.uint64_param = rng.choice([0, 1, 2**63, 2**64 - 1])
        elif kind == 2:
            parameter.string_param = rng.choice(["", "1", "x" * 100])
        else:
            parameter.bool_param = rng.random() < 0.5
    elif choice == 5:
        output = message.outputs.add(name=rng.choice(["OUTPUT0", "missing", ""]))
        if rng.random() < 0.5:
            output.parameters["classification"].int64_param = rng.choice([0, 1, 2**62])
    elif choice == 6:
        message.model_name = rng.choice(["tiny", "tiny_slow", "", "missing", "../tiny", "t" * 500])
        message.model_version = rng.choice(["", "1", "2", "-1", "x"])
    elif choice == 7 and message.inputs:
        tensor = rng.choice(message.inputs)
        contents = tensor.contents
        contents.fp32_contents.extend([float("nan"), float("inf"), 1e38][: rng.randrange(4)])
        contents.bytes_contents.extend([b"", b"\x00" * 5][: rng.randrange(3)])
        contents.int64_contents.extend([2**63 - 1][: rng.randrange(2)])
    else:
        del message.raw_input_contents[:]


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if data and rng.random() < 0.5:
        try:
            message = pb.ModelInferRequest.FromString(data[1:])
        except Exception:  # NOTE: DecodeError and the C++ parser's RuntimeError alike mean "not a message"
            message = None
        if message is not None:
            for _ in range(rng.randrange(1, 4)):
                mutate_message(message, rng)
            out = data[:1] + message.SerializeToString()
            if len(out) <= max_size:
                return out
    return bytes(atheris.Mutate(data, max_size))


def main() -> None:
    # NOTE: every malformed input is logged as a warning by design; the invariant, not the log, is checked.
    logging.disable(logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="edgeperf-fuzz-"))
    target = Target(workdir)
    argv = list(sys.argv)
    corpus = next((Path(a) for a in argv[1:] if not a.startswith("-")), None)
    if corpus is None:
        corpus = workdir / "corpus"
        argv.insert(1, str(corpus))
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(seeds()):
        (corpus / f"seed-{i}").write_bytes(seed)
    atheris.Setup(argv, target.one, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
