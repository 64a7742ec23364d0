"""The client's own HTTP/2 transport against a real grpc.aio server on 127.0.0.1:0 (bytes in, bytes out)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest

from edgeperf.client.errors import RunSetupError
from edgeperf.client.issue.h2_channel import H2Call, H2Channel, parse_address

ECHO = "/test.Echo/Unary"
STREAM = "/test.Echo/Stream"


class Calls:
    """What the server saw."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most_in_flight = 0
        self.metadata: list[dict[str, str]] = []
        self.time_remaining: list[float | None] = []


def handler(calls: Calls) -> grpc.GenericRpcHandler:
    async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        calls.metadata.append({k: str(v) for k, v in context.invocation_metadata() or ()})
        calls.time_remaining.append(context.time_remaining())
        calls.in_flight += 1
        calls.most_in_flight = max(calls.most_in_flight, calls.in_flight)
        try:
            if request.startswith(b"sleep:"):
                await asyncio.sleep(float(request[6:]))
            if request.startswith(b"abort"):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad input: 100% ünïcode\nline 2")
            return request[::-1] if request.startswith(b"rev") else request
        finally:
            calls.in_flight -= 1

    async def stream(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        async for request in requests:
            yield request

    return grpc.method_handlers_generic_handler(
        "test.Echo",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Stream": grpc.stream_stream_rpc_method_handler(stream),
        },
    )


async def start_server(calls: Calls, port: int = 0, **options: Any) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", -1),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),
            *options.items(),
        ]
    )
    server.add_generic_rpc_handlers((handler(calls),))
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, port


@pytest.fixture
async def echo() -> AsyncIterator[tuple[Calls, str]]:
    calls = Calls()
    server, port = await start_server(calls)
    try:
        yield calls, f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


class Result:
    """A CallListener that keeps what it hears; `wait()` until the call ended."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.status: tuple[str, str] | None = None
        self.ended = asyncio.Event()

    def message(self, data: bytes) -> None:
        assert self.status is None, "a message after the end"
        self.messages.append(data)

    def closed(self, status: str, details: str) -> None:
        assert self.status is None, "ended twice"
        self.status = (status, details)
        self.ended.set()

    async def wait(self, timeout_s: float = 10) -> tuple[str, str]:
        await asyncio.wait_for(self.ended.wait(), timeout_s)
        assert self.status is not None
        return self.status


async def unary(channel: H2Channel, request: bytes, timeout_s: float = 10) -> Result:
    result = Result()
    channel.call(ECHO, result, request)
    await result.wait(timeout_s)
    return result


def test_addresses() -> None:
    assert parse_address("127.0.0.1:8001") == ("127.0.0.1", 8001)
    assert parse_address("[::1]:8001") == ("::1", 8001)
    assert parse_address("edge.local:8001") == ("edge.local", 8001)
    assert parse_address("unix:/tmp/sock") is None
    assert parse_address("::1:8001") is None
    assert parse_address("host") is None
    with pytest.raises(RunSetupError, match=r"\[IPV6\]:PORT"):
        H2Channel("::1:8001")


async def test_messages_larger_than_every_window_and_frame_both_ways(echo: tuple[Calls, str]) -> None:
    # NOTE: 3 MiB is past the peer's initial windows (64 KiB), its frame size (16 KiB) and ours (1 MiB).
    _, address = echo
    channel = H2Channel(address, deadline_ms=30_000)
    try:
        big = b"rev" + bytes(range(256)) * (3 * 4096)
        got = await asyncio.gather(*(unary(channel, big + bytes([k])) for k in range(4)))
        small = await unary(channel, b"x")
    finally:
        await channel.close()
    for k, result in enumerate(got):
        assert result.status == ("OK", "")
        assert result.messages == [(big + bytes([k]))[::-1]]
    assert small.messages == [b"x"] and small.status == ("OK", "")


async def test_a_stream_keeps_order_across_many_large_messages(echo: tuple[Calls, str]) -> None:
    _, address = echo
    channel = H2Channel(address)
    result = Result()
    opened: asyncio.Future[H2Call] = asyncio.get_running_loop().create_future()
    try:
        channel.stream_call(STREAM, result, opened.set_result)
        sent = [bytes([k % 256]) * (1_000 + 997 * k) for k in range(120)]  # up to 120 KB each
        call = await asyncio.wait_for(opened, 10)
        for message in sent:
            call.write(message)
        call.done_writing()
        assert await result.wait() == ("OK", "")
    finally:
        await channel.close()
    assert result.messages == sent


async def test_status_message_and_metadata_cross_the_wire(echo: tuple[Calls, str]) -> None:
    calls, address = echo
    channel = H2Channel(address, metadata=(("authorization", "Bearer s3cret"),), deadline_ms=5_000)
    try:
        failed = await unary(channel, b"abort")
        ok = await unary(channel, b"fine")
    finally:
        await channel.close()
    assert failed.status == ("INVALID_ARGUMENT", "bad input: 100% ünïcode\nline 2")
    assert failed.messages == []
    assert ok.status == ("OK", "") and ok.messages == [b"fine"]
    assert all(m.get("authorization") == "Bearer s3cret" for m in calls.metadata)
    # NOTE: the deadline travels as grpc-timeout, so the server knows it too.
    assert all(r is not None and 0 < r <= 5.0 for r in calls.time_remaining)


async def test_a_deadline_ends_a_call_the_server_does_not_answer(echo: tuple[Calls, str]) -> None:
    _, address = echo
    channel = H2Channel(address, deadline_ms=200)
    t0 = time.perf_counter()
    try:
        late = await unary(channel, b"sleep:3")
        after = await unary(channel, b"next")
    finally:
        await channel.close()
    assert late.status is not None and late.status[0] == "DEADLINE_EXCEEDED"
    assert time.perf_counter() - t0 < 2.5
    assert after.status == ("OK", "")


async def test_calls_past_the_concurrent_stream_limit_wait_their_turn() -> None:
    calls = Calls()
    server, port = await start_server(calls, **{"grpc.max_concurrent_streams": 2})
    channel = H2Channel(f"127.0.0.1:{port}", deadline_ms=20_000)
    try:
        results = await asyncio.gather(*(unary(channel, b"sleep:0.05") for _ in range(12)))
    finally:
        await channel.close()
        await server.stop(None)
    assert [r.status for r in results] == [("OK", "")] * 12
    assert calls.most_in_flight <= 2


async def test_an_unreachable_server_fails_fast_and_is_found_once_it_listens() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    channel = H2Channel(f"127.0.0.1:{port}", deadline_ms=5_000, backoff_ms=(100, 200))
    calls = Calls()
    server: grpc.aio.Server | None = None
    try:
        refused = await unary(channel, b"a", timeout_s=5)
        in_backoff = await unary(channel, b"b", timeout_s=1)
        server, _ = await start_server(calls, port=port)
        await asyncio.sleep(0.3)
        back = await unary(channel, b"c")
    finally:
        await channel.close()
        if server is not None:
            await server.stop(None)
    assert refused.status is not None and refused.status[0] == "UNAVAILABLE"
    assert "failed to connect" in refused.status[1]
    assert in_backoff.status is not None and in_backoff.status[0] == "UNAVAILABLE"
    assert back.status == ("OK", "") and back.messages == [b"c"]


async def test_a_server_that_stops_ends_every_call_and_the_channel_reconnects() -> None:
    calls = Calls()
    server, port = await start_server(calls)
    address = f"127.0.0.1:{port}"
    channel = H2Channel(address, deadline_ms=10_000, backoff_ms=(50, 100))
    stream = Result()
    try:
        assert (await unary(channel, b"warm")).status == ("OK", "")
        channel.stream_call(STREAM, stream, lambda call: None)
        pending = Result()
        channel.call(ECHO, pending, b"sleep:5")
        await asyncio.sleep(0.2)
        await server.stop(0)
        ended = await pending.wait(5)
        stream_end = await stream.wait(5)
        server, _ = await start_server(calls, port=port)
        deadline = time.monotonic() + 5
        again = await unary(channel, b"again")
        while again.status != ("OK", "") and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            again = await unary(channel, b"again")
    finally:
        await channel.close()
        await server.stop(None)
    assert ended[0] in ("UNAVAILABLE", "CANCELLED"), ended
    assert stream_end[0] in ("UNAVAILABLE", "CANCELLED"), stream_end
    assert again.status == ("OK", "") and again.messages == [b"again"]


async def test_closing_the_channel_ends_what_is_in_flight(echo: tuple[Calls, str]) -> None:
    _, address = echo
    channel = H2Channel(address)
    pending = Result()
    channel.call(ECHO, pending, b"sleep:5")
    await asyncio.sleep(0.2)
    await channel.close()
    assert await pending.wait(1) == ("CANCELLED", "the channel was closed")
    after = await unary(channel, b"x", timeout_s=1)
    assert after.status == ("CANCELLED", "the channel was closed")
