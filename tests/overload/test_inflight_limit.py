"""The server's own admission: a burst beyond `--max-inflight` is refused at once, counted, and forgotten.

A real server on 127.0.0.1:0 in this process with `max_inflight=4` and a model whose lone requests wait
2 s in the queue for a fuller batch, so what it admits stays in flight while the burst arrives, however
loaded the machine. Every
call of the burst ends OK, UNAVAILABLE (the model's queue of 4 is full) or RESOURCE_EXHAUSTED (the
in-flight limit), never CANCELLED or lost; the refusals are exactly what the Prometheus counter and the
log say; health and metadata are answered meanwhile; the next request after the burst is served.
"""

from __future__ import annotations

import asyncio
import logging
import re
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos import grpc_service_pb2_grpc as pb_grpc
from edgeperf.server.admission import InflightLimit, grpc_options
from edgeperf.server.app import EdgeperfServer
from edgeperf.server.settings import ServerConfig, SettingsError
from tests.server.edge_process import build_repository, tiny_request

pytestmark = pytest.mark.timeout(60)

_LIMIT = 4
_BURST = 40


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_repository(tmp_path_factory.mktemp("repo"), slow=True, slow_delay_us=2_000_000)


@pytest.fixture
async def server(repository: Path) -> AsyncIterator[EdgeperfServer]:
    config = ServerConfig(
        model_repository=repository,
        listen="127.0.0.1:0",
        metrics_listen="127.0.0.1:0",
        max_inflight=_LIMIT,
        warmup=False,
    )
    async with EdgeperfServer(config) as running:
        yield running


def _refused_counter(metrics_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    found = re.search(r'^edgeperf_requests_refused_total\{reason="max_inflight"\} (\S+)$', text, re.M)
    assert found, "edgeperf_requests_refused_total missing from /metrics"
    return float(found.group(1))


async def _status(stub: pb_grpc.GRPCInferenceServiceStub, model: str) -> str:
    try:
        await stub.ModelInfer(tiny_request(model), timeout=20)
        return "OK"
    except grpc.aio.AioRpcError as err:
        return err.code().name


async def test_a_burst_beyond_the_limit_is_refused_counted_and_the_next_request_served(
    server: EdgeperfServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert server.metrics_port is not None
    # NOTE: one connection may hold 2 x max_inflight HTTP/2 streams (grpc_options); beyond that gRPC
    # itself refuses streams, so the burst comes from several connections, each within its allowance.
    # One more connection asks for a stream and for health while the limit is reached.
    channels = [
        grpc.aio.insecure_channel(server.address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(_BURST // (2 * _LIMIT) + 1)
    ]
    try:
        stubs = [pb_grpc.GRPCInferenceServiceStub(channel) for channel in channels]
        probe = stubs.pop()
        # NOTE: connected first, so each client knows the server's stream limit before the burst.
        assert [await _status(stub, "tiny") for stub in (*stubs, probe)] == ["OK"] * len(channels)
        with caplog.at_level(logging.WARNING, logger="edgeperf.server.admission"):
            burst = [asyncio.create_task(_status(stubs[i % len(stubs)], "tiny_slow")) for i in range(_BURST)]
            # NOTE: the first refusal says the limit is reached; the admitted requests hold it for 2 s.
            for _ in range(500):
                if await asyncio.to_thread(_refused_counter, server.metrics_port):
                    break
                await asyncio.sleep(0.02)
            # NOTE: while the limit is reached: a stream is refused like a call, health still answers.
            stream = probe.ModelStreamInfer()
            with pytest.raises(grpc.aio.AioRpcError) as refused_stream:
                await asyncio.wait_for(stream.read(), 20)
            live = await probe.ServerLive(pb.ServerLiveRequest(), timeout=10)
            statuses = Counter(await asyncio.gather(*burst))
        assert live.live
        assert refused_stream.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "--max-inflight" in (refused_stream.value.details() or "")
        assert set(statuses) <= {"OK", "UNAVAILABLE", "RESOURCE_EXHAUSTED"}, statuses
        assert sum(statuses.values()) == _BURST
        assert statuses["OK"] >= 1
        assert statuses["RESOURCE_EXHAUSTED"] >= _BURST - 2 * _LIMIT, statuses
        counted = await asyncio.to_thread(_refused_counter, server.metrics_port)
        assert counted == statuses["RESOURCE_EXHAUSTED"] + 1
        refusals = [r for r in caplog.records if getattr(r, "event", "") == "refused"]
        assert refusals and refusals[0].__dict__["max_inflight"] == _LIMIT
        # NOTE: once the burst is answered nothing is held: as many requests as the limit are served.
        assert Counter(await asyncio.gather(*(_status(stubs[0], "tiny") for _ in range(_LIMIT)))) == {
            "OK": _LIMIT
        }
    finally:
        for channel in channels:
            await channel.close()


def test_grpc_options_keep_core_from_dropping_calls() -> None:
    options = dict(grpc_options(100))
    streams = options["grpc.max_concurrent_streams"]
    assert streams > 100
    # NOTE: core drops calls the event loop has not taken (CANCELLED) past these; they must sit above
    # what several connections at their stream limit can hold.
    assert options["grpc.server.max_pending_requests"] >= 8 * streams
    assert options["grpc.server.max_pending_requests_hard_limit"] >= 8 * streams
    assert options["grpc.server_max_unrequested_time_in_server"] >= 3600


def test_the_limit_is_checked(repository: Path) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        InflightLimit(0)
    with pytest.raises(SettingsError, match="--max-inflight"):
        ServerConfig(model_repository=repository, max_inflight=0)
