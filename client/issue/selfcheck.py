"""The client's self-check: what the measuring tool itself cost during a timed run, and whether it kept up.

perf_analyzer warns when its own overhead passes 50%; edgeperf records, for every performance pass, the
client's CPU per query, how late queries were issued against their schedule (p50/p99 and the share
issued more than 100 us late), how often the transport's in-flight cap made a request wait, and a
verdict: a client that fell behind its schedule measured itself, not the SUT, and says so first.

`TimedSection` also keeps Python's cyclic garbage collector off the timed path: it collects and freezes
everything allocated during set-up (QSL, schedule, columns) so no collection ever walks it, and raises
the young-generation threshold so a collection runs rarely and walks few objects. The issue path
allocates only short-lived, acyclic objects (requests, responses, futures), which reference counting
frees; the collector is restored, and the frozen objects released to it, when the section ends.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgeperf.client.issue.raw_results import percentile_index

__all__ = ["LATE_NS", "ClientCheck", "SectionCost", "TimedSection", "WorkerCost", "client_check"]

LATE_NS = 100_000
"""A query issued more than this after its scheduled time counts as late (the self-check's share)."""
BOTTLENECK_LATE_SHARE = 0.05
"""More late queries than this share (Server) means the client, not the SUT, set the pace."""
BOTTLENECK_BUSY = 0.9
"""An issuing thread busy for more than this share of the run had no room left (any scenario)."""
GC_THRESHOLD_TIMED = (50_000, 50, 1000)
"""Young-generation threshold while timed: a collection every 50,000 net allocations, not every 700."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SectionCost:
    """What one process's timed section cost."""

    wall_s: float
    cpu_s: float
    """The whole process (every thread: the issue loop and gRPC's own threads)."""
    loop_cpu_s: float
    """The thread that ran the event loop and issued the queries."""
    gc_collections: int
    """Garbage collections (any generation) during the section."""


class TimedSection:
    """Measures a timed section's CPU and keeps the garbage collector off it; use as a context manager.

    Call it from the thread that runs the event loop (its thread CPU is the issuing thread's).
    """

    def __init__(self) -> None:
        self._t0 = 0.0
        self._cpu0 = 0.0
        self._thread0 = 0.0
        self._gc0 = 0
        self._threshold = gc.get_threshold()
        self.cost: SectionCost | None = None

    def __enter__(self) -> TimedSection:
        self._threshold = gc.get_threshold()
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLD_TIMED)
        self._gc0 = _collections()
        self._t0 = time.perf_counter()
        self._cpu0 = time.process_time()
        self._thread0 = time.thread_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cost = SectionCost(
            wall_s=time.perf_counter() - self._t0,
            cpu_s=time.process_time() - self._cpu0,
            loop_cpu_s=time.thread_time() - self._thread0,
            gc_collections=_collections() - self._gc0,
        )
        gc.set_threshold(*self._threshold)
        gc.unfreeze()


def _collections() -> int:
    return sum(int(s["collections"]) for s in gc.get_stats())


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerCost:
    """One issuing process of a `--workers N` run (a one-process run has one)."""

    worker: int
    queries: int
    cost: SectionCost
    issue_delay_p50_ns: int
    issue_delay_p99_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientCheck:
    """The self-check of one performance pass; `edgeperf_*` keys in the detail log, `client` in result.json."""

    queries: int
    samples: int
    wall_s: float
    cpu_s: float
    loop_cpu_s: float
    gc_collections: int
    issue_delay_p50_ns: int
    issue_delay_p99_ns: int
    late_share: float
    """Share of queries issued more than `LATE_NS` after their scheduled time."""
    in_flight_cap: int | None
    in_flight_overflow: int
    """Requests that waited for a free slot under the transport's in-flight cap."""
    workers: tuple[WorkerCost, ...]
    late_counts: bool
    """Whether lateness means anything in this scenario (Server: queries have scheduled times)."""

    @property
    def cpu_per_query_us(self) -> float:
        return self.cpu_s / self.queries * 1e6 if self.queries else 0.0

    @property
    def cpu_per_sample_us(self) -> float:
        """Offline's measure (its one query holds every sample)."""
        return self.cpu_s / self.samples * 1e6 if self.samples else 0.0

    @property
    def loop_busy(self) -> float:
        """The busiest issuing thread's CPU over the section's wall time."""
        busy = [w.cost.loop_cpu_s / w.cost.wall_s for w in self.workers if w.cost.wall_s > 0]
        return max(busy, default=0.0)

    @property
    def bottleneck(self) -> bool:
        if self.late_counts and self.late_share > BOTTLENECK_LATE_SHARE:
            return True
        return self.loop_busy > BOTTLENECK_BUSY

    def reason(self) -> str:
        """One sentence for the reasons of an INVALID run (first among them) or a warning on a VALID one."""
        parts = [
            f"{self.late_share * 100:.1f}% of queries issued more than {LATE_NS // 1000} us late "
            f"(issue delay p99 {self.issue_delay_p99_ns / 1e3:.0f} us)"
            if self.late_counts
            else "",
            f"issuing thread {self.loop_busy * 100:.0f}% busy",
            f"{self.cpu_per_query_us:.0f} us client CPU per query"
            if self.samples == self.queries
            else f"{self.cpu_per_sample_us:.1f} us client CPU per sample",
        ]
        # NOTE: an issuing thread mostly idle yet late was starved of CPU by other processes: the client
        # machine, not edgeperf's own cost, set the pace.
        who = (
            "The client was the bottleneck"
            if self.loop_busy >= 0.5
            else "The client machine was the bottleneck"
        )
        text = f"{who}: " + ", ".join(p for p in parts if p)
        if self.loop_busy < 0.5:
            text += " (other processes held the CPU)"
        if self.in_flight_overflow:
            text += (
                f"; {self.in_flight_overflow} requests waited for the in-flight cap ({self.in_flight_cap})"
            )
        return (
            text
            + ". The result measures the client, not the SUT: use --workers N, a quieter or faster client."
        )

    def as_json(self) -> dict[str, object]:
        return {
            "queries": self.queries,
            "cpu_s": self.cpu_s,
            "cpu_per_query_us": self.cpu_per_query_us,
            "samples": self.samples,
            "cpu_per_sample_us": self.cpu_per_sample_us,
            "issuing_thread_busy": self.loop_busy,
            "issue_delay_p50_ns": self.issue_delay_p50_ns,
            "issue_delay_p99_ns": self.issue_delay_p99_ns,
            "late_share": self.late_share,
            "late_threshold_ns": LATE_NS,
            "in_flight_cap": self.in_flight_cap,
            "in_flight_overflow": self.in_flight_overflow,
            "gc_collections": self.gc_collections,
            "bottleneck": self.bottleneck,
            "workers": [
                {
                    "worker": w.worker,
                    "queries": w.queries,
                    "cpu_s": w.cost.cpu_s,
                    "issuing_thread_cpu_s": w.cost.loop_cpu_s,
                    "wall_s": w.cost.wall_s,
                    "issue_delay_p50_ns": w.issue_delay_p50_ns,
                    "issue_delay_p99_ns": w.issue_delay_p99_ns,
                }
                for w in self.workers
            ],
        }

    def detail_items(self) -> list[tuple[str, object]]:
        """The `edgeperf_*` keys of the detail log, in order."""
        items: list[tuple[str, object]] = [
            ("edgeperf_client_cpu_per_query_us", round(self.cpu_per_query_us, 3)),
            ("edgeperf_client_cpu_per_sample_us", round(self.cpu_per_sample_us, 3)),
            ("edgeperf_client_issuing_thread_busy", round(self.loop_busy, 4)),
            ("edgeperf_issue_delay_p50_ns", self.issue_delay_p50_ns),
            ("edgeperf_issue_delay_p99_ns", self.issue_delay_p99_ns),
            ("edgeperf_late_query_share", round(self.late_share, 6)),
            ("edgeperf_in_flight_overflow", self.in_flight_overflow),
            ("edgeperf_client_gc_collections", self.gc_collections),
            ("edgeperf_client_bottleneck", self.bottleneck),
        ]
        if len(self.workers) > 1:
            for w in self.workers:
                items.append(
                    (
                        f"edgeperf_worker_{w.worker}",
                        f"queries {w.queries} cpu_s {w.cost.cpu_s:.3f} issue_delay_p50_ns "
                        f"{w.issue_delay_p50_ns} issue_delay_p99_ns {w.issue_delay_p99_ns}",
                    )
                )
        return items

    def console_line(self) -> str:
        late = (
            f", issue delay p50 {self.issue_delay_p50_ns / 1e3:.0f} us p99 {self.issue_delay_p99_ns / 1e3:.0f} us, "
            f"{self.late_share * 100:.2f}% late (> {LATE_NS // 1000} us)"
            if self.late_counts
            else ""
        )
        workers = f", {len(self.workers)} workers" if len(self.workers) > 1 else ""
        overflow = (
            f", {self.in_flight_overflow} waited for the in-flight cap" if self.in_flight_overflow else ""
        )
        per = (
            f"{self.cpu_per_query_us:.0f} us CPU per query"
            if self.samples == self.queries
            else f"{self.cpu_per_sample_us:.1f} us CPU per sample"
        )
        return f"Client self-check: {per}{late}{overflow}{workers}"


def issue_delays_ns(
    issued_ns: npt.NDArray[np.int64], scheduled_ns: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Issue delay of every issued query (ns); an empty array when none was issued."""
    n = min(issued_ns.shape[0], scheduled_ns.shape[0])
    return np.asarray(issued_ns[:n] - scheduled_ns[:n], dtype=np.int64)


def _p50_p99(delays: npt.NDArray[np.int64]) -> tuple[int, int]:
    """LoadGen's percentile index, as `summary` computes the issue delay (the same figures in both).

    Reorders `delays` in place (the caller's own array): a sorted copy would cost a long run another
    8 bytes a query at its end.
    """
    if not delays.size:
        return 0, 0
    k50, k99 = percentile_index(delays.size, 0.5), percentile_index(delays.size, 0.99)
    delays.partition(sorted({k50, k99}))
    return int(delays[k50]), int(delays[k99])


def client_check(
    delays_ns: npt.NDArray[np.int64],
    workers: list[tuple[SectionCost, npt.NDArray[np.int64]]],
    *,
    samples: int,
    late_counts: bool,
    in_flight_cap: int | None,
    in_flight_overflow: int,
) -> ClientCheck:
    """The self-check from every query's issue delay and each worker's section cost and own delays.

    The delay arrays are reordered in place (their percentiles are taken without copies).
    """
    costs = [cost for cost, _ in workers]
    late_share = float(np.count_nonzero(delays_ns > LATE_NS)) / delays_ns.size if delays_ns.size else 0.0
    p50, p99 = _p50_p99(delays_ns)
    per_worker = [_p50_p99(own) for _, own in workers]
    return ClientCheck(
        queries=int(delays_ns.size),
        samples=samples,
        wall_s=max((c.wall_s for c in costs), default=0.0),
        cpu_s=sum(c.cpu_s for c in costs),
        loop_cpu_s=sum(c.loop_cpu_s for c in costs),
        gc_collections=sum(c.gc_collections for c in costs),
        issue_delay_p50_ns=p50,
        issue_delay_p99_ns=p99,
        late_share=late_share,
        in_flight_cap=in_flight_cap,
        in_flight_overflow=in_flight_overflow,
        workers=tuple(
            WorkerCost(
                worker=i,
                queries=int(own.size),
                cost=cost,
                issue_delay_p50_ns=own_p50,
                issue_delay_p99_ns=own_p99,
            )
            for i, ((cost, own), (own_p50, own_p99)) in enumerate(zip(workers, per_worker, strict=True))
        ),
        late_counts=late_counts,
    )
