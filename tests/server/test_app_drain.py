"""SIGTERM drains: requests in flight complete, new ones are refused with Triton's message, exit status 0."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos import grpc_service_pb2_grpc as pb_grpc
from tests.server.edge_process import build_repository, server_process, tiny_request

pytestmark = pytest.mark.timeout(120)

DELAY_US = 2_500_000
SHUTDOWN_MESSAGE = "GRPC server is shutting down and has stopped accepting new requests."


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_signal_drains_in_flight_refuses_new_and_exits_zero(
    tmp_path: Path, sig: signal.Signals
) -> None:
    repository = build_repository(tmp_path, slow_delay_us=DELAY_US)
    with server_process(repository, "--grace-s", "20") as server:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
            health = health_pb2_grpc.HealthStub(channel)
            assert (await stub.ModelInfer(tiny_request("tiny"))).outputs[0].name == "OUTPUT0"
            # Three requests that sit in tiny_slow's queue for DELAY_US: in flight when the signal arrives.
            in_flight = [asyncio.ensure_future(stub.ModelInfer(tiny_request("tiny_slow"))) for _ in range(3)]
            await asyncio.sleep(0.3)
            assert not any(call.done() for call in in_flight)
            signalled = time.monotonic()
            server.process.send_signal(sig)
            await asyncio.sleep(0.2)

            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.ModelInfer(tiny_request("tiny"))
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert refused.value.details() == SHUTDOWN_MESSAGE
            status = (await health.Check(health_pb2.HealthCheckRequest())).status
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            assert not (await stub.ServerReady(pb.ServerReadyRequest())).ready
            assert not any(call.done() for call in in_flight), (
                "the refusal must come while requests are in flight"
            )

            answers = await asyncio.gather(*in_flight)
            assert [a.model_name for a in answers] == ["tiny_slow"] * 3
        assert server.process.wait(timeout=30) == 0
        assert time.monotonic() - signalled < 15
        events = [json.loads(line).get("event") for line in server.stderr_lines if line.startswith("{")]
        assert events.index("ready") < events.index("draining") < events.index("stopped")
