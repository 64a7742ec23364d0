"""Requests refused before they reach the model still count as failures, as Triton counts them.

Triton charges a request that fails after its model is resolved (bad input bytes, a shape it cannot take,
an unsupported parameter) to that model: `inference_stats.fail` and `nv_inference_request_failure`
with reason OTHER. A request for a model that does not exist is charged to nobody. A real server on
127.0.0.1:0, gRPC and the metrics port over HTTP.
"""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos import grpc_service_pb2_grpc as pb_grpc
from edgeperf.server.app import EdgeperfServer
from edgeperf.server.settings import ServerConfig
from tests.server.edge_process import build_repository, tiny_request

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_repository(tmp_path_factory.mktemp("repo"), slow=False)


@pytest.fixture
async def server(repository: Path) -> AsyncIterator[EdgeperfServer]:
    config = ServerConfig(model_repository=repository, listen="127.0.0.1:0", metrics_listen="127.0.0.1:0")
    async with EdgeperfServer(config) as running:
        yield running


def _short_raw(model: str) -> pb.ModelInferRequest:
    return tiny_request(model, values=15)


def _sequence(model: str) -> pb.ModelInferRequest:
    message = tiny_request(model)
    message.parameters["sequence_id"].int64_param = 7
    return message


def _failures(metrics_port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    found = re.findall(
        r'^nv_inference_request_failure\{model="tiny",version="1",reason="(\w+)"\} (\d+)$', text, re.M
    )
    return {reason: int(value) for reason, value in found}


async def test_requests_refused_before_the_model_count_as_failures(server):
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        statistics = pb.ModelStatisticsRequest(name="tiny")
        before = (await stub.ModelStatistics(statistics)).model_stats[0].inference_stats
        for message, code in (
            (_short_raw("tiny"), grpc.StatusCode.INVALID_ARGUMENT),
            (_short_raw("tiny"), grpc.StatusCode.INVALID_ARGUMENT),
            (_sequence("tiny"), grpc.StatusCode.UNIMPLEMENTED),
            (_short_raw("nope"), grpc.StatusCode.INVALID_ARGUMENT),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.ModelInfer(message)
            assert info.value.code() == code
        answers = [a async for a in stub.ModelStreamInfer(_one(_short_raw("tiny")))]
        assert len(answers) == 1 and "raw contents are 60 bytes" in answers[0].error_message
        after = (await stub.ModelStatistics(statistics)).model_stats[0].inference_stats
    assert after.fail.count - before.fail.count == 4
    assert after.success.count == before.success.count
    assert await asyncio.to_thread(_failures, server.metrics_port) == {"OTHER": 4}


async def _one(message: pb.ModelInferRequest) -> AsyncIterator[pb.ModelInferRequest]:
    yield message
