"""`make bench` (load-generator part): edgeperf's Server scenario against a server with a known service time.

    python -m tests.bench.bench_loadgen [--service-us 1000] [--duration-ms 3000] [--qps 250 500 1000 2000]
                                        [--streaming]

Prints, in one run:
  0. the load generator alone against the in-process FakeSut: issue delay and the client's CPU share;
  1. edgeperf's Server scenario at several target QPS: issue delay (issued - scheduled) p50/p99, latency
     p90/p99 and scheduled/completed QPS (goal: issue delay p99 under 200 us at 1,000 QPS);
  2. the highest target QPS edgeperf sustains without falling behind its schedule (issue delay p99 under
     1 ms and completed QPS within 5 % of the target);
  3. the official LoadGen (mlperf_loadgen, through `edgeperf.client.issue.loadgen_bridge`) driving the same
     gRPC SUT against the same server with the same settings and seeds, side by side with edgeperf
     (goal: p90/p99 latency and QPS within 5 %).
The server is `edgeperf-server serve` with the tiny model's fixed-delay variant
(`edgeperf.benchmarks.tiny.model.write_delay_model`), so the expected latency is known.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeperf.benchmarks.tiny.model import write_delay_model
from edgeperf.client.issue.fake_sut import FakeSut, FakeSutConfig
from edgeperf.client.issue.sut_grpc import GrpcSut, GrpcSutConfig
from edgeperf.client.plan.conf import resolve_test_settings
from edgeperf.client.plan.qsl import RequestEncoder, SerializedQsl, SyntheticSource
from edgeperf.client.plan.settings import Scenario, TestSettings
from edgeperf.client.run import RunOptions, run_benchmark, run_with_sut
from tests.e2e._server import serve

MODEL = "delay"
SAMPLES = 256


def settings_for(qps: float, duration_ms: int) -> TestSettings:
    """v2.1 seeds and rules, a short duration, a generous latency bound."""
    base = resolve_test_settings(MODEL, Scenario.SERVER, rules="v2.1").settings
    return base.with_changes(
        server_target_qps=qps,
        min_duration_ms=duration_ms,
        min_query_count=max(100, int(qps * duration_ms / 1000)),
        server_target_latency_ns=100_000_000,
    )


@dataclass(frozen=True, slots=True)
class Row:
    qps: float
    delay_p50_us: float
    delay_p99_us: float
    lat_p90_ms: float
    lat_p99_ms: float
    scheduled_qps: float
    completed_qps: float
    failed: int
    errors: str
    """Failed samples by gRPC status, e.g. `UNAVAILABLE:12`."""

    @property
    def kept_up(self) -> bool:
        return self.delay_p99_us < 1000 and self.completed_qps >= 0.95 * self.qps and self.failed == 0


async def edgeperf_run(
    address: str, qps: float, duration_ms: int, out: Path, *, streaming: bool = False
) -> Row:
    outcome = await run_benchmark(
        RunOptions(
            server=address,
            model=MODEL,
            scenario=Scenario.SERVER,
            test_settings=settings_for(qps, duration_ms),
            out_dir=out,
            dataset=f"synthetic:{SAMPLES}",
            max_in_flight=None,
            streaming=streaming,
        )
    )
    doc: dict[str, Any] = outcome.result_json
    metrics = doc["metrics"]
    lat = metrics["sample_latency_ns"]["percentiles"]
    delay = doc["issue_delay_ns"]
    return Row(
        qps=qps,
        delay_p50_us=delay["p50_ns"] / 1e3,
        delay_p99_us=delay["p99_ns"] / 1e3,
        lat_p90_ms=lat["90.00"] / 1e6,
        lat_p99_ms=lat["99.00"] / 1e6,
        scheduled_qps=metrics["scheduled_samples_per_sec"],
        completed_qps=metrics["completed_samples_per_sec"],
        failed=doc["errors"]["performance"]["failed"],
        errors=" ".join(f"{k}:{v}" for k, v in doc["errors"]["performance"]["by_status"].items()),
    )


async def official_child(address: str, qps: float, duration_ms: int, out: Path, streaming: bool) -> None:
    """Runs in its own process (LoadGen's logger is process-wide) and prints the detail keys as JSON."""
    from edgeperf.client.issue.loadgen_bridge import run_official

    config = GrpcSutConfig(address=address, model=MODEL, collect_data=False, streaming=streaming)
    async with GrpcSut(config) as sut:
        signature = await sut.model_signature()
        qsl = SerializedQsl(SyntheticSource(signature, SAMPLES), RequestEncoder(signature))
        sut.use_qsl(qsl)
        run = await run_official(sut, qsl, settings_for(qps, duration_ms), out)
    print(json.dumps({k: v for k, v in run.detail.items() if k.startswith("result_")}))


def official_run(address: str, qps: float, duration_ms: int, out: Path, streaming: bool) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.bench.bench_loadgen",
            "--official-child",
            address,
            str(qps),
            str(duration_ms),
            str(out),
            *(["--streaming"] if streaming else []),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"official LoadGen run failed:\n{proc.stderr[-3000:]}")
    doc: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return doc


def _median(rows: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    a, b, c, d = (statistics.median(column) for column in zip(*rows, strict=True))
    return a, b, c, d


def _pct(a: float, b: float) -> str:
    return f"{(a - b) / b * 100:+.1f}%" if b else "n/a"


class _IndexQsl:
    """A QSL of indices only, for the in-process FakeSut."""

    name = "index-qsl"
    total_sample_count = SAMPLES
    performance_sample_count = SAMPLES

    def load_samples(self, indices: Sequence[int]) -> None:
        return None

    def unload_samples(self, indices: Sequence[int]) -> None:
        return None


async def generator_only(qps_list: list[float], duration_ms: int, tmp: Path) -> None:
    """The load generator alone: Server scenario against FakeSut (1 ms service time, no network)."""
    print("0. the load generator alone (in-process FakeSut, 1 ms service time, no server, no network)")
    print(
        f"{'target QPS':>10} {'delay p50 us':>13} {'delay p99 us':>13} {'compl QPS':>10} {'client CPU %':>13}"
    )
    for qps in qps_list:
        settings = settings_for(qps, duration_ms)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        outcome = await run_with_sut(
            FakeSut(FakeSutConfig(latency_ns=1_000_000)), _IndexQsl(), settings, tmp / f"fake-{qps}"
        )
        cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0) * 100
        doc: dict[str, Any] = outcome.result_json
        delay = doc["issue_delay_ns"]
        print(
            f"{qps:>10g} {delay['p50_ns'] / 1e3:>13.1f} {delay['p99_ns'] / 1e3:>13.1f} "
            f"{doc['metrics']['completed_samples_per_sec']:>10.1f} {cpu:>13.0f}",
            flush=True,
        )
    print()


async def bench(args: argparse.Namespace) -> int:
    load1, load5, _ = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load1:.2f} (1 min) {load5:.2f} (5 min) at the start\n"
    )
    streaming: bool = args.streaming
    with tempfile.TemporaryDirectory(prefix="edgeperf-bench-loadgen-") as tmp:
        await generator_only(args.generator_qps, args.duration_ms, Path(tmp))
        repo = Path(tmp) / "repo"
        write_delay_model(repo / MODEL, args.service_us, max_batch_size=64, instance_count=2)
        print(
            f"server: edgeperf-server, model '{MODEL}' with a fixed service time of {args.service_us} us "
            f"per batch (dynamic batching, 2 instances); Server scenario, {args.duration_ms} ms per run; "
            f"gRPC {'ModelStreamInfer (one stream)' if streaming else 'unary ModelInfer'}\n"
        )
        with serve(repo) as server:
            address = server.address
            # NOTE: a first short run warms the connection, the server's batcher and both interpreters.
            await edgeperf_run(address, 200.0, 500, Path(tmp) / "warmup", streaming=streaming)
            print("1. edgeperf issue accuracy (issue delay = issued - scheduled, per query)")
            print(
                f"{'target QPS':>10} {'delay p50 us':>13} {'delay p99 us':>13} {'lat p90 ms':>11} "
                f"{'lat p99 ms':>11} {'sched QPS':>10} {'compl QPS':>10} {'failed':>7}"
            )
            rows: dict[float, Row] = {}
            for qps in args.qps:
                row = await edgeperf_run(
                    address, qps, args.duration_ms, Path(tmp) / f"ep-{qps}", streaming=streaming
                )
                rows[qps] = row
                print(
                    f"{qps:>10g} {row.delay_p50_us:>13.1f} {row.delay_p99_us:>13.1f} {row.lat_p90_ms:>11.3f} "
                    f"{row.lat_p99_ms:>11.3f} {row.scheduled_qps:>10.1f} {row.completed_qps:>10.1f} "
                    f"{row.failed:>7} {row.errors}",
                    flush=True,
                )
            if 1000.0 in rows:
                p99 = rows[1000.0].delay_p99_us
                print(
                    f"   goal issue delay p99 < 200 us at 1000 QPS: {p99:.1f} us -> {'MET' if p99 < 200 else 'NOT MET'}"
                )

            print(
                "\n2. highest target QPS sustained without falling behind (delay p99 < 1 ms, completed >= 95%)"
            )
            best = 0.0
            for qps in args.ramp:
                row = await edgeperf_run(
                    address, qps, args.ramp_duration_ms, Path(tmp) / f"ramp-{qps}", streaming=streaming
                )
                print(
                    f"   {qps:>7g} QPS: delay p99 {row.delay_p99_us:9.1f} us, completed {row.completed_qps:8.1f}/s "
                    f"-> {'kept up' if row.kept_up else 'fell behind'}",
                    flush=True,
                )
                if not row.kept_up:
                    break
                best = qps
            print(
                f"   highest sustained: {best:g} QPS" if best else "   none of the ramp rates was sustained"
            )

            print(
                "\n3. official LoadGen through the same gRPC SUT vs edgeperf (same server, settings and "
                f"seeds; runs interleaved, median of {args.repeats})"
            )
            print(
                f"{'target QPS':>10} {'tool':>9} {'p90 ms':>9} {'p99 ms':>9} {'sched QPS':>10} {'compl QPS':>10}"
            )
            for qps in args.compare_qps:
                ours: list[tuple[float, float, float, float]] = []
                theirs: list[tuple[float, float, float, float]] = []
                for r in range(args.repeats):
                    row = await edgeperf_run(
                        address, qps, args.duration_ms, Path(tmp) / f"cmp-{qps}-{r}", streaming=streaming
                    )
                    ours.append((row.lat_p90_ms, row.lat_p99_ms, row.scheduled_qps, row.completed_qps))
                    lg = official_run(address, qps, args.duration_ms, Path(tmp) / f"lg-{qps}-{r}", streaming)
                    theirs.append(
                        (
                            float(lg.get("result_90.00_percentile_latency_ns", 0)) / 1e6,
                            float(lg.get("result_99.00_percentile_latency_ns", 0)) / 1e6,
                            float(lg.get("result_scheduled_samples_per_sec", 0)),
                            float(lg.get("result_completed_samples_per_sec", 0)),
                        )
                    )
                a, b = _median(ours), _median(theirs)
                print(f"{qps:>10g} {'edgeperf':>9} {a[0]:>9.3f} {a[1]:>9.3f} {a[2]:>10.1f} {a[3]:>10.1f}")
                print(f"{'':>10} {'LoadGen':>9} {b[0]:>9.3f} {b[1]:>9.3f} {b[2]:>10.1f} {b[3]:>10.1f}")
                print(
                    f"{'':>10} {'diff':>9} {_pct(a[0], b[0]):>9} {_pct(a[1], b[1]):>9} "
                    f"{_pct(a[2], b[2]):>10} {_pct(a[3], b[3]):>10}",
                    flush=True,
                )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--service-us", type=int, default=1000, help="fixed service time per batch (us)")
    parser.add_argument("--duration-ms", type=int, default=3000, help="min duration of each run (ms)")
    parser.add_argument("--qps", type=float, nargs="+", default=[250.0, 500.0, 1000.0, 2000.0])
    parser.add_argument("--generator-qps", type=float, nargs="+", default=[1000.0, 5000.0, 10000.0, 20000.0])
    parser.add_argument(
        "--ramp", type=float, nargs="+", default=[1000.0, 2000.0, 3000.0, 4000.0, 6000.0, 8000.0]
    )
    parser.add_argument("--ramp-duration-ms", type=int, default=2000)
    parser.add_argument("--compare-qps", type=float, nargs="+", default=[500.0, 1000.0])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per tool in the comparison")
    parser.add_argument(
        "--streaming",
        action="store_true",
        help="send over one ModelStreamInfer stream instead of unary calls",
    )
    parser.add_argument("--official-child", nargs=4, metavar=("ADDRESS", "QPS", "DURATION_MS", "OUT"))
    # NOTE: `make bench` passes its own arguments to every part; ignore what is not ours.
    args, _ = parser.parse_known_args(argv)
    if args.official_child:
        address, qps, duration_ms, out = args.official_child
        asyncio.run(official_child(address, float(qps), int(duration_ms), Path(out), args.streaming))
        return 0
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
