"""`make bench`, client part: edgeperf's client against perf_analyzer, side by side, on a bare echo server.

    python -m tests.bench.bench_client [--reps 3] [--rate 1000] [--ladder 1000 1500 2000 2500 3000 4000]
                                       [--seconds 6] [--latency-ms 10] [--rss] [--skip-peak] [--quick]
                                       [--pin]

Every figure is measured in this one run, as min / median / max over --reps interleaved repetitions,
with the load average printed (the machine may be shared: the ratios matter, not the absolutes):
  1. client CPU per query at --rate QPS (Poisson): `edgeperf run` (Server scenario, one worker) against
     perf_analyzer's request-rate mode and the bare grpcio clients of tests/bench/bare_grpc.py (the
     floor: what grpc.aio unary, grpc.aio streaming and the sync API cost with no edgeperf code). All
     are sampled the same way: the client's process-tree CPU (/proc) over a window in the middle of the
     run, over the requests the echo server counted in it. Goal: edgeperf <= 1.5x perf_analyzer.
     edgeperf runs on its own HTTP/2 transport (the default); beside it, unary over grpc.aio
     (`--transport grpcio`), so the transport's share is measured in the same run.
  2. issue delay p99 at --rate QPS, from edgeperf's self-check, unary (the goal: <= 200 us), and
     beside it with --streaming and with --workers 2 (how the delay follows the event loop's load).
  3. the highest target QPS on --ladder whose edgeperf Server run is VALID (p99 under --latency-ms),
     with --workers 1 and --workers 2, and perf_analyzer's achieved rate when asked for the top of the
     ladder. Goals: edgeperf (1 worker) >= 0.9x perf_analyzer's; 2 workers higher than 1.
  4. with --rss (long: 270 s), edgeperf's peak RSS for a 240 s run at 500 QPS against a 30 s run.
     Goal: within 10 %.

The echo server and the clients share every CPU. With --pin the echo server runs on the last CPU and
every client (and this bench) on the others, as on two machines; on a 2-core machine the clients then
share one core, so --workers 2 cannot beat one worker there.

perf_analyzer comes from the `tritonclient[grpc]==2.41.0` wheel in its own venv (its protobuf pins
differ from edgeperf's): build/pa-venv, made here with pip when missing. It needs the Debian package
libb64-0d (`apt-get install -y libb64-0d`) and the CUDA runtime wheel's lib dir on LD_LIBRARY_PATH
(set here). Without it, the perf_analyzer columns are skipped and the reason printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.bench.echo_kserve import MODEL, EchoServer

ROOT = Path(__file__).resolve().parents[2]
PA_VENV = ROOT / "build" / "pa-venv"
PA_BIN = PA_VENV / "bin" / "perf_analyzer"
EDGEPERF = Path(sys.executable).parent / "edgeperf"
PA_PIP = ("tritonclient[grpc]==2.41.0", "nvidia-cuda-runtime-cu12")


def split_cpus(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """With `pin`, (the echo server's CPUs, the clients' CPUs): the last CPU for the server, the others
    for the clients, as if they were two machines. Unpinned, a client's issue delay also measures how
    often the co-located server takes its core (edgeperf alone on a core of its own, unary p99 at
    1,000 QPS on 2 cores: 167-207 us pinned, 283-1,080 unpinned); but on 2 cores the clients then share
    one core with this bench's own sampling, which costs them more (a lower peak)."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return None, None
    return {cpus[-1]}, set(cpus[:-1])


def perf_analyzer() -> tuple[list[str], dict[str, str]] | str:
    """The perf_analyzer command and environment, set up in build/pa-venv if missing; or why not."""
    if not PA_BIN.exists():
        print(f"setting up perf_analyzer in {PA_VENV} (pip install {' '.join(PA_PIP)}) ...", flush=True)
        made = subprocess.run([sys.executable, "-m", "venv", str(PA_VENV)], check=False).returncode == 0
        pip = [str(PA_VENV / "bin" / "python"), "-m", "pip", "install", "-q", *PA_PIP]
        if not made or subprocess.run(pip, check=False).returncode != 0 or not PA_BIN.exists():
            return (
                f"perf_analyzer could not be installed: python -m venv {PA_VENV} && "
                f"{PA_VENV}/bin/pip install '{PA_PIP[0]}' {PA_PIP[1]}"
            )
    libs = sorted(PA_VENV.glob("lib/python3*/site-packages/nvidia/cuda_runtime/lib"))
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = ":".join([*(str(p) for p in libs), env.get("LD_LIBRARY_PATH", "")])
    probe = subprocess.run([str(PA_BIN), "--help"], capture_output=True, text=True, env=env, check=False)
    if "libb64" in probe.stderr:
        return (
            "perf_analyzer needs the Debian package libb64-0d: apt-get update && apt-get install -y libb64-0d"
        )
    return [str(PA_BIN)], env


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid` and its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        p = int(entry.name)
        children.setdefault(int(fields[1]), []).append(p)
        cpu[p] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += cpu.get(p, 0.0)
        todo.extend(children.get(p, []))
    return total


SERVER_CPU_US: list[float] = []
"""The echo server's CPU us per request in every sampled window: with the client's, the cores a rate needs."""


def sample_window(proc: subprocess.Popen[str], echo: EchoServer, window_s: float) -> tuple[float, int]:
    """Once requests flow and 1 s has passed: (client CPU s, requests served) over `window_s`."""
    deadline = time.monotonic() + 60
    start = echo.served()
    while echo.served() < start + 50:
        if proc.poll() is not None or time.monotonic() > deadline:
            err = proc.stderr.read() if proc.stderr is not None else ""
            raise RuntimeError(f"the client sent no requests: {err[-1500:]}")
        time.sleep(0.1)
    time.sleep(1.0)
    cpu0, n0, server0 = tree_cpu_s(proc.pid), echo.served(), tree_cpu_s(echo.pid)
    time.sleep(window_s)
    cpu1, n1, server1 = tree_cpu_s(proc.pid), echo.served(), tree_cpu_s(echo.pid)
    SERVER_CPU_US.append((server1 - server0) / max(n1 - n0, 1) * 1e6)
    return cpu1 - cpu0, n1 - n0


def _conf(path: Path, qps: float, seconds: float, latency_ms: float) -> Path:
    path.write_text(
        f"*.Server.target_qps = {qps:g}\n*.Server.min_duration = {int(seconds * 1000)}\n"
        f"*.Server.min_query_count = {int(qps * seconds)}\n*.Server.target_latency = {int(latency_ms)}\n"
    )
    return path


def edgeperf_cmd(
    address: str,
    qps: float,
    seconds: float,
    latency_ms: float,
    workers: int,
    out: Path,
    *,
    streaming: bool = False,
    transport: str = "h2",
) -> list[str]:
    conf = _conf(out.with_suffix(".conf"), qps, seconds, latency_ms)
    return [
        str(EDGEPERF), "run", "--server", address, "--model", MODEL, "--scenario", "Server",
        "--dataset", "synthetic:256", "--user-conf", str(conf), "--workers", str(workers),
        "--out", str(out), "--no-progress", "--transport", transport, *(["--streaming"] if streaming else []),
    ]  # fmt: skip


def edgeperf_cpu(
    echo: EchoServer,
    qps: float,
    seconds: float,
    tmp: Path,
    tag: str,
    *,
    streaming: bool = False,
    workers: int = 1,
    transport: str = "h2",
) -> tuple[float, float]:
    """(client CPU us per request, issue delay p99 us) of one edgeperf run at `qps`."""
    out = tmp / f"cpu-{tag}-{'stream' if streaming else 'unary'}-{workers}-{transport}"
    cmd = edgeperf_cmd(
        echo.address, qps, seconds, 1000.0, workers, out, streaming=streaming, transport=transport
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    cpu, n = sample_window(proc, echo, seconds - 3)
    proc.wait()
    doc = json.loads((out / "result.json").read_text())
    return cpu / max(n, 1) * 1e6, doc["run"]["client"]["issue_delay_p99_ns"] / 1e3


BARE = ("aio-unary", "aio-stream", "sync-unary")
"""The bare grpcio clients (tests/bench/bare_grpc.py) measured beside edgeperf: the floor under it."""


def bare_cpu(echo: EchoServer, transport: str, rate: float, seconds: float) -> float:
    """A bare grpcio client's CPU us per request at `rate`, sampled as edgeperf's."""
    cmd = [
        sys.executable,
        "-m",
        "tests.bench.bare_grpc",
        echo.address,
        transport,
        f"{rate:g}",
        f"{seconds:g}",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    cpu, n = sample_window(proc, echo, seconds - 3)
    proc.wait()
    return cpu / max(n, 1) * 1e6


def pa_cmd(pa: list[str], address: str, rate: float, seconds: float) -> list[str]:
    return [
        *pa, "-m", MODEL, "-u", address, "-i", "grpc", f"--request-rate-range={rate}",
        "--request-distribution=poisson", f"--measurement-interval={int(seconds * 1000)}",
        "--max-trials=1", "--stability-percentage=100",
    ]  # fmt: skip


def pa_cpu(pa: tuple[list[str], dict[str, str]], echo: EchoServer, rate: float, seconds: float) -> float:
    """perf_analyzer's CPU us per request at `rate`, sampled as edgeperf's."""
    proc = subprocess.Popen(
        pa_cmd(pa[0], echo.address, rate, seconds), env=pa[1], stdout=subprocess.DEVNULL, text=True
    )
    cpu, n = sample_window(proc, echo, seconds - 3)
    proc.wait()
    return cpu / max(n, 1) * 1e6


def pa_rate(pa: tuple[list[str], dict[str, str]], echo: EchoServer, rate: float, seconds: float) -> float:
    """The rate perf_analyzer achieves when asked for `rate`, counted at the server (it may give up
    and print no throughput of its own when it cannot keep the rate)."""
    proc = subprocess.Popen(
        pa_cmd(pa[0], echo.address, rate, seconds), env=pa[1], stdout=subprocess.DEVNULL, text=True
    )
    window = seconds - 3
    _, n = sample_window(proc, echo, window)
    proc.wait()
    return n / window


def edgeperf_valid(
    echo: EchoServer, qps: float, seconds: float, latency_ms: float, workers: int, out: Path
) -> bool:
    done = subprocess.run(
        edgeperf_cmd(echo.address, qps, seconds, latency_ms, workers, out),
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0


def peak(
    echo: EchoServer, ladder: Sequence[float], seconds: float, latency_ms: float, workers: int, tmp: Path
) -> float:
    """The highest rate on the ladder (climbed until the first INVALID run) whose run was VALID; 0 if none."""
    best = 0.0
    for qps in ladder:
        if not edgeperf_valid(
            echo, qps, seconds, latency_ms, workers, tmp / f"peak-{workers}-{qps:g}-{time.time_ns()}"
        ):
            break
        best = qps
    return best


def spread(values: Sequence[float], fmt: str = ".0f") -> str:
    return f"{min(values):{fmt}} / {statistics.median(values):{fmt}} / {max(values):{fmt}}"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min), {os.cpu_count()} CPUs"


def peak_rss_mb(cmd: list[str]) -> float:
    """The peak resident memory of a child process (ru_maxrss of its wait4)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return usage.ru_maxrss / 1024


def _ratio(a: Sequence[float], b: Sequence[float]) -> str:
    return spread([x / y if y else float("nan") for x, y in zip(a, b, strict=True)], ".2f")


def report(rows: dict[str, list[float]], loads: Sequence[float], args: argparse.Namespace) -> None:
    print(f"\nclient-side figures, min / median / max over {args.reps} interleaved repetitions")
    print(f"load average (1 min) after each repetition: {', '.join(f'{x:.2f}' for x in loads)}")
    print(f"1. client CPU us/query at {args.rate:g} QPS (Poisson), same window method for every client:")
    print(f"   edgeperf unary:     {spread(rows['ep_cpu'])}")
    print(f"   edgeperf streaming: {spread(rows['ep_stream_cpu'])}")
    print(
        f"   edgeperf unary over grpc.aio (--transport grpcio): {spread(rows['ep_grpcio_cpu'])}; "
        f"edgeperf's HTTP/2 / grpc.aio {_ratio(rows['ep_cpu'], rows['ep_grpcio_cpu'])}"
    )
    for transport in BARE:
        if rows[transport]:
            print(f"   bare {transport + ':':<15}{spread(rows[transport])} (grpcio alone: the floor)")
    if rows["pa_cpu"]:
        print(f"   perf_analyzer:      {spread(rows['pa_cpu'])}")
        print(
            f"   ratio unary / perf_analyzer {_ratio(rows['ep_cpu'], rows['pa_cpu'])} (goal <= 1.5), "
            f"streaming / perf_analyzer {_ratio(rows['ep_stream_cpu'], rows['pa_cpu'])}"
        )
        floor = [f"{t} {_ratio(rows[t], rows['pa_cpu'])}" for t in BARE if rows[t]]
        if floor:
            print(f"   the floor, bare grpcio / perf_analyzer: {'; '.join(floor)}")
    for transport, own in (("aio-unary", "ep_cpu"), ("aio-stream", "ep_stream_cpu")):
        if rows[transport]:
            print(f"   edgeperf over bare {transport}: {_ratio(rows[own], rows[transport])}")
    if SERVER_CPU_US:
        server = statistics.median(SERVER_CPU_US)
        client = statistics.median(rows["ep_cpu"])
        print(
            f"   echo server: {spread(SERVER_CPU_US)} us CPU per request; with edgeperf unary, a rate of R/s "
            f"needs R x {client + server:.0f} us = {(client + server) / 1e6 * 1000:.2f} cores per 1,000/s "
            f"of the machine's {os.cpu_count()}"
        )
    print(f"2. edgeperf issue delay p99 at {args.rate:g} QPS (us): {spread(rows['delay'])} (goal <= 200)")
    # NOTE: the delay comes from the event loop being busy with completions when a query is due; these
    # show how it moves with the loop's load (a cheaper transport, or the rate split over two loops).
    print(
        f"   the same with --streaming: {spread(rows['delay_stream'])}; with --workers 2: "
        f"{spread(rows['delay_w2'])} (CPU us/query {spread(rows['ep_w2_cpu'])})"
    )
    if rows["ep1"]:
        print(f"3. highest VALID Server QPS (p99 < {args.latency_ms:g} ms) on the ladder {args.ladder}:")
        print(
            f"   edgeperf --workers 1: {spread(rows['ep1'])}; --workers 2: {spread(rows['ep2'])}; "
            f"2 / 1: {_ratio(rows['ep2'], rows['ep1'])} (goal > 1)"
        )
        if rows["pa_peak"]:
            print(
                f"   perf_analyzer achieved (asked {max(args.ladder):g}/s, counted at the server): "
                f"{spread(rows['pa_peak'])}; edgeperf 1 worker / perf_analyzer "
                f"{_ratio(rows['ep1'], rows['pa_peak'])} (goal >= 0.9)"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--ladder", type=float, nargs="+", default=[1000, 1500, 2000, 2500, 3000, 4000])
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each run")
    parser.add_argument(
        "--latency-ms", type=float, default=10.0, help="Server latency bound of the peak runs"
    )
    parser.add_argument("--rss", action="store_true", help="also the 240 s vs 30 s peak-RSS check (long)")
    parser.add_argument("--skip-peak", action="store_true", help="only the CPU and issue-delay figures")
    parser.add_argument("--quick", action="store_true", help="4 s runs and a shorter ladder")
    parser.add_argument(
        "--pin", action="store_true", help="the echo server on the last CPU, the clients on the others"
    )
    # NOTE: `make bench` passes its arguments to every part; the ones for other parts are ignored here.
    args, ignored = parser.parse_known_args(argv)
    if ignored:
        print(f"bench_client: ignoring {' '.join(ignored)}")
    if args.quick:
        args.seconds = min(args.seconds, 4.0)
        args.ladder = [q for q in args.ladder if q <= 3000]
    print(f"bench_client: {load()} at the start", flush=True)
    pa = perf_analyzer()
    if isinstance(pa, str):
        print(f"perf_analyzer columns skipped: {pa}", flush=True)
    echo_cpus, client_cpus = split_cpus(args.pin)
    echo = EchoServer(echo_cpus)
    if client_cpus is not None:
        os.sched_setaffinity(0, client_cpus)  # NOTE: every client below inherits it
        print(f"pinned: echo server on CPU {sorted(echo_cpus or ())}, clients on CPUs {sorted(client_cpus)}")
    keys = (
        *("ep_cpu", "ep_stream_cpu", "ep_grpcio_cpu", *BARE, "pa_cpu"),
        *("delay", "delay_stream", "ep_w2_cpu", "delay_w2", "ep1", "ep2", "pa_peak"),
    )
    rows: dict[str, list[float]] = {k: [] for k in keys}
    loads: list[float] = []
    try:
        with tempfile.TemporaryDirectory(prefix="edgeperf-bench-client-") as tmp_name:
            tmp = Path(tmp_name)
            for rep in range(args.reps):
                # NOTE: interleaved: each repetition measures every client once, so load changes hit all.
                cpu, delay = edgeperf_cpu(echo, args.rate, args.seconds, tmp, f"{rep}")
                rows["ep_cpu"].append(cpu)
                rows["delay"].append(delay)
                stream_cpu, delay = edgeperf_cpu(echo, args.rate, args.seconds, tmp, f"{rep}", streaming=True)
                rows["ep_stream_cpu"].append(stream_cpu)
                rows["delay_stream"].append(delay)
                rows["ep_grpcio_cpu"].append(
                    edgeperf_cpu(echo, args.rate, args.seconds, tmp, f"{rep}", transport="grpcio")[0]
                )
                w2_cpu, delay = edgeperf_cpu(echo, args.rate, args.seconds, tmp, f"{rep}", workers=2)
                rows["ep_w2_cpu"].append(w2_cpu)
                rows["delay_w2"].append(delay)
                for transport in BARE:
                    rows[transport].append(bare_cpu(echo, transport, args.rate, args.seconds))
                if not isinstance(pa, str):
                    rows["pa_cpu"].append(pa_cpu(pa, echo, args.rate, args.seconds))
                if not args.skip_peak:
                    rows["ep1"].append(peak(echo, args.ladder, args.seconds, args.latency_ms, 1, tmp))
                    rows["ep2"].append(peak(echo, args.ladder, args.seconds, args.latency_ms, 2, tmp))
                    if not isinstance(pa, str):
                        rows["pa_peak"].append(pa_rate(pa, echo, max(args.ladder), args.seconds))
                loads.append(os.getloadavg()[0])
                print(
                    f"  rep {rep + 1}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in rows.items() if v),
                    flush=True,
                )
            report(rows, loads, args)
            if args.rss:
                rss = {
                    s: peak_rss_mb(edgeperf_cmd(echo.address, 500, s, 1000.0, 1, tmp / f"rss-{s}"))
                    for s in (30, 240)
                }
                print(
                    f"4. peak RSS at 500 QPS: 30 s {rss[30]:.1f} MB, 240 s {rss[240]:.1f} MB, "
                    f"ratio {rss[240] / rss[30]:.3f} (goal <= 1.10)"
                )
    finally:
        echo.close()
    print(f"bench_client: {load()} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
