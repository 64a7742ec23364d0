"""The window: integration, interpolation to the client's window length, the headline total, and the
MeasurePower stream and Echo over a real in-process gRPC server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from edgeperf.protos import edgeperf_service_pb2 as epb
from edgeperf.protos import edgeperf_service_pb2_grpc as epb_grpc
from edgeperf.server.grpc_service import EdgeperfServicer
from edgeperf.server.power import PowerError, PowerWindow, Scope, SourceInfo


class Ramp:
    """An energy counter rising at `watts` on the monotonic clock, or constant `watts` samples."""

    def __init__(
        self, name: str, watts: float, *, kind: str = "energy", scope: Scope = Scope.COMPONENT
    ) -> None:
        self.info = SourceInfo(name=name, kind=kind, covers=f"{name} only", scope=scope)  # type: ignore[arg-type]
        self._watts = watts
        self._t0 = time.monotonic_ns()
        self.fail = False
        self.closed = False

    def read(self) -> float:
        if self.fail:
            raise PowerError(f"{self.info.name}: gone")
        if self.info.kind == "power":
            return self._watts
        return self._watts * (time.monotonic_ns() - self._t0) / 1e9

    def close(self) -> None:
        self.closed = True


async def test_energy_and_power_sources_integrate_to_their_watts() -> None:
    window = PowerWindow([Ramp("pkg", 12.0), Ramp("gpu", 30.0, kind="power")])
    await window.begin()
    # NOTE: 1 s, not 0.1 s: the window stamps its reads a few ms apart from the fake counter's own clock
    # reads, and over 0.1 s that skew alone was 1 % of the energy (41.5 W seen on a quiet CI machine).
    for _ in range(5):
        await asyncio.sleep(0.2)
        await window.tick()
    result = window.result()
    assert result.average_w == pytest.approx(42.0, rel=0.01)
    assert result.energy_j == pytest.approx(42.0 * result.window_ns / 1e9, rel=0.01)
    assert [s.average_w for s in result.sources] == [
        pytest.approx(12.0, rel=0.01),
        pytest.approx(30.0, rel=0.01),
    ]
    assert result.covers == "pkg only + gpu only" and result.scope is Scope.COMPONENT


async def test_window_ends_at_the_clients_length_not_at_the_last_read() -> None:
    window = PowerWindow([Ramp("pkg", 10.0)])
    await window.begin()
    await asyncio.sleep(0.05)
    await window.tick()
    await asyncio.sleep(0.05)
    await window.tick()
    result = window.result(window_ns=60_000_000)
    assert result.window_ns == 60_000_000
    assert result.energy_j == pytest.approx(0.6, rel=0.02)


async def test_the_widest_scope_is_the_headline() -> None:
    window = PowerWindow(
        [Ramp("pkg", 10.0), Ramp("wall", 80.0, kind="power", scope=Scope.WALL), Ramp("dram", 2.0)]
    )
    await window.begin()
    await asyncio.sleep(0.02)
    tick = await window.tick()
    assert tick.total_w == pytest.approx(80.0)
    result = window.result()
    assert result.average_w == pytest.approx(80.0, rel=0.01) and result.scope is Scope.WALL
    assert len(result.sources) == 3


async def _serve(servicer: EdgeperfServicer) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    epb_grpc.add_EdgeperfServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


async def _marks(window_ns: int, gap_s: float) -> AsyncIterator[epb.PowerMark]:
    yield epb.PowerMark(kind=epb.PowerMark.BEGIN, interval_ms=10)
    await asyncio.sleep(gap_s)
    yield epb.PowerMark(kind=epb.PowerMark.END, window_ns=window_ns)


async def _one_mark(kind: epb.PowerMark.Kind.ValueType) -> AsyncIterator[epb.PowerMark]:
    """One mark, then silence: a refusal ends the call while the client is not writing."""
    yield epb.PowerMark(kind=kind)
    await asyncio.sleep(30)


async def test_measure_power_streams_ticks_and_the_window_total() -> None:
    server, address = await _serve(EdgeperfServicer(power_sources=[Ramp("pkg", 25.0)]))
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = epb_grpc.EdgeperfServiceStub(channel)  # type: ignore[no-untyped-call]
            events = [e async for e in stub.MeasurePower(_marks(100_000_000, 0.15))]
            description = await stub.SystemDescription(epb.SystemDescriptionRequest())
    finally:
        await server.stop(None)
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "started" and kinds[-1] == "result" and kinds.count("tick") >= 5
    assert events[0].started.sources[0].name == "pkg"
    result = events[-1].result
    assert result.window_ns == 100_000_000
    assert result.average_w == pytest.approx(25.0, rel=0.02)
    assert result.energy_j == pytest.approx(2.5, rel=0.02)
    assert [s.name for s in description.power_sources] == ["pkg"]


async def test_measure_power_refusals() -> None:
    failing = Ramp("pkg", 1.0)
    server, address = await _serve(EdgeperfServicer())
    server2, address2 = await _serve(EdgeperfServicer(power_sources=[failing]))
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = epb_grpc.EdgeperfServiceStub(channel)  # type: ignore[no-untyped-call]
            with pytest.raises(grpc.aio.AioRpcError) as no_source:
                _ = [e async for e in stub.MeasurePower(_one_mark(epb.PowerMark.BEGIN))]
            assert no_source.value.code() is grpc.StatusCode.FAILED_PRECONDITION
            with pytest.raises(grpc.aio.AioRpcError) as too_big:
                await stub.Echo(epb.EchoRequest(response_bytes=2**31 - 1))
            assert too_big.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            echoed = await stub.Echo(epb.EchoRequest(payload=b"x" * 1000, response_bytes=10))
            assert echoed.payload == bytes(10)
        async with grpc.aio.insecure_channel(address2) as channel:
            stub = epb_grpc.EdgeperfServiceStub(channel)  # type: ignore[no-untyped-call]

            with pytest.raises(grpc.aio.AioRpcError) as bad:
                _ = [e async for e in stub.MeasurePower(_one_mark(epb.PowerMark.END))]
            assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT

            async def fail_midway() -> AsyncIterator[epb.PowerMark]:
                yield epb.PowerMark(kind=epb.PowerMark.BEGIN, interval_ms=10)
                await asyncio.sleep(0.05)
                failing.fail = True
                await asyncio.sleep(30)  # NOTE: the server ends the call at its next read
                yield epb.PowerMark(kind=epb.PowerMark.END)

            with pytest.raises(grpc.aio.AioRpcError) as gone:
                _ = [e async for e in stub.MeasurePower(fail_midway())]
            assert gone.value.code() is grpc.StatusCode.UNAVAILABLE
            assert "pkg: gone" in (gone.value.details() or "")
    finally:
        await server.stop(None)
        await server2.stop(None)
