"""`make bench`, server part: the edgeperf server against its peers, measured side by side in one run.

    python -m tests.bench.bench_server [--quick] [--reps N] [--skip-resnet50] [--skip-tiny] [--allow-spinning 0|1]
                                       [--instructions [REQUESTS]]

(a) ResNet50 throughput through the server over loopback gRPC (several channels, batch-1 requests, the
    dynamic batcher on) against the same ONNX model run in-process by ONNX Runtime at its best batch size.
    Goal: ratio >= 0.95.
(b) server CPU per tiny-model request, unary and streaming, against a bare grpc.aio echo server (unary
    method and stream method) answering with the same payload sizes, 16 outstanding on one connection.
    Goals: unary <= 1.3x echo unary, streaming <= 1.3x echo streaming (the model with `inline_execution`,
    the config such a model should use; the default instance-thread config is shown beside it). Measured
    twice: both servers at the same offered rate (--rate, default 500/s: grpc's CPU per request falls as
    the rate rises, so only equal rates compare like with like), and closed loop (each as fast as it goes).
(c) ResNet50 batch-1 latency, one request at a time: in-process ORT, the server, and a bare grpc.aio echo of
    the same request bytes (the transport alone), interleaved. "Added" is server - in-process; the server's
    own addition is server - in-process - echo, per triplet. Goal: own addition <= 0.5 ms at the median.
    Beside it, the same request to the model configured with `inline_execution` (no thread hand-offs).
(d) with --instructions: (b)'s inline kinds counted in instructions per request under valgrind's callgrind
    (tests/bench/server_instructions.py): one run each, the same on a busy machine as on a quiet one.

Every figure is min / median / max over --reps repetitions (default 5, --quick 3), the kinds interleaved
within each repetition so they see the same machine load; ratios are taken within a repetition. The
1-minute load average is printed beside them: on a shared machine the ratios are what matters.
Servers run as subprocesses (as deployed); clients here send pre-serialized request bytes, so the echo
and edgeperf runs cost the client exactly the same and the difference is the server.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import onnxruntime

from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.server.converters import TIMING_PARAMETERS
from edgeperf.server.model_config import ModelConfig, load_model_config
from tests.bench.server_instructions import instructions_per_request
from tests.server.edge_process import ServerProcess, server_process

INFER = "/inference.GRPCInferenceService/ModelInfer"
STREAM = "/inference.GRPCInferenceService/ModelStreamInfer"
ECHO = "/edgeperf.bench.Echo/Echo"
ECHO_STREAM = "/edgeperf.bench.Echo/EchoStream"
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 2**31 - 1),
    ("grpc.max_receive_message_length", 2**31 - 1),
]

RESNET_INPUT = "input_tensor:0"
RESNET_OUTPUT = "ArgMax:0"
LATENCY_MODEL = "resnet50_latency"
INLINE_LATENCY_MODEL = "resnet50_latency_inline"
"""The latency config with `inline_execution`: the run on the event loop, no thread hand-offs."""


@dataclass(frozen=True, slots=True)
class Durations:
    window_s: float
    """One kind's measurement window in one repetition of (b)."""
    resnet_measure_s: float
    resnet_batch_s: float
    latency_runs: int
    """In-process/server pairs per repetition of (c)."""
    reps: int


FULL = Durations(window_s=2.0, resnet_measure_s=15.0, resnet_batch_s=3.0, latency_runs=20, reps=5)
QUICK = Durations(window_s=1.0, resnet_measure_s=6.0, resnet_batch_s=2.0, latency_runs=10, reps=3)


def infer_request_bytes(model: str, input_name: str, data: np.ndarray, outputs: Sequence[str] = ()) -> bytes:
    message = pb.ModelInferRequest(model_name=model)
    message.inputs.add(name=input_name, datatype="FP32", shape=data.shape)
    message.raw_input_contents.append(np.ascontiguousarray(data, dtype="<f4").tobytes())
    for name in outputs:
        message.outputs.add(name=name)
    return message.SerializeToString()


# ---------------------------------------------------------------- load drivers (pre-serialized bytes)


async def unary_rate(
    address: str,
    path: str,
    payload: bytes,
    *,
    channels: int,
    concurrency: int,
    duration_s: float,
    warmup_calls: int = 32,
    pace_rps: float | None = None,
) -> tuple[float, int]:
    """Requests per second with `concurrency` outstanding calls spread over `channels` connections.

    Calls start until `duration_s` has passed; the rate counts every call, including the last ones to finish.
    With `pace_rps`, call i starts at start + i / pace_rps (at most `concurrency` outstanding), so that
    servers compared at the same rate do the same amount of work per wake-up.
    """
    opened = [
        grpc.aio.insecure_channel(address, options=[*CHANNEL_OPTIONS, ("edgeperf.bench.channel", i)])
        for i in range(channels)
    ]
    try:
        calls = [channel.unary_unary(path) for channel in opened]
        await asyncio.gather(*(calls[i % channels](payload) for i in range(warmup_calls)))
        loop = asyncio.get_running_loop()
        stop_at = loop.time() + duration_s
        done = 0

        async def worker(index: int) -> None:
            nonlocal done
            call = calls[index % channels]
            while loop.time() < stop_at:
                await call(payload)
                done += 1

        start = time.perf_counter_ns()
        if pace_rps is None:
            await asyncio.gather(*(worker(i) for i in range(concurrency)))
        else:
            done = await _paced(lambda i: calls[i % channels](payload), pace_rps, concurrency, duration_s)
        return done / ((time.perf_counter_ns() - start) / 1e9), done
    finally:
        for channel in opened:
            await channel.close()


async def _paced(call: Callable[[int], Awaitable[object]], rps: float, limit: int, duration_s: float) -> int:
    """Start `call(i)` at start + i / rps (at most `limit` outstanding) for `duration_s`; the count done."""
    loop = asyncio.get_running_loop()
    credit = asyncio.Semaphore(limit)
    tasks: set[asyncio.Task[object]] = set()
    start, index = loop.time(), 0

    async def one(i: int) -> object:
        try:
            return await call(i)
        finally:
            credit.release()

    while (due := start + index / rps) < start + duration_s:
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        await credit.acquire()
        task = asyncio.create_task(one(index))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        index += 1
    await asyncio.gather(*tasks)
    return index


async def stream_rate(
    address: str,
    payload: bytes,
    *,
    window: int,
    duration_s: float,
    path: str = STREAM,
    pace_rps: float | None = None,
) -> tuple[float, int]:
    """Responses per second on one stream (ModelStreamInfer or the echo's) keeping `window` requests
    outstanding; with `pace_rps`, request i is written at start + i / pace_rps."""
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        call = channel.stream_stream(path)()
        credit = asyncio.Semaphore(window)
        loop = asyncio.get_running_loop()
        stop_at = loop.time() + duration_s
        sent = received = 0

        async def writer() -> None:
            nonlocal sent
            begin = loop.time()
            while loop.time() < stop_at:
                if pace_rps is not None and (due := begin + sent / pace_rps) > loop.time():
                    await asyncio.sleep(due - loop.time())
                await credit.acquire()
                await call.write(payload)
                sent += 1
            await call.done_writing()

        async def reader() -> None:
            nonlocal received
            while received < sent or loop.time() < stop_at:
                if await call.read() is grpc.aio.EOF:
                    return
                received += 1
                credit.release()

        start = time.perf_counter_ns()
        await asyncio.gather(writer(), reader())
        return received / ((time.perf_counter_ns() - start) / 1e9), received


async def latency_triplets_ns(
    address: str, echo_address: str, payload: bytes, local: Callable[[], int], runs: int, inline: bytes = b""
) -> dict[str, list[int]]:
    """`runs` triplets, one call at a time: the in-process call `local()` (returns its own ns), one request
    through the server, and the same request bytes through the bare echo server (the transport alone).

    A triplet's calls see the same machine load, so `served - local - echo` is what the server itself
    adds, even on a shared machine. Returns the ns lists "local", "served", "echo" and, from the server's
    response parameters, "queue" (its queue time) and "inside" (its queue + compute). With `inline` (the
    same request to a model with `inline_execution`), each triplet gets a fourth call: "inline" and
    "inline_inside".
    """
    async with (
        grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel,
        grpc.aio.insecure_channel(echo_address, options=CHANNEL_OPTIONS) as echo_channel,
    ):
        call = channel.unary_unary(INFER)
        echo = echo_channel.unary_unary(ECHO)
        for _ in range(3):
            await call(payload)
            await echo(payload)
            local()
        keys = ("local", "served", "echo", "queue", "inside", "inline", "inline_inside")
        figures: dict[str, list[int]] = {key: [] for key in keys}
        for _ in range(runs):
            # NOTE: a pause before each call lets the previous one's threads settle (ONNX Runtime's pool may
            # spin when a config allows it), so no side runs while another's still spins.
            await asyncio.sleep(0.05)
            figures["local"].append(local())
            await asyncio.sleep(0.05)
            start = time.perf_counter_ns()
            reply = await call(payload)
            figures["served"].append(time.perf_counter_ns() - start)
            await asyncio.sleep(0.05)
            start = time.perf_counter_ns()
            await echo(payload)
            figures["echo"].append(time.perf_counter_ns() - start)
            parameters = pb.ModelInferResponse.FromString(reply).parameters
            figures["queue"].append(parameters["edgeperf_queue_ns"].int64_param)
            figures["inside"].append(sum(parameters[name].int64_param for name in TIMING_PARAMETERS))
            if inline:
                await asyncio.sleep(0.05)
                start = time.perf_counter_ns()
                reply = await call(inline)
                figures["inline"].append(time.perf_counter_ns() - start)
                parameters = pb.ModelInferResponse.FromString(reply).parameters
                figures["inline_inside"].append(sum(parameters[n].int64_param for n in TIMING_PARAMETERS))
        return figures


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` so far (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- the echo peer


def run_echo_server(response_bytes: int) -> None:
    """A bare grpc.aio server whose one method answers every request with `response_bytes` bytes."""
    import uvloop

    answer = b"\x01" * response_bytes

    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return answer

    async def echo_stream(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        async for _ in requests:
            yield answer

    async def main() -> None:
        server = grpc.aio.server(options=[*CHANNEL_OPTIONS, ("grpc.so_reuseport", 0)])
        handlers = {
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
            "EchoStream": grpc.stream_stream_rpc_method_handler(echo_stream),
        }
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("edgeperf.bench.Echo", handlers),)
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        print(port, flush=True)
        await server.wait_for_termination()

    uvloop.run(main())


class EchoServer:
    def __init__(self, response_bytes: int) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.bench_server", "--echo-server", str(response_bytes)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        self.address = f"127.0.0.1:{int(self._process.stdout.readline())}"
        self.pid = self._process.pid

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=30)
        if self._process.stdout is not None:
            self._process.stdout.close()


# ---------------------------------------------------------------- the three parts


def _line(label: str, value: str, goal: str, met: bool | None, of_goal: float | None = None) -> str:
    """One result line; `of_goal` is the value as a fraction of the goal (> 1 is better than the goal)."""
    verdict = "" if met is None else ("MET" if met else "MISSED")
    if of_goal is not None:
        verdict += f" ({of_goal:.2f} of goal)"
    return f"  {label:<50} {value:<40} {goal:<16} {verdict}"


# (kind, streaming, model): what one measurement window of (b) drives; no model is the echo server.
_B_KINDS = (
    ("echo unary", False, ""),
    ("edgeperf unary, inline", False, "tiny_inline"),
    ("edgeperf unary, instance thread", False, "tiny"),
    ("echo streaming", True, ""),
    ("edgeperf streaming, inline", True, "tiny_inline"),
    ("edgeperf streaming, instance thread", True, "tiny"),
)


async def part_b(durations: Durations, workdir: Path, pace_rps: float) -> list[str]:
    from edgeperf.benchmarks import registry

    repository = workdir / "tiny-repo"
    registry.get("tiny").write_model(repository / "tiny", size="small")
    _write_variant(repository, "tiny", "tiny_inline", 0, inline=True)
    data = np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 16)
    payloads = {model: infer_request_bytes(model, "INPUT0", data) for model in ("tiny", "tiny_inline")}
    concurrency = 16
    modes: tuple[float | None, ...] = (pace_rps, None)
    cpu_us: dict[tuple[str, float | None], list[float]] = {(k, m): [] for k, *_ in _B_KINDS for m in modes}
    rates: dict[tuple[str, float | None], list[float]] = {(k, m): [] for k, *_ in _B_KINDS for m in modes}
    loads: list[float] = []
    with server_process(repository, "--no-metrics") as server:
        async with grpc.aio.insecure_channel(server.address) as channel:
            reply = await asyncio.wait_for(channel.unary_unary(INFER)(payloads["tiny"]), 30)
        echo = EchoServer(len(reply))
        try:
            for _, streaming, model in _B_KINDS:  # NOTE: one untimed pass warms every path
                await _b_window(server, echo, streaming, model, payloads, concurrency, 0.3)
            for _ in range(durations.reps):
                loads.append(os.getloadavg()[0])
                for mode in modes:
                    for kind, streaming, model in _B_KINDS:
                        rate, cpu = await _b_window(
                            server, echo, streaming, model, payloads, concurrency, durations.window_s, mode
                        )
                        rates[(kind, mode)].append(rate)
                        cpu_us[(kind, mode)].append(cpu)
        finally:
            echo.close()

    lines = [
        f"(b) tiny model, {len(payloads['tiny'])} B requests / {len(reply)} B responses, at most {concurrency} "
        f"outstanding on one connection; {durations.reps} repetitions of {durations.window_s:.0f} s windows, "
        f"kinds interleaved; load average {_spread(loads, '.1f')}",
        "    figure: median (min-max) over repetitions; ratios taken within each repetition",
    ]
    for mode in modes:

        def ratio(kind: str, peer: str, mode: float | None = mode) -> list[float]:
            return [a / b for a, b in zip(cpu_us[(kind, mode)], cpu_us[(peer, mode)], strict=True)]

        lines.append(
            f"  -- both servers at the same offered rate, {mode:,.0f} requests/s"
            if mode is not None
            else "  -- closed loop: as fast as each server goes"
        )
        for kind, *_ in _B_KINDS:
            lines.append(
                _line(f"server CPU us/request, {kind}", _spread(cpu_us[(kind, mode)], ".0f"), "", None)
            )
            lines.append(_line("  requests/s", _spread(rates[(kind, mode)], ",.0f"), "", None))
        unary = ratio("edgeperf unary, inline", "echo unary")
        stream = ratio("edgeperf streaming, inline", "echo streaming")
        lines += [
            _line(
                "CPU ratio unary: edgeperf inline / echo",
                _spread(unary, ".2f"),
                "goal <= 1.30",
                statistics.median(unary) <= 1.3,
                1.3 / statistics.median(unary),
            ),
            _line(
                "CPU ratio streaming: edgeperf inline / echo",
                _spread(stream, ".2f"),
                "goal <= 1.30",
                statistics.median(stream) <= 1.3,
                1.3 / statistics.median(stream),
            ),
            _line(
                "  unary, instance thread / echo",
                _spread(ratio("edgeperf unary, instance thread", "echo unary"), ".2f"),
                "",
                None,
            ),
            _line(
                "  streaming, instance thread / echo",
                _spread(ratio("edgeperf streaming, instance thread", "echo streaming"), ".2f"),
                "",
                None,
            ),
        ]
    return lines  # fmt: skip


async def _b_window(
    server: ServerProcess,
    echo: EchoServer,
    streaming: bool,
    model: str,
    payloads: dict[str, bytes],
    concurrency: int,
    window_s: float,
    pace_rps: float | None = None,
) -> tuple[float, float]:
    """One measurement window: (requests/s, server CPU us per request)."""
    address, pid = (server.address, server.process.pid) if model else (echo.address, echo.pid)
    payload = payloads[model or "tiny"]
    before = process_cpu_s(pid)
    if streaming:
        path = STREAM if model else ECHO_STREAM
        rate, count = await stream_rate(
            address, payload, window=concurrency, duration_s=window_s, path=path, pace_rps=pace_rps
        )
    else:
        path = INFER if model else ECHO
        rate, count = await unary_rate(
            address,
            path,
            payload,
            channels=1,
            concurrency=concurrency,
            duration_s=window_s,
            warmup_calls=0,
            pace_rps=pace_rps,
        )
    after = process_cpu_s(pid)
    return rate, 1e6 * ((after or 0.0) - (before or 0.0)) / max(count, 1)


def _inprocess_rate(session: onnxruntime.InferenceSession, batch: int, seconds: float) -> tuple[float, float]:
    """Images per second and CPU ms per image of `session` at `batch`, run for about `seconds`."""
    data = np.random.default_rng(batch).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    session.run([RESNET_OUTPUT], {RESNET_INPUT: data})
    runs, start, cpu_start = 0, time.perf_counter_ns(), time.process_time()
    while runs < 2 or time.perf_counter_ns() - start < seconds * 1e9:
        session.run([RESNET_OUTPUT], {RESNET_INPUT: data})
        runs += 1
    images = runs * batch
    return images / ((time.perf_counter_ns() - start) / 1e9), 1000 * (
        time.process_time() - cpu_start
    ) / images


def run_ort_worker(model_dir: str) -> None:
    """The in-process side, in a process of its own: one ONNX Runtime session with the model's served
    options and nothing else (no event loop, no gRPC threads). Commands on stdin, one answer line each:
    `rate BATCH SECONDS` -> images/s and CPU ms per image; `once` -> one batch-1 run's wall ns."""
    from edgeperf.server.runtime.onnx import make_session

    config = load_model_config(Path(model_dir))
    session = make_session(Path(model_dir) / "1" / "model.onnx", config.ort)
    image = np.random.default_rng(2).standard_normal((1, 3, 224, 224)).astype(np.float32)
    session.run([RESNET_OUTPUT], {RESNET_INPUT: image})
    print("ready", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "rate":
            rate, cpu_ms = _inprocess_rate(session, int(args[0]), float(args[1]))
            print(rate, cpu_ms, flush=True)
        elif command == "once":
            start = time.perf_counter_ns()
            session.run([RESNET_OUTPUT], {RESNET_INPUT: image})
            print(time.perf_counter_ns() - start, flush=True)


class OrtWorker:
    """Drives `run_ort_worker` in a subprocess."""

    def __init__(self, model_dir: Path) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.bench_server", "--ort-worker", str(model_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._ask(None) == ["ready"]

    def _ask(self, command: str | None) -> list[str]:
        assert self._process.stdin is not None and self._process.stdout is not None
        if command is not None:
            self._process.stdin.write(command + "\n")
            self._process.stdin.flush()
        return self._process.stdout.readline().split()

    def rate(self, batch: int, seconds: float) -> tuple[float, float]:
        rate, cpu_ms = self._ask(f"rate {batch} {seconds}")
        return float(rate), float(cpu_ms)

    def once_ns(self) -> int:
        return int(self._ask("once")[0])

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=30)
        if self._process.stdout is not None:
            self._process.stdout.close()


def _write_variant(repository: Path, source: str, name: str, delay_us: int, *, inline: bool = False) -> None:
    """`repository/name`: the same graph as `source` (hard link) with another max_queue_delay (and
    `inline_execution` when `inline`)."""
    (repository / name / "1").mkdir(parents=True)
    os.link(repository / source / "1" / "model.onnx", repository / name / "1" / "model.onnx")
    config = (repository / source / "config.pbtxt").read_text()
    config = re.sub(r"max_queue_delay_microseconds: \d+", f"max_queue_delay_microseconds: {delay_us}", config)
    config = config.replace(f'name: "{source}"', f'name: "{name}"')
    if inline:
        config += 'parameters { key: "inline_execution" value: { string_value: "1" } }\n'
    (repository / name / "config.pbtxt").write_text(config)


async def parts_a_c(durations: Durations, workdir: Path, allow_spinning: str | None = None) -> list[str]:
    from edgeperf.benchmarks import registry

    repository = workdir / "resnet-repo"
    registry.get("resnet50").write_model(repository / "resnet50", size="full")
    if allow_spinning is not None:
        with (repository / "resnet50" / "config.pbtxt").open("a") as config_file:
            config_file.write(
                f'parameters {{ key: "allow_spinning" value: {{ string_value: "{allow_spinning}" }} }}\n'
            )
    # NOTE: (c) uses a latency-tuned copy without a batching window, as a SingleStream deployment would
    # configure it; a lone request to the throughput config waits its full max_queue_delay (Triton's
    # semantics), which is reported beside it. (a) uses the builder's throughput config.
    _write_variant(repository, "resnet50", LATENCY_MODEL, 0)
    _write_variant(repository, "resnet50", INLINE_LATENCY_MODEL, 0, inline=True)
    config = load_model_config(repository / "resnet50")
    delay_us = config.dynamic_batching.max_queue_delay_us if config.dynamic_batching else 0
    max_batch = config.max_batch_size
    # NOTE: "in-process" runs in a process of its own that holds only the session, with the server's own
    # ONNX Runtime options (threads, spinning): the comparison is the server's overhead, not a difference
    # in ORT settings or the benchmark client's event loop and gRPC threads sharing the process.
    local = OrtWorker(repository / "resnet50")
    try:
        return await _measure_a_c(durations, repository, config, delay_us, max_batch, local)
    finally:
        local.close()


async def _measure_a_c(
    durations: Durations,
    repository: Path,
    config: ModelConfig,
    delay_us: int,
    max_batch: int,
    local: OrtWorker,
) -> list[str]:
    sweep = {batch: local.rate(batch, durations.resnet_batch_s) for batch in (1, 4, 8, 16, 32)}
    best_batch = max(sweep, key=lambda b: sweep[b][0])

    image = np.random.default_rng(2).standard_normal((1, 3, 224, 224)).astype(np.float32)
    payload = infer_request_bytes("resnet50", RESNET_INPUT, image, outputs=[RESNET_OUTPUT])
    latency_payload = infer_request_bytes(LATENCY_MODEL, RESNET_INPUT, image, outputs=[RESNET_OUTPUT])
    channels, concurrency, rounds = 4, 2 * max_batch, durations.reps
    window_s = durations.resnet_measure_s / rounds
    local_rates: list[float] = []
    served_rates: list[float] = []
    local_cpu_ms: list[float] = []
    server_cpu_ms: list[float] = []
    with server_process(repository, "--no-metrics", timeout_s=600) as server:
        await unary_rate(
            server.address, INFER, payload, channels=channels, concurrency=concurrency, duration_s=1.0
        )
        # NOTE: alternating windows, so both sides see the same machine load; CPU per image is reported too.
        for _ in range(rounds):
            rate, cpu_ms = local.rate(best_batch, window_s)
            local_rates.append(rate)
            local_cpu_ms.append(cpu_ms)
            cpu_before = process_cpu_s(server.process.pid)
            served, images = await unary_rate(server.address, INFER, payload, channels=channels,
                                              concurrency=concurrency, duration_s=window_s, warmup_calls=0)  # fmt: skip
            cpu_after = process_cpu_s(server.process.pid)
            served_rates.append(served)
            if cpu_before is not None and cpu_after is not None:
                server_cpu_ms.append(1000 * (cpu_after - cpu_before) / images)
        async with grpc.aio.insecure_channel(server.address) as channel:
            reply = await channel.unary_unary(INFER)(latency_payload)
        echo = EchoServer(len(reply))
        try:
            inline = infer_request_bytes(INLINE_LATENCY_MODEL, RESNET_INPUT, image, outputs=[RESNET_OUTPUT])
            latency = await _latency_reps(durations, server, echo, (latency_payload, inline), local)
        finally:
            echo.close()
    ratios = [s / loc for s, loc in zip(served_rates, local_rates, strict=True)]
    ratio = statistics.median(ratios)
    lines = [
        f"(a) ResNet50 v1.5 stand-in (FP32, 224x224), {os.cpu_count()} CPU cores, ORT options as served: "
        f"intra_op_threads {config.ort.intra_op_threads or 'auto'}, allow_spinning {int(config.ort.allow_spinning)}",
        _line("in-process ORT images/s by batch size", ", ".join(f"{b}: {r:.1f}" for b, (r, _) in sweep.items()), "", None),
        _line(f"in-process at batch {best_batch} images/s, {rounds} windows", _spread(local_rates, ".1f"), "", None),
        _line(f"server images/s ({channels} ch, {concurrency} outstanding batch-1), {rounds} windows",
              _spread(served_rates, ".1f"), "", None),
        _line("server / in-process (median of window pairs)", f"{ratio:.3f} (pairs {min(ratios):.2f}-{max(ratios):.2f})",
              "goal >= 0.95", ratio >= 0.95, ratio / 0.95),
    ]  # fmt: skip
    if server_cpu_ms:
        efficiency = statistics.median(local_cpu_ms) / statistics.median(server_cpu_ms)
        lines += [
            _line("CPU ms per image: in-process / server process",
                  f"{statistics.median(local_cpu_ms):.0f} / {statistics.median(server_cpu_ms):.0f}", "", None),
            _line("CPU efficiency in-process / server (load-independent)", f"{efficiency:.3f}", "goal >= 0.95",
                  efficiency >= 0.95, efficiency / 0.95),
        ]  # fmt: skip
    own = latency["own"]
    lines += [
        f"(c) ResNet50 batch-1 latency, one call at a time, {durations.reps} repetitions of {durations.latency_runs} "
        f"interleaved triplets (in-process ORT, server with max_queue_delay 0, bare echo of the same "
        f"{len(latency_payload) / 1000:.0f} KB request); load average {_spread(latency['load'], '.1f')}",
        "    figure: median (min-max) over repetitions of each repetition's median, ms",
        _line("in-process ORT", _spread(latency["local"], ".2f"), "", None),
        _line("server (client-measured)", _spread(latency["served"], ".2f"), "", None),
        _line("  server-side queue", _spread(latency["queue"], ".3f"), "", None),
        _line("  client-measured minus server queue+compute", _spread(latency["edge"], ".2f"), "", None),
        _line("bare grpc.aio echo of the same request (transport)", _spread(latency["echo"], ".2f"), "", None),
        _line("  server edge beyond transport (by the server's timers)", _spread(latency["beyond"], ".2f"), "", None),
        _line("added over in-process: server - in-process", _spread(latency["added"], ".2f"), "", None),
        _line("server's own addition: server - in-process - echo", _spread(own, ".2f"), "goal <= 0.5 ms",
              statistics.median(own) <= 0.5, 0.5 / statistics.median(own) if statistics.median(own) > 0 else None),
        "    the same model with inline_execution (its run on the event loop, no thread hand-offs):",
        _line("  server, inline (client-measured)", _spread(latency["inline"], ".2f"), "", None),
        _line("  server edge beyond transport, inline", _spread(latency["inline_beyond"], ".2f"), "", None),
        _line("  server's own addition, inline", _spread(latency["inline_own"], ".2f"), "", None),
    ]  # fmt: skip
    return lines


async def _latency_reps(
    durations: Durations,
    server: ServerProcess,
    echo: EchoServer,
    payloads: tuple[bytes, bytes],
    local: OrtWorker,
) -> dict[str, list[float]]:
    """(c): per repetition, the medians (ms) of interleaved in-process/server/echo triplets (and the inline
    model's call in each)."""
    keys = ("load", "local", "served", "queue", "edge", "echo", "beyond", "added", "own", "inline", "inline_beyond",
            "inline_own")  # fmt: skip
    figures: dict[str, list[float]] = {key: [] for key in keys}
    for _ in range(durations.reps):
        figures["load"].append(os.getloadavg()[0])
        ns = await latency_triplets_ns(
            server.address, echo.address, payloads[0], local.once_ns, durations.latency_runs, payloads[1]
        )
        triplets = list(zip(ns["local"], ns["served"], ns["echo"], strict=True))
        figures["local"].append(statistics.median(ns["local"]) / 1e6)
        figures["served"].append(statistics.median(ns["served"]) / 1e6)
        figures["echo"].append(statistics.median(ns["echo"]) / 1e6)
        figures["queue"].append(statistics.median(ns["queue"]) / 1e6)
        # NOTE: what the client waited beyond the server's own queue + compute: transport and the server's edge.
        figures["edge"].append(
            statistics.median(s - i for s, i in zip(ns["served"], ns["inside"], strict=True)) / 1e6
        )
        # NOTE: the same addition without the compute's run-to-run spread, trusting the server's own timers.
        figures["beyond"].append(figures["edge"][-1] - figures["echo"][-1])
        figures["added"].append(statistics.median(s - loc for loc, s, _ in triplets) / 1e6)
        figures["own"].append(statistics.median(s - loc - e for loc, s, e in triplets) / 1e6)
        figures["inline"].append(statistics.median(ns["inline"]) / 1e6)
        inline_edge = statistics.median(s - i for s, i in zip(ns["inline"], ns["inline_inside"], strict=True))
        figures["inline_beyond"].append(inline_edge / 1e6 - figures["echo"][-1])
        quads = zip(ns["local"], ns["inline"], ns["echo"], strict=True)
        figures["inline_own"].append(statistics.median(s - loc - e for loc, s, e in quads) / 1e6)
    return figures


# (kind, streaming, server) of (d)
_D_KINDS = (
    ("echo unary", False, "echo"),
    ("edgeperf unary, inline", False, "edgeperf"),
    ("echo streaming", True, "echo"),
    ("edgeperf streaming, inline", True, "edgeperf"),
)


async def part_d(workdir: Path, count: int, rate: float = 40.0) -> list[str]:
    """(d): the servers' instructions per tiny request under callgrind (tests/bench/server_instructions.py)."""
    from edgeperf.benchmarks import registry
    from edgeperf.server.converters import response_to_proto
    from edgeperf.server.types import InferResponse, ServerTimings

    repository = workdir / "tiny-callgrind"
    registry.get("tiny").write_model(repository / "tiny", size="small")
    _write_variant(repository, "tiny", "tiny_inline", 0, inline=True)
    data = np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 16)
    payload = infer_request_bytes("tiny_inline", "INPUT0", data)
    # NOTE: the echo answers as many bytes as the server would (its timings' varints vary by a byte or two).
    timings = ServerTimings(queue_ns=20_000, compute_input_ns=0, compute_infer_ns=40_000, compute_output_ns=0)
    answer = InferResponse(
        model_name="tiny_inline", model_version="1", id="", outputs={"OUTPUT0": data}, timings=timings
    )
    reply_bytes = len(response_to_proto(answer).SerializeToString())
    figures: dict[str, float] = {}
    for kind, streaming, server in _D_KINDS:

        async def drive(address: str, n: int, streaming: bool = streaming, server: str = server) -> int:
            if streaming:
                path = STREAM if server == "edgeperf" else ECHO_STREAM
                _, done = await stream_rate(
                    address, payload, window=16, duration_s=n / rate, path=path, pace_rps=rate
                )
            else:
                path = INFER if server == "edgeperf" else ECHO
                _, done = await unary_rate(
                    address,
                    path,
                    payload,
                    channels=1,
                    concurrency=16,
                    duration_s=n / rate,
                    warmup_calls=0,
                    pace_rps=rate,
                )
            return done

        figure = await instructions_per_request(
            server, repository, drive, warmup=100, count=count, echo_bytes=reply_bytes
        )
        if figure is None:
            return ["(d) instructions per request: skipped, valgrind is not installed"]
        figures[kind] = figure
    unary = figures["edgeperf unary, inline"] / figures["echo unary"]
    stream = figures["edgeperf streaming, inline"] / figures["echo streaming"]
    return [
        f"(d) server instructions per tiny request (callgrind, {count} requests at {rate:.0f}/s after 100 "
        "untimed, counted only while they ran; not time: no kernel, no cache misses)",
        *(_line(f"k instructions/request, {kind}", f"{figure / 1000:.1f}", "", None) for kind, figure in figures.items()),
        _line("instructions ratio unary: edgeperf inline / echo", f"{unary:.2f}", "", None),
        _line("instructions ratio streaming: edgeperf inline / echo", f"{stream:.2f}", "", None),
    ]  # fmt: skip


def _spread(values: Sequence[float], spec: str) -> str:
    """The median and the range of `values`."""
    return f"{statistics.median(values):{spec}} ({min(values):{spec}}-{max(values):{spec}})"


async def main_async(
    durations: Durations,
    skip_resnet50: bool,
    allow_spinning: str | None = None,
    skip_tiny: bool = False,
    pace_rps: float = 500.0,
    instructions: int = 0,
) -> int:
    started = time.monotonic()
    print(f"edgeperf server benchmark: python {sys.version.split()[0]}, grpcio {grpc.__version__}, "
          f"onnxruntime {onnxruntime.__version__}, {os.cpu_count()} CPU cores", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="edgeperf-bench-") as tmp:
        if not skip_tiny:
            for line in await part_b(durations, Path(tmp), pace_rps):
                print(line, flush=True)
        if not skip_resnet50:
            for line in await parts_a_c(durations, Path(tmp), allow_spinning):
                print(line, flush=True)
        if instructions:
            for line in await part_d(Path(tmp), instructions):
                print(line, flush=True)
    print(f"total {time.monotonic() - started:.0f} s", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_server")
    parser.add_argument("--quick", action="store_true", help="shorter measurement windows, 3 repetitions")
    parser.add_argument(
        "--rate", type=float, default=500.0, help="(b): the offered rate both servers are compared at (500/s)"
    )
    parser.add_argument("--reps", type=int, default=None, help="repetitions of every figure (at least 3)")
    parser.add_argument("--skip-resnet50", action="store_true", help="only part (b)")
    parser.add_argument("--skip-tiny", action="store_true", help="only parts (a) and (c)")
    parser.add_argument(
        "--allow-spinning", choices=("0", "1"), help="override the ResNet50 config's ORT spinning"
    )
    parser.add_argument(
        "--instructions",
        type=int,
        nargs="?",
        const=300,
        default=0,
        metavar="REQUESTS",
        help="(d): also count the servers' instructions per tiny request under valgrind (300 requests; minutes)",
    )
    parser.add_argument("--echo-server", type=int, metavar="RESPONSE_BYTES", help=argparse.SUPPRESS)
    parser.add_argument("--ort-worker", metavar="MODEL_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ort_worker is not None:
        run_ort_worker(args.ort_worker)
        return 0
    if args.echo_server is not None:
        run_echo_server(args.echo_server)
        return 0
    import uvloop

    durations = QUICK if args.quick else FULL
    if args.reps is not None:
        if args.reps < 3:
            parser.error("--reps must be at least 3 (min/median/max need three)")
        durations = dataclasses.replace(durations, reps=args.reps)
    result: int = uvloop.run(
        main_async(
            durations, args.skip_resnet50, args.allow_spinning, args.skip_tiny, args.rate, args.instructions
        )
    )
    return result


if __name__ == "__main__":
    sys.exit(main())
