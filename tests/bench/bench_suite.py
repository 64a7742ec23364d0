"""`make bench` (suite part): what each full-size stand-in costs on this machine, and what the network adds.

For each benchmark of the Edge suite: build the full-size stand-in (cached under `--build-dir`), then
measure, in-process (edgeperf's InferenceCore: batcher + runtime, no gRPC) and through the server
(`edgeperf-server serve` as a subprocess on 127.0.0.1, unary ModelInfer over gRPC):

- batch-1 latency: sequential single-sample requests, median and p90 (ms);
- best throughput: samples/s at growing batch sizes with two requests in flight, stopping when a
  bigger batch no longer helps by 5% or the time budget is spent.

Each benchmark gets `--seconds` per path. A benchmark whose builder is missing is skipped with a line
saying so. Run: `python -m tests.bench.bench_suite [--seconds 20] [--benchmarks bert ...]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from edgeperf.benchmarks import registry
from edgeperf.benchmarks.base import Benchmark, Size
from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos import grpc_service_pb2_grpc as pb_grpc
from edgeperf.server.core import InferenceCore
from edgeperf.server.model_config import load_model_config
from edgeperf.server.types import InferRequest, datatype_of

Infer = Callable[[dict[str, np.ndarray]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PathResult:
    latency_p50_ms: float
    latency_p90_ms: float
    best_samples_per_s: float
    best_batch: int


def _batch(
    samples: Sequence[dict[str, np.ndarray]], size: int, first: int, batching: bool
) -> dict[str, np.ndarray]:
    """`size` samples from `first` on, stacked; a model without batching (max_batch_size 0) takes one as is."""
    if not batching:
        return samples[first % len(samples)]
    picked = [samples[(first + i) % len(samples)] for i in range(size)]
    return {name: np.stack([sample[name] for sample in picked]) for name in samples[0]}


async def _worker(infer: Infer, request: dict[str, np.ndarray], batch: int, end_s: float) -> int:
    """Send `request` back to back until `end_s` (perf_counter seconds), at least once; samples done."""
    count = 0
    while time.perf_counter() < end_s or count == 0:
        await infer(request)
        count += batch
    return count


async def _measure(
    infer: Infer, samples: Sequence[dict[str, np.ndarray]], max_batch: int, seconds: float
) -> PathResult:
    """`max_batch` 0: the model does not batch; samples are sent as they are, one per request."""
    batching = max_batch > 0
    await infer(_batch(samples, 1, 0, batching))  # warm-up, not counted
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds / 3
    while len(latencies) < 3 or (time.perf_counter() < deadline and len(latencies) < 200):
        one = _batch(samples, 1, len(latencies), batching)
        start = time.perf_counter_ns()
        await infer(one)
        latencies.append((time.perf_counter_ns() - start) / 1e6)
    best, best_batch = 0.0, 1
    budget_end = time.perf_counter() + 2 * seconds / 3
    batch = 1
    while batch <= max(max_batch, 1) and time.perf_counter() < budget_end:
        request = _batch(samples, batch, 0, batching)
        phase_end = time.perf_counter() + max(seconds / 6, 0.5)
        started = time.perf_counter()

        done = sum(await asyncio.gather(*(_worker(infer, request, batch, phase_end) for _ in range(2))))
        rate = done / (time.perf_counter() - started)
        if rate < best * 1.05:
            if rate > best:
                best, best_batch = rate, batch
            break
        best, best_batch = rate, batch
        batch *= 2
    return PathResult(
        latency_p50_ms=float(np.percentile(latencies, 50)),
        latency_p90_ms=float(np.percentile(latencies, 90)),
        best_samples_per_s=best,
        best_batch=best_batch,
    )


async def _in_process(
    repo: Path, name: str, samples: Sequence[dict[str, np.ndarray]], max_batch: int, seconds: float
) -> PathResult:
    async with InferenceCore(repo) as core:

        async def infer(inputs: dict[str, np.ndarray]) -> None:
            await core.infer(InferRequest(model_name=name, inputs=inputs))

        return await _measure(infer, samples, max_batch, seconds)


def _start_server(repo: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start `edgeperf-server serve` on a free port; its log goes to `log_path` (a pipe could fill up)."""
    command = [sys.executable, "-m", "edgeperf.server.cli", "serve", "--model-repository", str(repo)]
    command += ["--listen", "127.0.0.1:0", "--no-metrics", "--max-message-mb", "1024", "--log-format", "json"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        for line in log_path.read_text(errors="replace").splitlines():
            try:
                record: dict[str, Any] = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("event") == "ready":
                return process, f"127.0.0.1:{record['port']}"
        time.sleep(0.2)
    process.kill()
    process.wait()
    raise RuntimeError(f"edgeperf-server was not ready (exit {process.returncode}); see {log_path}")


async def _through_server(
    timeout_s: float,
    address: str,
    name: str,
    samples: Sequence[dict[str, np.ndarray]],
    max_batch: int,
    seconds: float,
) -> PathResult:
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    async with grpc.aio.insecure_channel(address, options=options) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]

        async def infer(inputs: dict[str, np.ndarray]) -> None:
            request = pb.ModelInferRequest(model_name=name)
            for tensor_name, array in inputs.items():
                tensor = request.inputs.add()
                tensor.name, tensor.datatype = tensor_name, datatype_of(array.dtype)
                tensor.shape.extend(array.shape)
                request.raw_input_contents.append(np.ascontiguousarray(array).tobytes())
            await stub.ModelInfer(request, timeout=timeout_s)

        return await _measure(infer, samples, max_batch, seconds)


def _prepare(name: str, benchmark: Benchmark, build_dir: Path, size: Size) -> Path:
    repo = build_dir / f"{name}-{size}"
    model_dir = repo / name
    if not (model_dir / "config.pbtxt").is_file():
        print(f"  building the {size} {name} stand-in in {model_dir} ...", flush=True)
        started = time.perf_counter()
        benchmark.write_model(model_dir, size=size)
        print(f"  built in {time.perf_counter() - started:.1f} s", flush=True)
    return repo


def _row(name: str, where: str, result: PathResult) -> str:
    return (
        f"| {name} | {where} | {result.latency_p50_ms:.2f} | {result.latency_p90_ms:.2f} "
        f"| {result.best_samples_per_s:.2f} | {result.best_batch} |"
    )


async def main_async(args: argparse.Namespace) -> int:
    rows: list[str] = []
    failures = 0
    for name in args.benchmarks:
        print(f"== {name}", flush=True)
        try:
            benchmark = registry.get(name)
            repo = _prepare(name, benchmark, args.build_dir, args.size)
            samples = [
                dict(benchmark.open_dataset("synthetic:4", size=args.size).sample(i)) for i in range(4)
            ]
        except (ImportError, AttributeError, NotImplementedError) as exc:
            print(f"  skipped: the {name} builder is missing ({type(exc).__name__}: {exc})", flush=True)
            rows.append(f"| {name} | skipped: builder missing | | | | |")
            continue
        max_batch = load_model_config(repo / name).max_batch_size
        try:
            local = await _in_process(repo, name, samples, max_batch, args.seconds)
            rows.append(_row(name, "in-process", local))
            print("  " + rows[-1], flush=True)
            process, address = _start_server(repo, args.build_dir / f"{name}-server.log")
            try:
                remote = await _through_server(
                    args.request_timeout_s, address, name, samples, max_batch, args.seconds
                )
            finally:
                process.terminate()
                process.wait(timeout=60)
            rows.append(_row(name, f"server {address}", remote))
            print("  " + rows[-1], flush=True)
        except Exception as exc:  # NOTE: a bench reports a broken benchmark and goes on with the next
            print(f"  FAILED: {type(exc).__name__}: {exc}", flush=True)
            rows.append(f"| {name} | failed: {type(exc).__name__} | | | | |")
            failures += 1
    print("\n| benchmark | path | batch-1 p50 (ms) | batch-1 p90 (ms) | best samples/s | at batch |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    print(
        f"\n({args.size} stand-ins, synthetic weights; {os.cpu_count()} CPUs; {args.seconds:.0f} s per path)"
    )
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--benchmarks", nargs="+", default=list(registry.MLPERF_BENCHMARKS))
    parser.add_argument("--seconds", type=float, default=20.0, help="time budget per benchmark and path")
    parser.add_argument("--build-dir", type=Path, default=Path("build/bench_suite"))
    parser.add_argument("--size", choices=("full", "small"), default="full", help="small: a quick smoke run")
    parser.add_argument("--request-timeout-s", type=float, default=300.0, help="gRPC deadline per request")
    args, _ = parser.parse_known_args(argv)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
