"""`make bench`, server part: the edgeperf server against its peers, measured side by side in one run.

    python -m tests.bench.bench_server [--quick] [--skip-resnet50] [--skip-tiny] [--allow-spinning 0|1]

(a) ResNet50 throughput through the server over loopback gRPC (several channels, batch-1 requests, the
    dynamic batcher on) against the same ONNX model run in-process by ONNX Runtime at its best batch size.
    Goal: ratio >= 0.95.
(b) tiny-model inferences per second, unary and streaming, against a bare grpc.aio echo server answering
    with the same payload sizes. Goals: unary >= 0.6 of echo; streaming faster than unary.
(c) ResNet50 batch-1 latency, one request at a time, through the server against in-process.
    Goal: under 1 ms added at the median.

Servers run as subprocesses (as deployed); clients here send pre-serialized request bytes, so the echo
and edgeperf runs cost the client exactly the same and the difference is the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import onnxruntime

from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.server.config import ModelConfig, load_model_config
from edgeperf.server.converters import TIMING_PARAMETERS
from tests.server.edge_process import server_process

INFER = "/inference.GRPCInferenceService/ModelInfer"
STREAM = "/inference.GRPCInferenceService/ModelStreamInfer"
ECHO = "/edgeperf.bench.Echo/Echo"
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 2**31 - 1),
    ("grpc.max_receive_message_length", 2**31 - 1),
]

RESNET_INPUT = "input_tensor:0"
RESNET_OUTPUT = "ArgMax:0"
LATENCY_MODEL = "resnet50_latency"


@dataclass(frozen=True, slots=True)
class Durations:
    measure_s: float
    resnet_measure_s: float
    resnet_batch_s: float
    latency_runs: int


FULL = Durations(measure_s=10.0, resnet_measure_s=15.0, resnet_batch_s=3.0, latency_runs=30)
QUICK = Durations(measure_s=5.0, resnet_measure_s=6.0, resnet_batch_s=2.0, latency_runs=15)


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
) -> tuple[float, int]:
    """Requests per second with `concurrency` outstanding calls spread over `channels` connections.

    Calls start until `duration_s` has passed; the rate counts every call, including the last ones to finish.
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
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        return done / ((time.perf_counter_ns() - start) / 1e9), done
    finally:
        for channel in opened:
            await channel.close()


async def stream_rate(address: str, payload: bytes, *, window: int, duration_s: float) -> tuple[float, int]:
    """Responses per second on one ModelStreamInfer stream keeping `window` requests outstanding."""
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        call = channel.stream_stream(STREAM)()
        credit = asyncio.Semaphore(window)
        loop = asyncio.get_running_loop()
        stop_at = loop.time() + duration_s
        sent = received = 0

        async def writer() -> None:
            nonlocal sent
            while loop.time() < stop_at:
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


async def paired_latencies_ns(
    address: str, payload: bytes, local: Callable[[], int], runs: int
) -> tuple[list[int], list[int], list[int], list[int]]:
    """`runs` pairs, one at a time: the in-process call `local()` (returns its own ns), then one request
    through the server.

    Pairs see the same machine load, so their difference is the server's cost even on a shared machine.
    Returns in-process latencies, server (client-measured) latencies, and the server's queue time and its
    queue + compute time (its response parameters) of each.
    """
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        call = channel.unary_unary(INFER)
        for _ in range(3):
            await call(payload)
            local()
        local_ns: list[int] = []
        served_ns: list[int] = []
        queues: list[int] = []
        inside: list[int] = []
        for _ in range(runs):
            # NOTE: a pause after each run lets the previous run's threads settle (ONNX Runtime's pool may
            # spin when a config allows it), so neither side runs while the other's still spins.
            await asyncio.sleep(0.05)
            local_ns.append(local())
            await asyncio.sleep(0.05)
            start = time.perf_counter_ns()
            reply = await call(payload)
            served_ns.append(time.perf_counter_ns() - start)
            parameters = pb.ModelInferResponse.FromString(reply).parameters
            queues.append(parameters["edgeperf_queue_ns"].int64_param)
            inside.append(sum(parameters[name].int64_param for name in TIMING_PARAMETERS))
        return local_ns, served_ns, queues, inside


async def echo_latencies_ns(address: str, payload: bytes, runs: int) -> list[int]:
    """`runs` calls of the echo server with `payload`, one at a time, paced as `paired_latencies_ns`."""
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        call = channel.unary_unary(ECHO)
        for _ in range(3):
            await call(payload)
        latencies: list[int] = []
        for _ in range(runs):
            await asyncio.sleep(0.05)
            start = time.perf_counter_ns()
            await call(payload)
            latencies.append(time.perf_counter_ns() - start)
        return latencies


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

    async def main() -> None:
        server = grpc.aio.server(options=[*CHANNEL_OPTIONS, ("grpc.so_reuseport", 0)])
        handler = grpc.unary_unary_rpc_method_handler(echo)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("edgeperf.bench.Echo", {"Echo": handler}),)
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


async def part_b(durations: Durations, workdir: Path) -> list[str]:
    from edgeperf.benchmarks import registry

    repository = workdir / "tiny-repo"
    registry.get("tiny").write_model(repository / "tiny", size="small")
    # NOTE: the same graph with a 100 us batching window, to show what a window costs a lone request
    # (a wait on the idle instance thread: one more thread round trip per execution).
    _write_variant(repository, "tiny", "tiny_window", 100)
    data = np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 16)
    payload = infer_request_bytes("tiny", "INPUT0", data)
    window_payload = infer_request_bytes("tiny_window", "INPUT0", data)
    concurrency, rounds = 16, 5
    window_s = durations.measure_s / rounds
    rates: dict[str, list[float]] = {"echo": [], "unary": [], "stream": [], "window": []}
    cpu_s: dict[str, float] = dict.fromkeys(rates, 0.0)
    served: dict[str, int] = dict.fromkeys(rates, 0)
    with server_process(repository, "--no-metrics") as server:
        async with grpc.aio.insecure_channel(server.address) as channel:
            reply = await asyncio.wait_for(channel.unary_unary(INFER)(payload), 30)
        echo = EchoServer(len(reply))
        try:
            # NOTE: short alternating windows, so that both servers see the same machine load; the servers'
            # CPU time per request is reported too, as it depends far less on what else the machine runs.
            for _ in range(rounds):
                for kind, pid in (
                    ("echo", echo.pid),
                    ("unary", server.process.pid),
                    ("stream", server.process.pid),
                    ("window", server.process.pid),
                ):
                    before = process_cpu_s(pid)
                    if kind == "stream":
                        rate, count = await stream_rate(
                            server.address, payload, window=concurrency, duration_s=window_s
                        )
                    else:
                        address, path = (echo.address, ECHO) if kind == "echo" else (server.address, INFER)
                        body = window_payload if kind == "window" else payload
                        rate, count = await unary_rate(address, path, body, channels=1, concurrency=concurrency,
                                                       duration_s=window_s)  # fmt: skip
                    after = process_cpu_s(pid)
                    rates[kind].append(rate)
                    served[kind] += count
                    cpu_s[kind] += (after or 0.0) - (before or 0.0)
        finally:
            echo.close()
    ratio = statistics.median(u / e for u, e in zip(rates["unary"], rates["echo"], strict=True))
    stream_gain = statistics.median(s / u for s, u in zip(rates["stream"], rates["unary"], strict=True))
    cpu_us = {kind: 1e6 * cpu_s[kind] / max(served[kind], 1) for kind in rates}
    return [
        f"(b) tiny model (max_queue_delay 0), {len(payload)} B requests / {len(reply)} B responses, "
        f"{concurrency} outstanding, one connection, medians of {rounds} alternating windows",
        _line("edgeperf unary inferences/s", _spread(rates["unary"], ",.0f"), "", None),
        _line("bare grpc.aio echo requests/s (same sizes)", _spread(rates["echo"], ",.0f"), "", None),
        _line("unary / echo", f"{ratio:.2f}", "goal >= 0.60", ratio >= 0.6, ratio / 0.6),
        _line("edgeperf streaming inferences/s (one stream)", f"{statistics.median(rates['stream']):,.0f}", "", None),
        _line("streaming / unary", f"{stream_gain:.2f}", "goal > 1", stream_gain > 1.0),
        _line("server CPU us/request: echo, unary, streaming",
              f"{cpu_us['echo']:.0f}, {cpu_us['unary']:.0f}, {cpu_us['stream']:.0f}", "", None),
        _line("  unary with a 100 us batching window: inferences/s, CPU us",
              f"{statistics.median(rates['window']):,.0f}, {cpu_us['window']:.0f}", "", None),
        _line("CPU: echo / edgeperf unary (load-independent)", f"{cpu_us['echo'] / cpu_us['unary']:.2f}", "goal >= 0.60",
              cpu_us["echo"] / cpu_us["unary"] >= 0.6, cpu_us["echo"] / cpu_us["unary"] / 0.6),
    ]  # fmt: skip


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


def _write_variant(repository: Path, source: str, name: str, delay_us: int) -> None:
    """`repository/name`: the same graph as `source` (hard link) with another max_queue_delay."""
    (repository / name / "1").mkdir(parents=True)
    os.link(repository / source / "1" / "model.onnx", repository / name / "1" / "model.onnx")
    config = (repository / source / "config.pbtxt").read_text()
    config = re.sub(r"max_queue_delay_microseconds: \d+", f"max_queue_delay_microseconds: {delay_us}", config)
    (repository / name / "config.pbtxt").write_text(config.replace(f'name: "{source}"', f'name: "{name}"'))


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
    channels, concurrency, rounds = 4, 2 * max_batch, 3
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
        local_lat, served_lat, queue_ns, inside_ns = await paired_latencies_ns(
            server.address,
            latency_payload,
            local.once_ns,
            durations.latency_runs,
        )
        _, windowed_lat, windowed_queue_ns, _ = await paired_latencies_ns(
            server.address,
            payload,
            local.once_ns,
            max(durations.latency_runs // 2, 5),
        )
        async with grpc.aio.insecure_channel(server.address) as channel:
            reply = await channel.unary_unary(INFER)(latency_payload)
    echo = EchoServer(len(reply))
    try:
        echo_lat = await echo_latencies_ns(echo.address, latency_payload, durations.latency_runs)
    finally:
        echo.close()
    ratios = [s / loc for s, loc in zip(served_rates, local_rates, strict=True)]
    # NOTE: what the client waited beyond the server's own queue + compute: transport and the server's edge.
    edge_ms = statistics.median(s - i for s, i in zip(served_lat, inside_ns, strict=True)) / 1e6
    ratio = statistics.median(ratios)
    added_ms = statistics.median(s - loc for s, loc in zip(served_lat, local_lat, strict=True)) / 1e6
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
    lines += [
        f"(c) ResNet50 batch-1 latency, one at a time, {durations.latency_runs} interleaved in-process/server pairs "
        "(served copy with max_queue_delay 0)",
        _line("in-process median ms", f"{statistics.median(local_lat) / 1e6:.2f}", "", None),
        _line("server median ms (client-measured)", f"{statistics.median(served_lat) / 1e6:.2f}", "", None),
        _line("  server-side queue median ms", f"{statistics.median(queue_ns) / 1e6:.3f}", "", None),
        _line("  client-measured minus server queue+compute, median ms",
              f"{edge_ms:.2f}", "", None),
        _line("  bare grpc.aio echo of the same request, median ms", f"{statistics.median(echo_lat) / 1e6:.2f}", "", None),
        _line("  so the server's own overhead beyond transport, ms", f"{(edge_ms - statistics.median(echo_lat) / 1e6):.2f}",
              "", None),
        _line("added: median of pair differences ms", f"{added_ms:.2f}", "goal < 1 ms", added_ms < 1.0,
              1.0 / added_ms if added_ms > 0 else None),
        _line(f"for reference: throughput config ({delay_us} us delay) ms",
              f"{statistics.median(windowed_lat) / 1e6:.2f} (queue {statistics.median(windowed_queue_ns) / 1e6:.3f})",
              "", None),
    ]  # fmt: skip
    return lines


def _spread(values: Sequence[float], spec: str) -> str:
    """The median and the range of `values`."""
    return f"{statistics.median(values):{spec}} ({min(values):{spec}}-{max(values):{spec}})"


async def main_async(
    durations: Durations, skip_resnet50: bool, allow_spinning: str | None = None, skip_tiny: bool = False
) -> int:
    started = time.monotonic()
    print(f"edgeperf server benchmark: python {sys.version.split()[0]}, grpcio {grpc.__version__}, "
          f"onnxruntime {onnxruntime.__version__}, {os.cpu_count()} CPU cores", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="edgeperf-bench-") as tmp:
        if not skip_tiny:
            for line in await part_b(durations, Path(tmp)):
                print(line, flush=True)
        if not skip_resnet50:
            for line in await parts_a_c(durations, Path(tmp), allow_spinning):
                print(line, flush=True)
    print(f"total {time.monotonic() - started:.0f} s", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_server")
    parser.add_argument("--quick", action="store_true", help="shorter measurement windows")
    parser.add_argument("--skip-resnet50", action="store_true", help="only part (b)")
    parser.add_argument("--skip-tiny", action="store_true", help="only parts (a) and (c)")
    parser.add_argument(
        "--allow-spinning", choices=("0", "1"), help="override the ResNet50 config's ORT spinning"
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
    result: int = uvloop.run(main_async(durations, args.skip_resnet50, args.allow_spinning, args.skip_tiny))
    return result


if __name__ == "__main__":
    sys.exit(main())
