"""The floor under edgeperf's client: bare grpcio clients issuing Poisson arrivals, no edgeperf code.

    python -m tests.bench.bare_grpc ADDRESS TRANSPORT RATE SECONDS

TRANSPORT is one of `TRANSPORTS`:
  aio-unary   grpc.aio on uvloop, one unary call per request (a task per call), pre-serialised bytes
  aio-stream  grpc.aio on uvloop, one ModelStreamInfer call, a write per request, a reader task
  sync-unary  the sync API: `future()` per request from the issuing thread, completions on gRPC's thread
  sync-stream the sync API: one ModelStreamInfer call fed from a queue, responses read on a thread

Each sends the same pre-serialised ModelInferRequest (bytes in, bytes out: no protobuf work) at
absolute Poisson times for SECONDS and prints one JSON line: requests answered, process CPU seconds
and CPU us per request over the whole run, and the issue delay p50/p99 (us). `bench_client` runs
them beside edgeperf and perf_analyzer against the same echo server, so the cost of grpcio itself is
printed in the same run as the clients built on it.
"""

from __future__ import annotations

import asyncio
import json
import queue
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import grpc.aio

from edgeperf.protos import grpc_service_pb2 as pb

__all__ = ["TRANSPORTS"]

_SERVICE = "/inference.GRPCInferenceService/"
TRANSPORTS = ("aio-unary", "aio-stream", "sync-unary", "sync-stream")


def _request(request_id: str = "") -> bytes:
    return pb.ModelInferRequest(
        model_name="echo",
        id=request_id,
        inputs=[pb.ModelInferRequest.InferInputTensor(name="INPUT0", datatype="FP32", shape=[1, 16])],
        raw_input_contents=[bytes(64)],
    ).SerializeToString()


def _schedule(rate: float, seconds: float) -> list[float]:
    """Absolute offsets (s) of Poisson arrivals; a fixed seed so every transport gets the same times."""
    rng = random.Random(1)
    out, t = [], 0.0
    while t < seconds:
        out.append(t)
        t += rng.expovariate(rate)
    return out


class _Tally:
    def __init__(self, n: int) -> None:
        self.done = 0
        self.n = n
        self.finished = threading.Event()
        self.delays: list[float] = []
        self.errors: list[str] = []

    def one(self, *_: Any) -> None:
        self.done += 1
        if self.done == self.n:
            self.finished.set()


async def _aio(address: str, stream: bool, offsets: list[float], tally: _Tally) -> None:
    channel = grpc.aio.insecure_channel(address)
    request = _request("1")
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()
    if stream:
        call = channel.stream_stream(_SERVICE + "ModelStreamInfer")()

        async def read() -> None:
            async for _ in call:
                tally.one()

        reader = asyncio.create_task(read())
    else:
        infer = channel.unary_unary(_SERVICE + "ModelInfer")

        async def one() -> None:
            try:
                await infer(request)
            except grpc.aio.AioRpcError as exc:
                tally.errors.append(exc.code().name)
            tally.one()

    start = loop.time() + 0.2
    for offset in offsets:
        due = start + offset
        # NOTE: a plain sleep (uvloop's timers round to the millisecond): no spinning, so the CPU
        # figure is grpc.aio's own; the issue delay is then up to a millisecond.
        wait = due - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        tally.delays.append(loop.time() - due)
        if stream:
            await call.write(request)
        else:
            task = asyncio.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    # NOTE: completions come from gRPC's callbacks, not from an awaitable of ours: poll for the last.
    give_up = loop.time() + 30
    while tally.done < tally.n and loop.time() < give_up:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    if stream:
        await call.done_writing()
        await reader
    await channel.close()


def _sync(address: str, stream: bool, offsets: list[float], tally: _Tally) -> None:
    channel = grpc.insecure_channel(address)
    request = _request("1")
    outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    reader: threading.Thread | None = None
    send: Callable[[], None]
    if stream:

        def requests() -> Iterator[bytes]:
            while (item := outbox.get()) is not None:
                yield item

        responses = channel.stream_stream(_SERVICE + "ModelStreamInfer")(requests())

        def read() -> None:
            for _ in responses:
                tally.one()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()

        def send() -> None:
            outbox.put(request)
    else:
        infer = channel.unary_unary(_SERVICE + "ModelInfer")

        def send() -> None:
            infer.future(request).add_done_callback(tally.one)

    start = time.perf_counter() + 0.2
    for offset in offsets:
        due = start + offset
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)  # NOTE: nanosleep: precise to tens of microseconds, no spinning
        tally.delays.append(time.perf_counter() - due)
        send()
    tally.finished.wait(30)
    outbox.put(None)
    if reader is not None:
        reader.join(10)
    channel.close()


def run(address: str, transport: str, rate: float, seconds: float) -> dict[str, float]:
    offsets = _schedule(rate, seconds)
    tally = _Tally(len(offsets))
    cpu0 = time.process_time()
    if transport.startswith("aio-"):
        import uvloop

        uvloop.run(_aio(address, transport == "aio-stream", offsets, tally))
    else:
        _sync(address, transport == "sync-stream", offsets, tally)
    cpu = time.process_time() - cpu0
    delays = sorted(tally.delays)
    return {
        "requests": tally.done,
        "errors": len(tally.errors),
        "cpu_s": cpu,
        "cpu_us_per_request": cpu / max(tally.done, 1) * 1e6,
        "issue_delay_p50_us": delays[len(delays) // 2] * 1e6,
        "issue_delay_p99_us": delays[int(len(delays) * 0.99)] * 1e6,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[1] not in TRANSPORTS:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps({"transport": argv[1], **run(argv[0], argv[1], float(argv[2]), float(argv[3]))}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
