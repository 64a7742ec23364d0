"""The network between client and server, measured before a run: round trips and request bandwidth.

Round trips are timed with edgeperf's Echo RPC, sequentially, with no payload and with a payload the
size of the run's requests (the response stays empty, as an inference answer is small next to its
input); a Triton server without Echo is pinged with ServerLive instead (no payload). The request
bandwidth is what a few Echo calls in flight carry to the server per second. The median round trip with
the run's request size is the part of the end-to-end latency the network (and both gRPC stacks)
explains; `share_of` gives it as a fraction of a measured latency.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import grpc
import numpy as np

from edgeperf.protos import edgeperf_service_pb2 as epb
from edgeperf.protos import grpc_service_pb2 as pb

__all__ = ["DEFAULT_PINGS", "NetworkReport", "characterise_network"]

DEFAULT_PINGS: Final = 100
_BANDWIDTH_S: Final = 0.25
"""How long the bandwidth probe runs at most: enough for a stable number on a LAN, cheap before each run."""
_BANDWIDTH_CHUNK: Final = 1 << 20
_IN_FLIGHT: Final = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkReport:
    method: str
    """"Echo" (edgeperf) or "ServerLive" (a server without Echo: no payload round trips, no bandwidth)."""
    pings: int
    rtt_empty_p50_us: float
    rtt_empty_p99_us: float
    request_bytes: int
    rtt_request_p50_us: float | None
    rtt_request_p99_us: float | None
    request_mbit_s: float | None

    def share_of(self, latency_ns: float) -> float | None:
        """The part of `latency_ns` the network round trip with a request explains (0..1)."""
        rtt = self.rtt_request_p50_us if self.rtt_request_p50_us is not None else self.rtt_empty_p50_us
        return None if latency_ns <= 0 else min(rtt * 1000 / latency_ns, 1.0)

    def as_json(self) -> dict[str, object]:
        return {
            "method": self.method,
            "pings": self.pings,
            "rtt_empty_us": {"p50": self.rtt_empty_p50_us, "p99": self.rtt_empty_p99_us},
            "request_bytes": self.request_bytes,
            "rtt_request_us": None
            if self.rtt_request_p50_us is None
            else {"p50": self.rtt_request_p50_us, "p99": self.rtt_request_p99_us},
            "request_mbit_s": self.request_mbit_s,
        }

    def text(self) -> str:
        line = f"network: RTT p50 {self.rtt_empty_p50_us:.0f} us p99 {self.rtt_empty_p99_us:.0f} us (empty, {self.method})"
        if self.rtt_request_p50_us is not None:
            line += (
                f"; with {self.request_bytes} B requests p50 {self.rtt_request_p50_us:.0f} us "
                f"p99 {self.rtt_request_p99_us:.0f} us"
            )
        if self.request_mbit_s is not None:
            line += f"; request bandwidth {self.request_mbit_s:.0f} Mbit/s"
        return line


def _percentiles(samples_ns: list[int]) -> tuple[float, float]:
    values = np.asarray(samples_ns, dtype=np.float64) / 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


async def _round_trips(
    call: grpc.aio.UnaryUnaryMultiCallable, request: object, count: int, **kw: object
) -> list[int]:
    await call(request, **kw)  # NOTE: the first call may open the connection; it is not counted
    out: list[int] = []
    for _ in range(count):
        t0 = time.perf_counter_ns()
        await call(request, **kw)
        out.append(time.perf_counter_ns() - t0)
    return out


async def _bandwidth(call: grpc.aio.UnaryUnaryMultiCallable, chunk: int, **kw: object) -> float:
    request = epb.EchoRequest(payload=bytes(chunk))
    sent = 0
    t0 = time.perf_counter_ns()
    deadline = t0 + int(_BANDWIDTH_S * 1e9)

    async def worker() -> None:
        nonlocal sent
        while time.perf_counter_ns() < deadline:
            await call(request, **kw)
            sent += chunk

    await asyncio.gather(*(worker() for _ in range(_IN_FLIGHT)))
    elapsed_s = (time.perf_counter_ns() - t0) / 1e9
    return sent * 8 / elapsed_s / 1e6


async def characterise_network(
    channel: grpc.aio.Channel,
    metadata: Sequence[tuple[str, str]] | None,
    *,
    request_bytes: int,
    pings: int = DEFAULT_PINGS,
    timeout_s: float = 10.0,
) -> NetworkReport:
    """Time `pings` round trips empty and with `request_bytes`, then the request bandwidth.

    Raises:
        grpc.aio.AioRpcError: the server answered neither Echo nor ServerLive.
    """
    kw: dict[str, object] = {"timeout": timeout_s, "metadata": metadata}
    echo = channel.unary_unary(
        "/edgeperf.v1.EdgeperfService/Echo",
        request_serializer=epb.EchoRequest.SerializeToString,
        response_deserializer=epb.EchoResponse.FromString,
    )
    loaded: list[int] | None = None
    request_mbit_s: float | None = None
    try:
        empty = await _round_trips(echo, epb.EchoRequest(), pings, **kw)
    except grpc.aio.AioRpcError as exc:
        if exc.code() is not grpc.StatusCode.UNIMPLEMENTED:
            raise
        method = "ServerLive"
        live = channel.unary_unary(
            "/inference.GRPCInferenceService/ServerLive",
            request_serializer=pb.ServerLiveRequest.SerializeToString,
            response_deserializer=pb.ServerLiveResponse.FromString,
        )
        empty = await _round_trips(live, pb.ServerLiveRequest(), pings, **kw)
    else:
        method = "Echo"
        loaded = await _round_trips(echo, epb.EchoRequest(payload=bytes(request_bytes)), pings, **kw)
        request_mbit_s = await _bandwidth(echo, max(request_bytes, _BANDWIDTH_CHUNK), **kw)
    empty_p50, empty_p99 = _percentiles(empty)
    request_p50, request_p99 = (None, None) if loaded is None else _percentiles(loaded)
    return NetworkReport(
        method=method,
        pings=pings,
        rtt_empty_p50_us=empty_p50,
        rtt_empty_p99_us=empty_p99,
        request_bytes=request_bytes,
        rtt_request_p50_us=request_p50,
        rtt_request_p99_us=request_p99,
        request_mbit_s=request_mbit_s,
    )
