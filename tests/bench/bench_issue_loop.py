"""`make bench-issue-loop`: edgeperf's own client cost per query, with no network (issue 7).

    python -m tests.bench.bench_issue_loop [--rate 1000 5000] [--seconds 5] [--reps 3]
                                           [--latency-us 200] [--profile FILE] [--rss]

A Server-scenario `run_with_sut` against an in-process SUT that answers each query after a fixed
service time with one event-loop timer (no gRPC, no sockets, and none of FakeSut's bookkeeping for
tests, which keeps every call), on uvloop, as `edgeperf run` drives it: the schedule, the issue loop, QuerySample/QuerySampleResponse, the tracker
and recorder, the logs. What it prints is the client self-check of the performance pass (the timed
section's process CPU over its queries, and the issue delay against the schedule), as min / median /
max over --reps repetitions per rate, with the load average; this is what edgeperf costs on top of
its transport. Beside each run, interleaved, a bare loop issues the same rate with the same SUT and
the same precise timer and nothing else: the difference is edgeperf's own per-query cost (schedule,
QuerySample, recorder, tracker, end-of-run checks), the floor what any precise issuer pays (a timer
wake-up per query, the SUT). --profile writes a cProfile of one extra run at the first rate (read it with
`python -m pstats FILE`). --rss also runs 30,000 and 120,000 queries at 10,000 QPS (the SUT keeps
up) in child processes, both above the summary's chunk size, and prints the growth of their peak RSS per
query: the fixed per-query state a long run adds (issue 7: a 240 s run within 10 % of a 30 s one).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgeperf.client.issue.selfcheck import ClientCheck
from edgeperf.client.issue.sut import QuerySample, QuerySampleResponse, QuerySamplesComplete
from edgeperf.client.plan.scenarios.base import LoopClock, wait_until
from edgeperf.client.plan.settings import Scenario, TestMode, TestSettings
from edgeperf.client.run import run_with_sut


class _IndexQsl:
    """A QSL over nothing: the fake SUT needs only sample indices."""

    name = "bench-qsl"
    total_sample_count = 1024
    performance_sample_count = 1024

    def load_samples(self, indices: Sequence[int]) -> None:
        pass

    def unload_samples(self, indices: Sequence[int]) -> None:
        pass


class _TimerSut:
    """Answers every sample of a query `latency_ns` after it was issued, with 4 bytes of data."""

    name = "bench-timer-sut"

    def __init__(self, latency_ns: int) -> None:
        self._delay_s = latency_ns / 1e9
        self._loop = asyncio.get_running_loop()

    async def issue_query(self, samples: Sequence[QuerySample], complete: QuerySamplesComplete) -> None:
        sent_ns = time.perf_counter_ns()
        responses = [QuerySampleResponse(id=s.id, data=b"\0\0\0\0", sent_ns=sent_ns) for s in samples]
        self._loop.call_later(self._delay_s, _answer, complete, responses)

    async def flush_queries(self) -> None:
        pass


def _answer(complete: QuerySamplesComplete, responses: list[QuerySampleResponse]) -> None:
    complete(responses, time.perf_counter_ns())


def _settings(rate: float, seconds: float) -> TestSettings:
    return TestSettings(
        scenario=Scenario.SERVER,
        mode=TestMode.PERFORMANCE_ONLY,
        server_target_qps=rate,
        min_duration_ms=int(seconds * 1000),
        min_query_count=int(rate * seconds),
        server_target_latency_ns=1_000_000_000,
    )


async def _one(rate: float, seconds: float, latency_us: float, out: Path) -> ClientCheck:
    sut = _TimerSut(int(latency_us * 1000))
    outcome = await run_with_sut(sut, _IndexQsl(), _settings(rate, seconds), out)
    assert outcome.client is not None
    return outcome.client


def run_once(rate: float, seconds: float, latency_us: float) -> ClientCheck:
    """One performance pass at `rate` QPS for `seconds`, on uvloop, its logs in a temporary folder."""
    import uvloop

    with tempfile.TemporaryDirectory() as tmp, asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
        return r.run(_one(rate, seconds, latency_us, Path(tmp)))


async def _floor(rate: float, seconds: float, latency_us: float) -> tuple[float, int, int]:
    """The floor under edgeperf: the same SUT, Poisson times and precise timer (`LoopClock`, its
    timerfd), issued by a bare loop with no schedule, recorder or tracker: (CPU us per query, issue
    delay p50 ns, p99 ns)."""
    rng = np.random.default_rng(1)
    n = int(rate * seconds)
    offsets = np.cumsum(rng.exponential(1e9 / rate, n)).astype(np.int64)
    sut = _TimerSut(int(latency_us * 1000))
    clock = LoopClock()
    done = [0]
    all_done = asyncio.Event()

    def complete(responses: Sequence[QuerySampleResponse], completed_ns: int) -> None:
        done[0] += len(responses)
        if done[0] == n:
            all_done.set()

    delays = np.empty(n, dtype=np.int64)
    cpu0 = time.process_time()
    start_ns = clock.now_ns() + 1_000_000
    try:
        for q in range(n):
            due_ns = start_ns + int(offsets[q])
            await wait_until(due_ns, clock)
            delays[q] = clock.now_ns() - due_ns
            await sut.issue_query([QuerySample(q, q % 1024)], complete)
        await all_done.wait()
    finally:
        clock.close()
    cpu_us = (time.process_time() - cpu0) / n * 1e6
    delays.sort()
    return cpu_us, int(delays[n // 2]), int(delays[int(n * 0.99)])


def floor_once(rate: float, seconds: float, latency_us: float) -> tuple[float, int, int]:
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
        return r.run(_floor(rate, seconds, latency_us))


RSS_RATE = 10_000.0
RSS_QUERIES = (30_000, 120_000)


def peak_rss_bytes(queries: int) -> int:
    """Peak RSS of a child process that runs `queries` at `RSS_RATE` against the timer SUT.

    The child reads its own VmHWM: its rusage maxrss would include the RSS of this (larger) parent,
    which Linux carries over through fork and exec.
    """
    code = (
        "import re; from pathlib import Path; from tests.bench.bench_issue_loop import run_once; "
        f"run_once({RSS_RATE}, {queries / RSS_RATE}, 0.0); "
        "print(re.search(r'VmHWM:\\s+(\\d+) kB', Path('/proc/self/status').read_text()).group(1))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) * 1024


def rss_per_query() -> float:
    """Bytes of peak RSS per query between the short and the long child run."""
    short, long = (peak_rss_bytes(n) for n in RSS_QUERIES)
    return (long - short) / (RSS_QUERIES[1] - RSS_QUERIES[0])


def spread(values: Sequence[float]) -> str:
    return f"{min(values):.1f} / {statistics.median(values):.1f} / {max(values):.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rate", type=float, nargs="+", default=[1000.0, 5000.0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--latency-us", type=float, default=200.0, help="the fake SUT's service time")
    parser.add_argument("--profile", type=Path, help="write a cProfile of one run at the first rate")
    parser.add_argument("--rss", action="store_true", help="also the peak-RSS growth per query")
    # NOTE: `make bench` passes every part the same arguments; the ones meant for the others are ignored.
    args, _ = parser.parse_known_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    rows: dict[float, list[ClientCheck]] = {rate: [] for rate in args.rate}
    floors: dict[float, list[tuple[float, int, int]]] = {rate: [] for rate in args.rate}
    for _ in range(args.reps):
        for rate in args.rate:  # NOTE: interleaved, so a burst of load elsewhere spreads over every rate
            rows[rate].append(run_once(rate, args.seconds, args.latency_us))
            floors[rate].append(floor_once(rate, args.seconds, args.latency_us))
    print(
        f"timer SUT ({args.latency_us:g} us), Server, {args.seconds:g} s, min / median / max of {args.reps}:"
    )
    for rate, checks in rows.items():
        print(
            f"  {rate:>6.0f} QPS: client CPU {spread([c.cpu_per_query_us for c in checks])} us/query, "
            f"issuing thread {spread([c.loop_cpu_s / c.queries * 1e6 for c in checks])} us/query, "
            f"issue delay p50 {spread([c.issue_delay_p50_ns / 1e3 for c in checks])} us, "
            f"p99 {spread([c.issue_delay_p99_ns / 1e3 for c in checks])} us, "
            f"gc {spread([float(c.gc_collections) for c in checks])}"
        )
        bare = floors[rate]
        print(
            f"  {rate:>6.0f} QPS, bare loop (same SUT and timer): CPU {spread([b[0] for b in bare])} us/query, "
            f"issue delay p50 {spread([b[1] / 1e3 for b in bare])} us, p99 {spread([b[2] / 1e3 for b in bare])} us"
        )
        own = [c.cpu_per_query_us - b[0] for c, b in zip(checks, bare, strict=True)]
        print(f"  {rate:>6.0f} QPS, edgeperf's own (run - bare, per rep): {spread(own)} us/query")
    if args.rss:
        growth = [rss_per_query() for _ in range(args.reps)]
        print(
            f"peak RSS growth, {RSS_QUERIES[0]:,} vs {RSS_QUERIES[1]:,} queries: {spread(growth)} bytes/query"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.profile is not None:
        profiler = cProfile.Profile()
        profiler.enable()
        run_once(args.rate[0], args.seconds, args.latency_us)
        profiler.disable()
        profiler.dump_stats(args.profile)
        print(f"profile: {args.profile} (python -m pstats {args.profile})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
