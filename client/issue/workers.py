"""`edgeperf run --workers N`: one Server or Offline performance pass issued from N processes.

One process issues about a thousand queries a second on one core (gRPC's Python layer is most of it); a
faster device needs more. The parent generates the one schedule (same seeds, same sample indices) and
starts N worker processes (spawned: gRPC must never be forked). Each opens its own event loop, channels
and QSL, and issues its share at the absolute scheduled times of the shared monotonic origin
(`time.perf_counter_ns()` is CLOCK_MONOTONIC, the same clock in every process): Server query q goes
from worker q mod N, Offline's one query is split into N contiguous parts of its samples. Every worker
records into one set of result columns in a shared memory map (disjoint slots, no locks, no broker);
at the end each sends, over its pipe, what does not fit in columns (failure messages, accuracy bytes,
events, its CPU). The parent then holds exactly the arrays a one-process run would have filled, so
logs, early stopping and sample indices come out the same.
"""

from __future__ import annotations

import asyncio
import gc
import math
import multiprocessing
import os
import tempfile
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgeperf.client.errors import RunSetupError
from edgeperf.client.issue.loop import EndOfRun, EndReason, issue_queries
from edgeperf.client.issue.recorder import RecorderColumns, RunRecorder
from edgeperf.client.issue.selfcheck import SectionCost, TimedSection
from edgeperf.client.issue.sut import InFlightCounted, SystemUnderTest
from edgeperf.client.issue.tracker import CompletionTracker
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.qsl import QuerySampleLibrary
from edgeperf.client.plan.scenarios import LoopClock, make_scheduler, wait_until
from edgeperf.client.plan.settings import Scenario

__all__ = [
    "WORKER_QPS",
    "SutFactory",
    "WorkerJob",
    "WorkerRun",
    "check_workers",
    "default_workers",
    "run_workers",
]

WORKER_QPS = 1000.0
"""Queries a second one worker process is counted on for (`default_workers`)."""
START_LEAD_NS = 200_000_000
"""The origin is set this far after the go message, so every worker is waiting when it comes."""
SETUP_TIMEOUT_S = 120.0
"""How long a worker may take to start, connect and load its samples."""
CODE_STRIDE = 1 << 24
"""Worker w writes its own failure statuses as codes (w + 1) * CODE_STRIDE + i; the parent remaps them."""

_SHM_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None
"""Where the shared result columns live: memory, not disk, where the system has it."""

SutFactory = Callable[[], AbstractAsyncContextManager[tuple[SystemUnderTest, QuerySampleLibrary]]]
"""Opens a SUT and its QSL inside a worker process; must pickle (a module-level class or function)."""


def default_workers(settings: EffectiveSettings) -> int:
    """Server: enough processes for the target rate, at most one per CPU. Other scenarios: 1.

    Offline's expected QPS is a guess that sizes its one query, and its requests are batched and
    windowed, so it takes more processes only when asked (`--workers N`).
    """
    if settings.scenario is not Scenario.SERVER:
        return 1
    return max(1, min(os.cpu_count() or 1, math.ceil(settings.target_qps / WORKER_QPS)))


def check_workers(settings: EffectiveSettings, workers: int) -> None:
    """Refuse, before the run, what N processes cannot issue as one process would."""
    if workers < 1:
        raise RunSetupError(f"--workers {workers}: must be at least 1")
    if workers == 1:
        return
    if settings.scenario not in (Scenario.SERVER, Scenario.OFFLINE):
        raise RunSetupError(
            f"--workers {workers}: {settings.scenario.value} issues each query after the previous one "
            "completes; only Server and Offline can be split between processes"
        )
    if settings.server_coalesce_queries and settings.scenario is Scenario.SERVER:
        raise RunSetupError(f"--workers {workers}: server_coalesce_queries needs one issuing process")
    if settings.max_async_queries is not None and settings.scenario is Scenario.SERVER:
        raise RunSetupError(
            f"--workers {workers}: server_max_async_queries counts every outstanding query; "
            "it needs one issuing process"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerJob:
    """One performance pass as every worker process is given it (pickled into each)."""

    factory: SutFactory
    settings: EffectiveSettings
    offsets_ns: npt.NDArray[np.int64]
    sample_indices: npt.NDArray[np.int32]
    """Queries by samples per query."""
    loaded: tuple[int, ...]
    keep: npt.NDArray[np.bool_] | None
    drain_timeout_s: float
    abort_after_errors: int | None

    @property
    def n_queries(self) -> int:
        return int(self.sample_indices.shape[0])

    @property
    def spq(self) -> int:
        return int(self.sample_indices.shape[1])


@dataclass(frozen=True, slots=True, kw_only=True)
class _Plan:
    worker: int
    workers: int
    path: str
    """The shared columns' file."""
    job: WorkerJob


@dataclass(frozen=True, slots=True, kw_only=True)
class _Report:
    end: EndOfRun
    cost: SectionCost
    last_query: int
    """The highest query index this worker issued; -1 if none."""
    entries: list[tuple[str, str]]
    accuracy: dict[int, bytes]
    events: list[tuple[int, str, bool]]
    in_flight_cap: int | None
    in_flight_overflow: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerRun:
    """What the workers of one pass produced, merged; the columns are already in the recorder."""

    end: EndOfRun
    start_ns: int
    events: list[tuple[int, str, bool]]
    costs: list[SectionCost]
    in_flight_cap: int | None
    in_flight_overflow: int


async def run_workers(
    job: WorkerJob,
    workers: int,
    *,
    make_recorder: Callable[[RecorderColumns], RunRecorder],
    now_ns: Callable[[], int],
    stop: asyncio.Event | None,
) -> tuple[RunRecorder, WorkerRun]:
    """Run `job` from `workers` processes; returns the filled recorder and the merge."""
    n_queries, spq = job.n_queries, job.spq
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="edgeperf-workers-", dir=_SHM_DIR) as tmp:
        path = Path(tmp) / "columns"
        nbytes = RecorderColumns.nbytes(n_queries, n_queries * spq)
        buffer = np.memmap(path, dtype=np.uint8, mode="w+", shape=(max(nbytes, 1),))
        columns = RecorderColumns.views(buffer, n_queries, n_queries * spq)
        columns.fill()
        recorder = make_recorder(columns)
        pipes: list[Connection] = []
        procs: list[Any] = []
        try:
            for w in range(workers):
                parent_end, child_end = ctx.Pipe()
                plan = _Plan(worker=w, workers=workers, path=str(path), job=job)
                proc = ctx.Process(target=_worker_main, args=(plan, child_end), daemon=True)
                proc.start()
                child_end.close()
                pipes.append(parent_end)
                procs.append(proc)
            for w, pipe in enumerate(pipes):
                message = await _receive(pipe, SETUP_TIMEOUT_S, w)
                if message[0] != "ready":
                    raise RunSetupError(f"worker {w} could not start: {message[1]}")
            start_ns = now_ns() + START_LEAD_NS
            recorder.mark_start(start_ns)
            for pipe in pipes:
                pipe.send(start_ns)
            reports = await _collect(pipes, stop)
        finally:
            # NOTE: pipes first: a worker still waiting for the go (a failed start) then sees EOF and exits.
            for pipe in pipes:
                pipe.close()
            for proc in procs:
                await asyncio.to_thread(proc.join, 10)
                if proc.is_alive():
                    proc.kill()
        events: list[tuple[int, str, bool]] = []
        for w, report in enumerate(reports):
            recorder.merge_worker(report.entries, (w + 1) * CODE_STRIDE, report.accuracy)
            events.extend(report.events)
        recorder.adopt_issued()
        # NOTE: the columns are copied out of the map before it is removed.
        recorder.detach_columns()
        del columns, buffer
    caps = {r.in_flight_cap for r in reports}
    return recorder, WorkerRun(
        end=_merged_end(reports),
        start_ns=start_ns,
        events=sorted(events),
        costs=[r.cost for r in reports],
        in_flight_cap=caps.pop() if len(caps) == 1 else None,
        in_flight_overflow=sum(r.in_flight_overflow for r in reports),
    )


def _merged_end(reports: list[_Report]) -> EndOfRun:
    """A failure or a stop in any worker ends the pass; otherwise the end of the last query's worker."""
    for reason in (EndReason.INTERRUPTED, EndReason.TOO_MANY_ERRORS, EndReason.STALLED):
        for report in reports:
            if report.end.reason is reason:
                return report.end
    return max(reports, key=lambda r: r.last_query).end


async def _receive(pipe: Connection, timeout_s: float | None, worker: int) -> tuple[Any, ...]:
    if not await asyncio.to_thread(pipe.poll, timeout_s):
        raise RunSetupError(f"worker {worker} did not answer within {timeout_s} s")
    try:
        message: tuple[Any, ...] = pipe.recv()
    except EOFError:
        raise RunSetupError(f"worker {worker} exited without a result") from None
    if message[0] == "error":
        raise RunSetupError(f"worker {worker} failed: {message[1]}")
    return message


async def _collect(pipes: list[Connection], stop: asyncio.Event | None) -> list[_Report]:
    """Every worker's report; a `stop` is passed on to every worker (each then drains and reports)."""
    waits = [asyncio.ensure_future(_receive(pipe, None, w)) for w, pipe in enumerate(pipes)]
    stopper = asyncio.ensure_future(stop.wait()) if stop is not None else None
    try:
        pending: set[asyncio.Future[Any]] = set(waits)
        if stopper is not None:
            pending.add(stopper)
        while any(not w.done() for w in waits):
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if stopper is not None and stopper in done:
                for pipe in pipes:
                    pipe.send("stop")
                stopper = None
        return [w.result()[1] for w in waits]
    finally:
        if stopper is not None:
            stopper.cancel()


def _worker_main(plan: _Plan, pipe: Connection) -> None:
    """The spawned process: its own uvloop event loop, SUT and QSL."""
    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    except ImportError:  # NOTE: no uvloop on Windows
        loop_factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        try:
            runner.run(_worker(plan, pipe))
        except BaseException as exc:  # NOTE: whatever happened, the parent must hear of it, not hang
            pipe.send(("error", f"{type(exc).__name__}: {exc}"))


async def _worker(plan: _Plan, pipe: Connection) -> None:
    job = plan.job
    settings = job.settings
    n_samples = job.n_queries * job.spq
    buffer = np.memmap(plan.path, dtype=np.uint8, mode="r+")
    columns = RecorderColumns.views(buffer, job.n_queries, n_samples)
    code_base = (plan.worker + 1) * CODE_STRIDE
    recorder = RunRecorder(
        samples_per_query=job.spq,
        n_queries=job.n_queries,
        sample_indices=job.sample_indices.reshape(-1),
        columns=columns,
        any_order=True,
        status_code_base=code_base,
    )
    tracker = CompletionTracker(
        recorder,
        keep=job.keep,
        abort_after_errors=job.abort_after_errors,
        stall_timeout_s=job.drain_timeout_s,
        abort_after_silence_ns=None if job.abort_after_errors is None else int(job.drain_timeout_s * 1e9),
    )
    async with job.factory() as (sut, qsl):
        qsl.load_samples(list(job.loaded))
        cap, overflow0 = (
            (sut.in_flight_cap, sut.in_flight_overflow) if isinstance(sut, InFlightCounted) else (None, 0)
        )
        clock = LoopClock()
        # NOTE: the set-up garbage is collected and frozen now, so the timed section's own collection
        # (`TimedSection`) walks almost nothing between the go message and the first query.
        gc.collect()
        gc.freeze()
        pipe.send(("ready",))
        start_ns: int = await asyncio.to_thread(pipe.recv)
        scheduler = make_scheduler(
            settings.scenario, start_ns=start_ns, offsets_ns=job.offsets_ns, progress=tracker, clock=clock
        )
        loop = asyncio.get_running_loop()
        section = TimedSection()
        with section:
            await wait_until(start_ns, clock)
            task = asyncio.ensure_future(
                issue_queries(
                    sut,
                    scheduler=scheduler,
                    sample_indices=job.sample_indices,
                    settings=settings,
                    tracker=tracker,
                    recorder=recorder,
                    clock=clock,
                    start_ns=start_ns,
                    accuracy=False,
                    drain_timeout_s=job.drain_timeout_s,
                    share=(plan.worker, plan.workers),
                )
            )

            # NOTE: any message from the parent now is a stop (Ctrl-C): the issue loop ends and drains.
            # One cancel only: a second would also cancel the drain.
            def on_stop() -> None:
                loop.remove_reader(pipe.fileno())
                task.cancel()

            loop.add_reader(pipe.fileno(), on_stop)
            try:
                end = await task
            finally:
                loop.remove_reader(pipe.fileno())
        clock.close()
        qsl.unload_samples(list(job.loaded))
        issued = np.flatnonzero(columns.issued >= 0)
        mine = (
            issued[issued % plan.workers == plan.worker] if settings.scenario is Scenario.SERVER else issued
        )
        report = _Report(
            end=end,
            cost=section.cost or SectionCost(wall_s=0.0, cpu_s=0.0, loop_cpu_s=0.0, gc_collections=0),
            last_query=int(mine[-1]) if mine.size else -1,
            entries=recorder.status_entries,
            accuracy=recorder.take_accuracy(),
            events=tracker.events,
            in_flight_cap=cap,
            in_flight_overflow=(sut.in_flight_overflow if isinstance(sut, InFlightCounted) else 0)
            - overflow0,
        )
    buffer.flush()
    pipe.send(("done", report))
