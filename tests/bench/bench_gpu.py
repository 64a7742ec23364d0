"""The GPU device check (issue 12): the five benchmarks at full size on CUDA and TensorRT FP16, through the
server on loopback against in-process ONNX Runtime on the same GPU.

    bash tests/bench/bench_gpu.sh            # installs edgeperf[gpu] in its own venv, then runs this
    python -m tests.bench.bench_gpu [--providers cuda tensorrt] [--benchmarks bert ...] [--seconds 6]

For each benchmark: build the full-size stand-in once (cached in --build-dir), then per provider write a
GPU copy of its config (`instance_group { kind: KIND_GPU count: N gpus: [0] }`, and for TensorRT
`gpu_execution_accelerator [ { name: "tensorrt" parameters { precision_mode: FP16, engine cache } } ]`)
and measure with tests/bench/bench_suite.py's procedure:

- Offline: best samples/s at growing batch sizes, two requests in flight, in-process and through the
  server; the ratio server / in-process (goal >= 0.95);
- SingleStream: batch-1 requests one at a time; the server's p50 minus in-process p50 (goal <= 0.3 ms).

"In-process" is the server's own runtime code (OnnxRuntime with I/O binding, or the pipeline) with the
same provider options, N instances used round-robin, without the batcher or gRPC: the difference is what
the server adds. The server runs as `edgeperf-server serve` on 127.0.0.1. TensorRT engines are cached
under --build-dir, so the server reuses what the in-process run built.

Without a GPU (no CUDA provider in onnxruntime, or NVML sees no GPU) it stops at once with exit 2 and
says why. A --budget-s deadline stops starting new measurements, so a short device lease still prints
a table of what was measured.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeperf.server.gpu.nvml import GpuInfo, describe_gpus
from edgeperf.server.model_config import ModelConfig, load_model_config
from edgeperf.server.runtime.base import Runtime

PROVIDERS: dict[str, str] = {"cuda": "CUDA", "tensorrt": "TensorRT FP16"}
OFFLINE_GOAL = 0.95
ADDED_P50_GOAL_MS = 0.3


class NoGpu(RuntimeError):
    """This machine cannot run the GPU benchmark; the message says what is missing."""


def preflight(providers: Sequence[str], available: Sequence[str], gpus: Sequence[tuple[GpuInfo, str]]) -> str:
    """One line describing the GPU(s), or NoGpu naming what is missing.

    Args:
        providers: the short names asked for ("cuda", "tensorrt").
        available: onnxruntime.get_available_providers().
        gpus: describe_gpus() (NVML).
    """
    if "CUDAExecutionProvider" not in available:
        raise NoGpu(
            f"onnxruntime has no CUDAExecutionProvider (it has {', '.join(available)}): "
            "install onnxruntime-gpu, pip install 'edgeperf[gpu]', in an environment without onnxruntime"
        )
    if "tensorrt" in providers and "TensorrtExecutionProvider" not in available:
        raise NoGpu("onnxruntime has no TensorrtExecutionProvider; drop it with --providers cuda")
    if not gpus:
        raise NoGpu("NVML sees no GPU (nvidia-ml-py missing, no NVIDIA driver, or no device)")
    info, driver = gpus[0]
    return f"{len(gpus)} x {info.name} ({info.memory_total_bytes / 2**30:.0f} GiB), driver {driver}"


_INSTANCE_GROUP = re.compile(r"instance_group\s*\[.*?\]\s*\n?", re.DOTALL)


def gpu_config_text(
    text: str, provider: str, *, instances: int, cache_dir: Path, cpu_fallback: bool = False
) -> str:
    """The config.pbtxt `text` with its instances on GPU 0 and `provider`'s accelerator.

    Raises:
        ValueError: the config already has an `optimization` block, or `provider` is unknown.
    """
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
    if re.search(r"^\s*optimization\b", text, re.MULTILINE):
        raise ValueError("the config has an optimization block already; merge the accelerator by hand")
    body = _INSTANCE_GROUP.sub("", text).rstrip("\n")
    lines = [body, f"instance_group [ {{ kind: KIND_GPU count: {instances} gpus: [ 0 ] }} ]"]
    if provider == "tensorrt":
        lines.append(
            "optimization { execution_accelerators { gpu_execution_accelerator [ {\n"
            '  name: "tensorrt"\n'
            '  parameters { key: "precision_mode" value: "FP16" }\n'
            '  parameters { key: "trt_engine_cache_enable" value: "1" }\n'
            f'  parameters {{ key: "trt_engine_cache_path" value: "{cache_dir}" }}\n'
            "} ] } }"
        )
    if cpu_fallback:
        lines.append('parameters { key: "cpu_fallback" value: { string_value: "1" } }')
    return "\n".join(lines) + "\n"


def write_gpu_repo(
    source_repo: Path,
    name: str,
    provider: str,
    out: Path,
    *,
    instances: int,
    cache_dir: Path,
    cpu_fallback: bool = False,
) -> Path:
    """A repository at `out` with model `name` from `source_repo` (files linked) on the GPU; TensorRT
    engines go to `cache_dir`."""
    model_dir = out / name
    if model_dir.exists():
        shutil.rmtree(model_dir)
    shutil.copytree(source_repo / name, model_dir, copy_function=_link_or_copy)
    config = model_dir / "config.pbtxt"
    config.unlink()  # NOTE: a hard link would rewrite the source config too
    text = (source_repo / name / "config.pbtxt").read_text(encoding="utf-8")
    cache_dir.mkdir(parents=True, exist_ok=True)
    config.write_text(
        gpu_config_text(text, provider, instances=instances, cache_dir=cache_dir, cpu_fallback=cpu_fallback),
        encoding="utf-8",
    )
    load_model_config(model_dir)  # NOTE: fail here, with the config error, rather than in the server's log
    return out


def _link_or_copy(src: str, dst: str) -> None:
    # NOTE: full-size weights are large; a link costs nothing where the file system allows it.
    try:
        Path(dst).hardlink_to(src)
    except OSError:
        shutil.copy2(src, dst)


@dataclass(frozen=True, slots=True)
class Row:
    benchmark: str
    provider: str
    local_rate: float
    served_rate: float
    batch: int
    local_p50_ms: float
    served_p50_ms: float

    @property
    def ratio(self) -> float:
        return self.served_rate / self.local_rate if self.local_rate > 0 else 0.0

    @property
    def added_ms(self) -> float:
        return self.served_p50_ms - self.local_p50_ms


def table(rows: Sequence[Row], notes: Sequence[str]) -> str:
    """The results table in Markdown, verdicts against the issue's goals, then `notes` (skips, failures)."""
    out = [
        "| benchmark | provider | in-process samples/s | server samples/s | at batch | server / in-process "
        f"(goal >= {OFFLINE_GOAL}) | in-process p50 ms | server p50 ms | added p50 ms (goal <= {ADDED_P50_GOAL_MS}) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        ratio_ok = "MET" if r.ratio >= OFFLINE_GOAL else "MISSED"
        added_ok = "MET" if r.added_ms <= ADDED_P50_GOAL_MS else "MISSED"
        out.append(
            f"| {r.benchmark} | {PROVIDERS[r.provider]} | {r.local_rate:.1f} | {r.served_rate:.1f} | {r.batch} "
            f"| {r.ratio:.3f} {ratio_ok} | {r.local_p50_ms:.3f} | {r.served_p50_ms:.3f} | {r.added_ms:.3f} {added_ok} |"
        )
    return "\n".join([*out, *notes])


class RuntimePool:
    """N runtimes like the server's N instances; each runs one call at a time on a worker thread."""

    def __init__(self, runtimes: list[Runtime], config: ModelConfig) -> None:
        self._free: asyncio.Queue[Runtime] = asyncio.Queue()
        for runtime in runtimes:
            self._free.put_nowait(runtime)
        self._runtimes = runtimes
        self._outputs = [t.name for t in config.outputs]

    async def infer(self, inputs: dict[str, np.ndarray]) -> None:
        runtime = await self._free.get()
        try:
            await asyncio.to_thread(runtime.run, inputs, self._outputs)
        finally:
            self._free.put_nowait(runtime)

    def close(self) -> None:
        for runtime in self._runtimes:
            runtime.close()


def load_runtimes(repo: Path, name: str) -> tuple[list[Runtime], ModelConfig]:
    """The model's runtimes, one per configured instance, built the way the server builds them."""
    from edgeperf.server.runtime.onnx import OnnxRuntime
    from edgeperf.server.runtime.pipeline import load_pipeline
    from edgeperf.server.runtime.reshape import with_reshape

    config = load_model_config(repo / name)
    version_dir = repo / name / "1"
    factory: Callable[[int], Runtime]
    if config.platform == "edgeperf_pipeline":
        factory = lambda i: load_pipeline(version_dir, config, i)  # noqa: E731
    else:
        factory = lambda i: OnnxRuntime.load(version_dir / config.default_model_filename, config, i)  # noqa: E731
    return [with_reshape(factory(i), config) for i in range(config.instance_count)], config


def prewarm(
    runtimes: Sequence[Runtime], config: ModelConfig, samples: Sequence[dict[str, np.ndarray]]
) -> None:
    """Run every runtime at the largest batch, then at batch 1, before anything is timed.

    Without explicit profiles, TensorRT builds an engine for the first input shape it sees and rebuilds
    whenever a shape falls outside the range built so far: largest-then-smallest gives one engine for
    every batch size in between (two builds), where the measurement's growing batches would rebuild at
    each step. The engines land in the cache the server then loads.
    """
    outputs = [t.name for t in config.outputs]
    sizes = (config.max_batch_size, 1) if config.max_batch_size > 1 else (1,)
    for runtime in runtimes:
        for size in sizes:
            if config.max_batch_size > 0:
                picked = [samples[i % len(samples)] for i in range(size)]
                batch = {k: np.stack([s[k] for s in picked]) for k in samples[0]}
            else:
                batch = samples[0]
            runtime.run(batch, outputs)


async def measure(args: argparse.Namespace, name: str, provider: str, source_repo: Path) -> Row:
    from edgeperf.benchmarks import registry
    from tests.bench import bench_suite

    out = args.build_dir / f"gpu-{provider}-{name}"
    cache_dir = args.build_dir / "trt-cache"
    repo = write_gpu_repo(
        source_repo,
        name,
        provider,
        out,
        instances=args.instances,
        cache_dir=cache_dir,
        cpu_fallback=args.cpu_dry_run,
    )
    benchmark = registry.get(name)
    samples = [dict(benchmark.open_dataset("synthetic:4", size="full").sample(i)) for i in range(4)]
    runtimes, config = await asyncio.to_thread(load_runtimes, repo, name)
    pool = RuntimePool(runtimes, config)
    try:
        await asyncio.to_thread(prewarm, runtimes, config, samples)
        local = await bench_suite._measure(pool.infer, samples, config.max_batch_size, args.seconds)
    finally:
        pool.close()
    process, address = bench_suite._start_server(repo, args.build_dir / f"{name}-{provider}-server.log")
    try:
        served = await bench_suite._through_server(
            300.0, address, name, samples, config.max_batch_size, args.seconds
        )
    finally:
        process.terminate()
        process.wait(timeout=60)
    return Row(name, provider, local.best_samples_per_s, served.best_samples_per_s, local.best_batch,
               local.latency_p50_ms, served.latency_p50_ms)  # fmt: skip


async def main_async(args: argparse.Namespace) -> int:
    import onnxruntime

    from edgeperf.benchmarks import registry
    from tests.bench import bench_suite

    started = time.monotonic()
    try:
        gpu = preflight(args.providers, onnxruntime.get_available_providers(), describe_gpus())
    except NoGpu as exc:
        if not args.cpu_dry_run:
            print(f"bench_gpu: no usable GPU here: {exc}", file=sys.stderr, flush=True)
            return 2
        gpu = f"NO GPU ({exc}); --cpu-dry-run: GPU configs with cpu_fallback, so every number is the CPU's"
    print(f"bench_gpu: {gpu}, onnxruntime {onnxruntime.__version__}, providers {args.providers}", flush=True)
    rows: list[Row] = []
    notes: list[str] = []
    for name in args.benchmarks:
        source_repo = bench_suite._prepare(name, registry.get(name), args.build_dir, "full")
        for provider in args.providers:
            if time.monotonic() - started > args.budget_s:
                notes.append(f"- {name} {provider}: not measured, the {args.budget_s:.0f} s budget was spent")
                continue
            print(f"== {name} on {PROVIDERS[provider]}", flush=True)
            try:
                rows.append(await measure(args, name, provider, source_repo))
                print(table(rows[-1:], []).splitlines()[-1], flush=True)
            except Exception as exc:  # NOTE: one broken pair is reported; the others still run
                notes.append(f"- {name} {provider}: FAILED {type(exc).__name__}: {exc}")
                print(notes[-1], flush=True)
    print()
    print(table(rows, notes))
    ratios = [r.ratio for r in rows]
    if ratios:
        print(
            f"\nmedian server / in-process {statistics.median(ratios):.3f}; total {time.monotonic() - started:.0f} s"
        )
    return 1 if notes and not rows else 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from edgeperf.benchmarks import registry

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--benchmarks", nargs="+", choices=registry.names(), default=list(registry.MLPERF_BENCHMARKS)
    )
    parser.add_argument("--providers", nargs="+", choices=tuple(PROVIDERS), default=list(PROVIDERS))
    parser.add_argument("--seconds", type=float, default=6.0, help="time per benchmark, provider and path")
    parser.add_argument("--instances", type=int, default=2, help="instances on GPU 0 (each its own stream)")
    parser.add_argument("--budget-s", type=float, default=420.0, help="start no measurement after this")
    parser.add_argument("--build-dir", type=Path, default=Path("build/bench_gpu"))
    parser.add_argument(
        "--cpu-dry-run",
        action="store_true",
        help="without a GPU, run the whole procedure with cpu_fallback (checks the script, measures nothing of a GPU)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args: Any = parse_args(argv)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
