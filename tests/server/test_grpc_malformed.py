"""Bad bytes and impossible shapes through real gRPC: a status the caller can act on, one log line, no lost answers.

A real EdgeperfServer on 127.0.0.1:0; malformed messages are sent as raw bytes through grpc's generic
multicallables (no serializer), as a broken or hostile client would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos import grpc_service_pb2_grpc as pb_grpc
from edgeperf.server.app import EdgeperfServer
from edgeperf.server.settings import ServerConfig
from tests.server.edge_process import build_repository

pytestmark = pytest.mark.timeout(120)

GARBAGE = b"\xff\xff\xff\xff"
"""Field number 0x1fffffff... with wire type 7, which does not exist: no protobuf message parses it."""

_SERVICE = "/inference.GRPCInferenceService/"


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_repository(tmp_path_factory.mktemp("repo"), slow_delay_us=300_000)


@pytest.fixture
async def channel(repository: Path) -> AsyncIterator[grpc.aio.Channel]:
    config = ServerConfig(model_repository=repository, listen="127.0.0.1:0", metrics_listen=None, grace_s=5.0)
    async with EdgeperfServer(config) as server, grpc.aio.insecure_channel(server.address) as opened:
        yield opened


def _request(model: str, request_id: str, shape: tuple[int, ...] = (1, 16)) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name=model, id=request_id)
    message.inputs.add(name="INPUT0", datatype="FP32", shape=shape)
    message.raw_input_contents.append(np.ones(shape, "<f4").tobytes())
    return message


async def _bytes(*items: bytes) -> AsyncIterator[bytes]:
    for item in items:
        yield item
        await asyncio.sleep(0.02)


def _stream(channel: grpc.aio.Channel) -> grpc.aio.StreamStreamMultiCallable:
    return channel.stream_stream(
        _SERVICE + "ModelStreamInfer", response_deserializer=pb.ModelStreamInferResponse.FromString
    )


async def test_malformed_unary_is_invalid_argument_with_one_log_line(channel, caplog):
    caplog.set_level(logging.WARNING)
    call = channel.unary_unary(
        _SERVICE + "ModelInfer", response_deserializer=pb.ModelInferResponse.FromString
    )
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(GARBAGE)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "inference.ModelInferRequest" in (info.value.details() or "")
    records = [r for r in caplog.records if "ModelInferRequest" in r.getMessage()]
    assert len(records) == 3, [r.getMessage() for r in caplog.records]
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # the server serves the next well-formed call
    stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
    assert (await stub.ModelInfer(_request("tiny", "ok"))).id == "ok"


async def test_malformed_on_a_stream_is_answered_in_band_and_in_flight_requests_are_answered(channel):
    slow = _request("tiny_slow", "slow").SerializeToString()  # waits 0.3 s in the queue
    after = _request("tiny", "after").SerializeToString()
    call = _stream(channel)(_bytes(slow, GARBAGE, after))
    answers = [answer async for answer in call]
    assert await call.code() == grpc.StatusCode.OK
    by_id = {a.infer_response.id: a for a in answers}
    assert sorted(by_id) == ["", "after", "slow"]
    assert not by_id["slow"].error_message and not by_id["after"].error_message
    assert "malformed inference.ModelInferRequest" in by_id[""].error_message


async def test_malformed_on_a_triton_grpc_error_stream_ends_invalid_argument_after_the_answers(channel):
    slow = _request("tiny_slow", "slow").SerializeToString()
    call = _stream(channel)(_bytes(slow, GARBAGE), metadata=(("triton_grpc_error", "true"),))
    answers = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for answer in call:
            answers.append(answer)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [a.infer_response.id for a in answers] == ["slow"]
    assert not answers[0].error_message


@pytest.mark.parametrize("typed", [False, True])
async def test_an_unrepresentable_shape_is_invalid_argument(channel, typed):
    message = pb.ModelInferRequest(model_name="tiny", id="huge")
    tensor = message.inputs.add(name="INPUT0", datatype="FP32", shape=(0, 2**62))
    if typed:
        tensor.contents.SetInParent()
    else:
        message.raw_input_contents.append(b"")
    stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ModelInfer(message)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "INPUT0" in (info.value.details() or "")


async def test_open_services_refuse_malformed_bytes_without_a_traceback(channel, caplog):
    # NOTE: health and reflection need no token, so they must not let anyone fill the log either.
    caplog.set_level(logging.WARNING)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await channel.unary_unary("/grpc.health.v1.Health/Check")(GARBAGE)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    watch = channel.unary_stream("/grpc.health.v1.Health/Watch")(GARBAGE)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in watch:
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    reflection = channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in reflection(_bytes(GARBAGE)):
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert len([r for r in caplog.records if "that do not parse" in r.getMessage()]) == 3
