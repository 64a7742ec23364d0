"""The metrics port under many idle connections: no thread per connection, scrapes and gRPC stay fast.

The real program (`edgeperf-server serve` in a subprocess) with 600 idle TCP connections on its metrics
port; its thread count must not follow, a scrape and a gRPC inference must still answer promptly. The
in-process cases check the connection cap, the eviction of silent connections and the idle timeout.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from edgeperf.protos import grpc_service_pb2_grpc as pb_grpc
from edgeperf.server.metrics import ServerMetrics
from edgeperf.server.metrics_http import MetricsHttpServer, MetricsHttpThread
from tests.server.edge_process import build_repository, server_process, tiny_request

pytestmark = pytest.mark.timeout(120)

_IDLE = 600


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        return reply.read().decode()


async def test_idle_connections_cost_no_threads_and_do_not_slow_grpc(tmp_path: Path) -> None:
    repository = build_repository(tmp_path / "repo", slow=False)
    with server_process(repository, "--no-warmup") as server:
        assert server.metrics_port is not None
        pid = server.process.pid
        _scrape(server.metrics_port)
        threads_before = _threads(pid)
        idle = [
            socket.create_connection(("127.0.0.1", server.metrics_port), timeout=10) for _ in range(_IDLE)
        ]
        try:
            await asyncio.sleep(0.5)  # NOTE: let the server accept them all
            threads_with_idle = _threads(pid)
            started = time.perf_counter()
            assert "nv_inference_request_success" in await asyncio.to_thread(_scrape, server.metrics_port)
            scrape_s = time.perf_counter() - started
            message = tiny_request()
            async with grpc.aio.insecure_channel(server.address) as channel:
                stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
                started = time.perf_counter()
                await stub.ModelInfer(message, timeout=10)
                grpc_s = time.perf_counter() - started
        finally:
            for sock in idle:
                sock.close()
    assert threads_with_idle <= threads_before + 2, (threads_before, threads_with_idle)
    assert scrape_s < 2.0, f"a scrape took {scrape_s:.2f} s next to {_IDLE} idle connections"
    assert grpc_s < 2.0, f"a gRPC inference took {grpc_s:.2f} s next to {_IDLE} idle metrics connections"


async def test_a_new_connection_over_the_cap_evicts_the_oldest_silent_one_and_idle_ones_time_out() -> None:
    server = MetricsHttpServer(ServerMetrics(), max_connections=4, timeout_s=0.5)
    port = await server.start("127.0.0.1", 0)
    try:
        held = []
        for _ in range(4):
            held.append(await asyncio.open_connection("127.0.0.1", port))
            await asyncio.sleep(0.02)  # NOTE: accepted in this order
        assert server.open_connections == 4
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), timeout=5)
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"nv_inference_request_success" in answer
        writer.close()
        # the oldest silent connection made room; the others are dropped after timeout_s
        assert await asyncio.wait_for(held[0][0].read(), timeout=0.3) == b""
        started = time.perf_counter()
        for idle_reader, _ in held[1:]:
            assert await asyncio.wait_for(idle_reader.read(), timeout=5) == b""
        assert time.perf_counter() - started < 2.0
        assert server.open_connections == 0
        for _, idle_writer in held:
            idle_writer.close()
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"POST /metrics HTTP/1.1\r\n\r\n", b"405"),
        (b"GET /other HTTP/1.1\r\n\r\n", b"404"),
        (b"GET\r\n\r\n", b"400"),
    ],
)
async def test_requests_other_than_get_metrics_are_refused(request_bytes: bytes, status: bytes) -> None:
    server = MetricsHttpServer(ServerMetrics())
    port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request_bytes)
        answer = await asyncio.wait_for(reader.read(), timeout=5)
        assert answer.startswith(b"HTTP/1.1 " + status + b" ")
        writer.close()
    finally:
        await server.close()


def test_the_threaded_form_uses_one_thread_for_any_number_of_connections() -> None:
    # NOTE: what the parent of `serve --workers N` runs, having no event loop of its own.
    server = MetricsHttpThread(ServerMetrics())
    threads_before = threading.active_count()
    port = server.start("127.0.0.1", 0)
    try:
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(200)]
        try:
            assert "nv_inference_request_success" in _scrape(port)
            assert threading.active_count() <= threads_before + 2  # the loop thread and the render pool's
        finally:
            for sock in idle:
                sock.close()
    finally:
        server.close()
        server.close()
    assert threading.active_count() <= threads_before + 1
