"""Overload and soak of a real edgeperf-server: offered load far above capacity, then hours-style steadiness.

`make overload`: measures the server's capacity (closed loop), then offers OVERLOAD_FACTOR x that rate open
loop for OVERLOAD_S with the model's max_queue_size unset and then set. Every request must end OK or be
refused with UNAVAILABLE or RESOURCE_EXHAUSTED (no other status, none lost), the server's refusal counter
(`edgeperf_requests_refused_total`) must equal the RESOURCE_EXHAUSTED answers, the server's RSS must stay
under a bound, and the report gives the p99 latency of the admitted requests. UNAVAILABLE is split into
what the server refused and counted (a full queue or byte budget: `nv_inference_request_failure`
REJECTED) and what HTTP/2 refused before the server saw it (REFUSED_STREAM, "Stream removed": one
connection opened more streams than the server allows, see server/admission.py).
`make soak`: SOAK_S (default 30 min) at SOAK_RATE requests/s (default half the measured capacity) with the
queue bounded, sampling the server's RSS and open file descriptors every 5 s; the second half's peak
may not exceed the first half's by more than SOAK_GROWTH (default 5%), fds may not grow.
Traffic goes to 127.0.0.1 only, bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import grpc.aio
import numpy as np

from edgeperf.benchmarks import registry
from edgeperf.protos import grpc_service_pb2 as pb
from tests.e2e._server import serve

INFER = "/inference.GRPCInferenceService/ModelInfer"
ADMITTED_OR_REFUSED = {"OK", "UNAVAILABLE", "UNAVAILABLE_HTTP2", "RESOURCE_EXHAUSTED"}
QUEUE_SET = 16
SMALL_INFLIGHT = 64
SIZE = os.environ.get("OVERLOAD_MODEL_SIZE", "small")
"""The scaled-down ResNet50 stand-in: some hundred images a second on 2 cores, so 10x is a rate one Python
client still sends (the full-size one manages about 1 per second on this machine)."""
_SEEN: set[str] = set()
TRANSPORT_REFUSAL = "Stream removed"
"""How an HTTP/2 REFUSED_STREAM reads on the client (UNAVAILABLE): the server never saw the call."""


@dataclass
class Samples:
    """The server process's RSS (MiB) and open file descriptors, sampled on a thread."""

    pid: int
    period_s: float = 0.2
    rss_mib: list[float] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
                rss_kib = next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmRSS:"))
                self.rss_mib.append(rss_kib / 1024)
                self.fds.append(len(os.listdir(f"/proc/{self.pid}/fd")))
            except (OSError, StopIteration):
                return
            self._stop.wait(self.period_s)

    @contextmanager
    def running(self) -> Iterator[Samples]:
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(5)


@dataclass
class LoadResult:
    offered_per_s: float
    sent_per_s: float
    """The rate the requests actually left at (below `offered_per_s` when this client is the limit)."""
    statuses: Counter[str]
    ok_latency_s: list[float]

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.ok_latency_s, 99) * 1e3) if self.ok_latency_s else float("nan")


def write_repository(root: Path, max_queue_size: int | None) -> Path:
    """The scaled-down ResNet50 stand-in (milliseconds per image on a CPU), queue bounded or not."""
    model = root / "resnet50"
    registry.get("resnet50").write_model(model, size=SIZE)
    if max_queue_size is not None:
        config = model / "config.pbtxt"
        text = config.read_text()
        policy = f"  default_queue_policy {{ max_queue_size: {max_queue_size} }}\n"
        config.write_text(text.replace("dynamic_batching {\n", "dynamic_batching {\n" + policy, 1))
    return root


def request_bytes() -> bytes:
    side = 224 if SIZE == "full" else 64
    message = pb.ModelInferRequest(model_name="resnet50")
    message.inputs.add(name="input_tensor:0", datatype="FP32", shape=[1, 3, side, side])
    image = np.random.default_rng(1).random((1, 3, side, side), dtype=np.float32)
    message.raw_input_contents.append(image.tobytes())
    message.outputs.add(name="ArgMax:0")
    return message.SerializeToString()


async def _call(call: grpc.aio.UnaryUnaryMultiCallable, body: bytes, deadline_s: float) -> tuple[str, float]:
    started = time.perf_counter()
    try:
        await call(body, timeout=deadline_s)
        return "OK", time.perf_counter() - started
    except grpc.aio.AioRpcError as exc:
        name = exc.code().name
        if name == "UNAVAILABLE" and TRANSPORT_REFUSAL in (exc.details() or ""):
            name = "UNAVAILABLE_HTTP2"
        if name not in ADMITTED_OR_REFUSED | {"UNAVAILABLE_HTTP2"} and name not in _SEEN:
            _SEEN.add(name)
            print(f"  first {name}: {exc.details()}")
        return name, time.perf_counter() - started


async def capacity_per_s(address: str, body: bytes, seconds: float = 2.0, concurrency: int = 8) -> float:
    """Completions per second with `concurrency` requests always in flight (the server saturated)."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(INFER)
        await call(body, timeout=30)
        done = 0
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < end:
                status, _ = await _call(call, body, 30)
                done += status == "OK"

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - started)


async def offer(
    address: str, body: bytes, rate_per_s: float, seconds: float, deadline_s: float
) -> LoadResult:
    """Open loop: request k leaves at start + k / rate whatever came back; every one is awaited to its end."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(INFER)
        tasks: list[asyncio.Task[tuple[str, float]]] = []
        start = time.perf_counter()
        for k in range(int(rate_per_s * seconds)):
            delay = start + k / rate_per_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_call(call, body, deadline_s)))
        sent_per_s = len(tasks) / max(time.perf_counter() - start, 1e-9)
        results = await asyncio.gather(*tasks)
    statuses = Counter(status for status, _ in results)
    return LoadResult(rate_per_s, sent_per_s, statuses, [lat for status, lat in results if status == "OK"])


def server_counts(metrics_port: int | None) -> tuple[int, int]:
    """(RESOURCE_EXHAUSTED refusals, REJECTED failures) as the server's /metrics counts them."""
    if metrics_port is None:
        raise RuntimeError("the server under test serves no metrics")
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30) as reply:
        text = reply.read().decode()
    refused = re.search(r'^edgeperf_requests_refused_total\{reason="max_inflight"\} (\S+)$', text, re.M)
    rejected = re.findall(r'^nv_inference_request_failure\{.*reason="REJECTED"\} (\S+)$', text, re.M)
    return int(float(refused.group(1))) if refused else 0, sum(int(float(v)) for v in rejected)


def overload(factor: float, seconds: float, rss_bound_mib: float) -> int:
    body = request_bytes()
    failures = 0
    # NOTE: the third case lowers --max-inflight below what the event loop takes in, so the server's own
    # refusal (RESOURCE_EXHAUSTED, counted) shows too; at the default one connection meets HTTP/2's first.
    for queue, max_inflight in ((None, None), (QUEUE_SET, None), (None, SMALL_INFLIGHT)):
        workdir = Path(tempfile.mkdtemp(prefix="edgeperf-overload-"))
        extra = ("--max-inflight", str(max_inflight)) if max_inflight else ()
        try:
            with serve(write_repository(workdir / "repo", queue), *extra) as server:
                capacity = asyncio.run(capacity_per_s(server.address, body))
                with Samples(server.process.pid).running() as samples:
                    # NOTE: a deadline long enough for an unbounded queue to drain: nothing ends by timeout.
                    result = asyncio.run(
                        offer(
                            server.address, body, capacity * factor, seconds, deadline_s=seconds * factor * 3
                        )
                    )
                refused, rejected = server_counts(server.metrics_port)
                alive = server.process.poll() is None
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        issued = int(capacity * factor * seconds)
        st = result.statuses
        answered = sum(st.values())
        other = {s: n for s, n in st.items() if s not in ADMITTED_OR_REFUSED}
        peak_rss = max(samples.rss_mib)
        print(
            f"max_queue_size {'unset' if queue is None else queue}, --max-inflight "
            f"{max_inflight or 'default'}: capacity {capacity:.1f}/s; offered "
            f"{result.offered_per_s:.1f}/s ({factor:g}x, sent at {result.sent_per_s:.0f}/s) for {seconds:g} s, "
            f"{issued} requests: OK {st['OK']}, UNAVAILABLE {st['UNAVAILABLE'] + st['UNAVAILABLE_HTTP2']} "
            f"(server {st['UNAVAILABLE']}, HTTP/2 {st['UNAVAILABLE_HTTP2']}), RESOURCE_EXHAUSTED "
            f"{st['RESOURCE_EXHAUSTED']}, other {sum(other.values())} {other or ''}; server counted "
            f"{refused} refused (max_inflight) + {rejected} rejected (queue/budget); p99 of admitted "
            f"{result.p99_ms:.1f} ms; server RSS {samples.rss_mib[0]:.0f} -> peak {peak_rss:.0f} MiB "
            f"(bound {rss_bound_mib:.0f}), fds {samples.fds[0]} -> peak {max(samples.fds)}"
        )
        problems = []
        if answered != issued:
            problems.append(f"answered {answered} of {issued}")
        if other:
            problems.append(f"other statuses {other}")
        if refused != st["RESOURCE_EXHAUSTED"]:
            problems.append(f"server counted {refused} refusals, clients got {st['RESOURCE_EXHAUSTED']}")
        if rejected < st["UNAVAILABLE"]:
            problems.append(f"server counted {rejected} rejections, clients got {st['UNAVAILABLE']}")
        if not alive:
            problems.append("the server died")
        if peak_rss > rss_bound_mib:
            problems.append(f"peak RSS {peak_rss:.0f} MiB over {rss_bound_mib:.0f}")
        if problems:
            print("  FAIL: " + "; ".join(problems))
            failures += 1
    return failures


def soak(seconds: float, growth_margin: float, rate: float | None) -> int:
    body = request_bytes()
    workdir = Path(tempfile.mkdtemp(prefix="edgeperf-soak-"))
    try:
        with serve(write_repository(workdir / "repo", QUEUE_SET)) as server:
            capacity = asyncio.run(capacity_per_s(server.address, body))
            rate = rate or capacity / 2
            with Samples(server.process.pid, period_s=5.0).running() as samples:
                statuses: Counter[str] = Counter()
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    chunk = min(60.0, end - time.monotonic())
                    statuses += asyncio.run(offer(server.address, body, rate, chunk, deadline_s=30)).statuses
            alive = server.process.poll() is None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    half = len(samples.rss_mib) // 2
    # NOTE: the first sample (taken before any load) is left out of the first half's peak.
    first_rss, second_rss = max(samples.rss_mib[1:half]), max(samples.rss_mib[half:])
    first_fds, second_fds = max(samples.fds[1:half]), max(samples.fds[half:])
    # NOTE: the medians tell growth from spikes: a peak follows the worst overload episode (a backlog
    # of calls and their buffers), a median the memory held in steady state.
    first_p50, second_p50 = np.median(samples.rss_mib[1:half]), np.median(samples.rss_mib[half:])
    print(
        f"soak {seconds:g} s at {rate:.1f}/s (capacity {capacity:.1f}/s): {sum(statuses.values())} requests "
        f"{dict(statuses)}; server RSS first half peak {first_rss:.1f} MiB, second half peak {second_rss:.1f} "
        f"MiB ({(second_rss / first_rss - 1) * 100:+.1f}%, margin {growth_margin * 100:g}%); medians "
        f"{first_p50:.1f} -> {second_p50:.1f} MiB; last {samples.rss_mib[-1]:.1f} MiB; fds peak "
        f"{first_fds} -> {second_fds}"
    )
    flat = second_rss <= first_rss * (1 + growth_margin) and second_fds <= first_fds
    if not flat or not alive or set(statuses) - ADMITTED_OR_REFUSED:
        print("  FAIL: RSS or fds grew, the server died, or a request ended with another status")
        return 1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    over = sub.add_parser("overload")
    over.add_argument("--factor", type=float, default=10.0)
    over.add_argument("--seconds", type=float, default=float(os.environ.get("OVERLOAD_S", "3")))
    over.add_argument("--rss-bound-mib", type=float, default=1024.0)
    long = sub.add_parser("soak")
    long.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_S", "1800")))
    long.add_argument("--growth-margin", type=float, default=float(os.environ.get("SOAK_GROWTH", "0.05")))
    long.add_argument(
        "--rate",
        type=float,
        default=float(os.environ["SOAK_RATE"]) if os.environ.get("SOAK_RATE") else None,
        help="requests/s (default half the measured capacity)",
    )
    args = parser.parse_args()
    if args.what == "overload":
        sys.exit(1 if overload(args.factor, args.seconds, args.rss_bound_mib) else 0)
    sys.exit(soak(args.seconds, args.growth_margin, args.rate))


if __name__ == "__main__":
    main()
