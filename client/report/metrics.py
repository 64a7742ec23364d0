"""The pure summary of one performance run: LoadGen's metrics, early stopping and validity (§8-§10).

`summarize(settings, result)` reproduces `PerformanceSummary` of LoadGen's `results.cc`: the
``sorted[int(n * p)]`` percentile rule, integer means, the headline metric per scenario, early
stopping, and the four validity checks with LoadGen's recommendation texts. edgeperf adds a fifth
check: every sample must have completed with OK. Failed samples (a gRPC error, or no response at all)
are left out of the latency statistics, counted by status, and make the result INVALID with a reason.

It also records what LoadGen cannot see: the issue delay (issued - scheduled) of each query and the
latency breakdown (client wait, server queue, server compute, and the remainder: network and
serialization) from the server's per-request timings (`edgeperf.client.report.latency_stats`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

import numpy as np

from edgeperf.client.issue.raw_results import RunResult
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.settings import Rules, Scenario
from edgeperf.client.report.columns import fill, last_query_done_ns, ok_latency, query_values
from edgeperf.client.report.early_stopping import (
    EarlyStoppingOutcome,
    server_early_stopping,
    stream_early_stopping,
)
from edgeperf.client.report.latency_stats import (
    BreakdownComponent,
    DelayStats,
    LatencyStats,
    delay_stats,
    latency_breakdown,
    latency_stats,
)

__all__ = ["PerformanceSummary", "summarize"]

RECOMMEND_MIN_DURATION = {
    Scenario.SINGLE_STREAM: "Decrease the expected latency so the loadgen pre-generates more queries.",
    Scenario.MULTI_STREAM: "Decrease the expected latency so the loadgen pre-generates more queries.",
    Scenario.SERVER: "Increase the target QPS so the loadgen pre-generates more queries.",
    Scenario.OFFLINE: "Increase expected QPS so the loadgen pre-generates a larger (coalesced) query.",
}
RECOMMEND_PERF_CONSTRAINTS = "Reduce target QPS to improve latency."
RECOMMEND_MIN_QUERIES = "The test exited early, before enough queries were issued.\n   See the detailed log for why this may have occurred."
"""The summary's text; the detail log's `result_invalid_reason` uses only the first sentence."""
MIN_QUERIES_REASON = "The test exited early, before enough queries were issued."


@dataclass(frozen=True, slots=True, kw_only=True)
class PerformanceSummary:
    """Everything the logs and reports print for one performance run. Times in ns unless named ``_s``."""

    scenario: Scenario
    rules: Rules
    queries_issued: int
    """LoadGen's `result_query_count`."""
    sample_count: int
    """Samples that completed with OK (the latencies LoadGen would have recorded)."""
    samples_issued: int
    samples_failed: int
    errors_by_status: dict[str, int]
    errors_by_message: dict[tuple[str, str], int]
    sample_latency: LatencyStats | None
    query_latency: LatencyStats | None
    """MultiStream only: per-query latency (last sample's completion - scheduled time)."""
    final_query_scheduled_s: float
    final_query_issued_s: float
    final_query_all_samples_done_s: float
    max_latency_s: float
    qps_with_loadgen_overhead: float
    qps_without_loadgen_overhead: float
    scheduled_samples_per_sec: float
    completed_samples_per_sec: float
    samples_per_second: float
    overlatency_query_count: int
    early_stopping: EarlyStoppingOutcome | None
    """None for Offline (LoadGen prints no block there)."""
    min_duration_met: bool
    min_queries_met: bool
    perf_constraints_met: bool
    """Server only checks it; always True elsewhere."""
    early_stopping_met: bool
    samples_ok_met: bool
    """edgeperf's extra check: no sample failed."""
    min_duration_recommendation: str
    perf_constraints_recommendation: str
    issue_delay: DelayStats | None
    """issued - scheduled per query (Server: lateness of the issue loop)."""
    breakdown: tuple[BreakdownComponent, ...]
    interrupted_after_s: float | None = None
    """edgeperf: the user stopped the run this long after its start (Ctrl-C); such a run is never VALID."""
    aborted: bool = False
    """edgeperf: the run was ended by the SUT failing (errors in a row, a stall), not by its schedule."""

    @property
    def has_perf_constraints(self) -> bool:
        return self.scenario is Scenario.SERVER

    @property
    def loadgen_valid(self) -> bool:
        return (
            self.min_duration_met
            and self.min_queries_met
            and self.perf_constraints_met
            and self.early_stopping_met
        )

    @property
    def valid(self) -> bool:
        return self.loadgen_valid and self.samples_ok_met and self.interrupted_after_s is None

    @property
    def result_validity(self) -> str:
        return "VALID" if self.valid else "INVALID"

    @property
    def failure_reason(self) -> str:
        """edgeperf's reason for failed samples, e.g. ``3 of 1024 samples failed (UNAVAILABLE: 3).``"""
        if self.samples_ok_met:
            return ""
        if self.samples_failed == 0:
            return "No sample completed."
        parts = ", ".join(f"{name}: {count}" for name, count in self.errors_by_status.items())
        return f"{self.samples_failed} of {self.samples_issued} samples failed ({parts})."

    @property
    def interrupted_reason(self) -> str:
        """``Run interrupted by the user after 12.3 s.``, or empty for a run that was not stopped."""
        if self.interrupted_after_s is None:
            return ""
        return f"Run interrupted by the user after {self.interrupted_after_s:.1f} s."

    @property
    def ended_early(self) -> bool:
        """Stopped by the user, or cut short by failing samples (a dead server): LoadGen's tuning advice
        (reduce the QPS for latency, raise it for duration) would then contradict itself and miss the cause,
        so only the cause is given."""
        return self.interrupted_after_s is not None or self.aborted

    @property
    def recommendations(self) -> tuple[str, ...]:
        """The summary's ``Recommendations:`` entries in LoadGen's order, then edgeperf's failure reason."""
        out: list[str] = []
        if not self.ended_early:
            if not self.perf_constraints_met:
                out.append(self.perf_constraints_recommendation)
            if not self.min_duration_met:
                out.append(self.min_duration_recommendation)
            if not self.min_queries_met:
                out.append(RECOMMEND_MIN_QUERIES)
        if not self.samples_ok_met:
            out.append(self.failure_reason + " See the detailed log.")
        if self.interrupted_after_s is not None:
            out.append(self.interrupted_reason)
        return tuple(out)

    @property
    def invalid_reason(self) -> str:
        """The detail log's ``result_invalid_reason`` (LoadGen's concatenation, newlines as spaces)."""
        text = ""
        if not self.ended_early:
            if not self.perf_constraints_met:
                text += self.perf_constraints_recommendation + " "
            if not self.min_duration_met:
                text += self.min_duration_recommendation + " "
            if not self.min_queries_met:
                text += MIN_QUERIES_REASON
        if not self.samples_ok_met:
            text += (" " if text and not text.endswith(" ") else "") + self.failure_reason
        if self.interrupted_after_s is not None:
            text += (" " if text and not text.endswith(" ") else "") + self.interrupted_reason
        return text.replace("\n", " ")

    @property
    def label_decimals(self) -> int:
        """Decimals of the headline percentile label: ``90th`` (v2.1) or ``90.0th`` (current)."""
        return 0 if self.rules is Rules.V2_1 else 1

    @property
    def official_metric(self) -> tuple[str, float, str]:
        """(detail key, value, unit) of the metric MLPerf reports for the scenario."""
        es = self.early_stopping
        match self.scenario:
            case Scenario.SINGLE_STREAM:
                return ("early_stopping_latency_ss", (es.latency_ss_ns if es else 0) / 1e6, "ms")
            case Scenario.MULTI_STREAM:
                return ("early_stopping_latency_ms", (es.latency_ms_ns if es else 0) / 1e6, "ms")
            case Scenario.SERVER:
                if self.rules is Rules.V2_1:
                    return ("result_scheduled_samples_per_sec", self.scheduled_samples_per_sec, "samples/s")
                return ("result_completed_samples_per_sec", self.completed_samples_per_sec, "samples/s")
            case Scenario.OFFLINE:
                return ("result_samples_per_second", self.samples_per_second, "samples/s")
            case _:
                assert_never(self.scenario)


def _per_second(count: int, seconds: float) -> float:
    # NOTE: LoadGen divides by zero here and prints inf; a degenerate run reports 0 instead.
    return count / seconds if seconds > 0 else 0.0


def summarize(
    settings: EffectiveSettings,
    result: RunResult,
    *,
    interrupted_after_s: float | None = None,
    aborted: bool = False,
) -> PerformanceSummary:
    """The LoadGen summary of one performance-mode run, plus edgeperf's failure check and breakdown."""
    scenario = settings.scenario
    # NOTE: the one buffer of the run's length that summarizing allocates: the sorted latencies, then
    # each breakdown component and the issue delays in turn (chunked fills, in-place partitions).
    scratch = np.empty(result.n_samples, dtype=np.int64)
    sample_lat = fill(result, scratch, ok_latency)
    sample_lat.sort()
    n = int(sample_lat.shape[0])
    q = result.n_queries
    p = settings.target_latency_percentile
    sample_stats = latency_stats(sample_lat, p)

    query_lat = np.empty(0, dtype=np.int64)
    if scenario is Scenario.MULTI_STREAM:
        query_lat = np.sort(result.query_latency_ns[result.query_ok])
    query_stats = latency_stats(query_lat, p) if scenario is Scenario.MULTI_STREAM else None

    final_scheduled_s = float(result.scheduled_ns[-1]) / 1e9 if q else 0.0
    final_issued_s = float(result.issued_ns[-1]) / 1e9 if q else 0.0
    last_done_ns = last_query_done_ns(result)
    final_done_ns = last_done_ns if last_done_ns >= 0 else result.end_ns
    final_done_s = final_done_ns / 1e9
    max_latency_s = (sample_stats.max_ns if sample_stats else 0) / 1e9
    mean_s = (sample_stats.mean_ns if sample_stats else 0) / 1e9

    target_latency_ns = settings.target_latency_ns or 0
    overlatency = int(np.count_nonzero(sample_lat > target_latency_ns)) if scenario is Scenario.SERVER else 0

    # NOTE: with failures, early stopping counts the queries that produced a latency, so that
    # the array it indexes has one entry per query it counts (LoadGen has no failures).
    es: EarlyStoppingOutcome | None
    decimals = 0 if settings.rules is Rules.V2_1 else 1
    match scenario:
        case Scenario.SINGLE_STREAM:
            es = stream_early_stopping(sample_lat, min(q, n), p, single_stream=True, label_decimals=decimals)
        case Scenario.MULTI_STREAM:
            es = stream_early_stopping(
                query_lat, int(query_lat.shape[0]), p, single_stream=False, label_decimals=decimals
            )
        case Scenario.SERVER:
            es = server_early_stopping(sample_lat, min(q, n), target_latency_ns, p)
        case Scenario.OFFLINE:
            es = None
        case _:
            assert_never(scenario)

    min_duration_s = settings.min_duration_ms / 1000
    match scenario:
        case Scenario.OFFLINE:
            min_duration_met = max_latency_s >= min_duration_s
        case Scenario.SERVER:
            min_duration_met = final_scheduled_s >= min_duration_s
        case Scenario.SINGLE_STREAM | Scenario.MULTI_STREAM:
            min_duration_met = final_issued_s >= min_duration_s
        case _:
            assert_never(scenario)

    perf_met = True
    if scenario is Scenario.SERVER:
        perf_met = sample_stats is not None and sample_stats.target_ns <= target_latency_ns

    failed = result.error_count
    early_stopping_met = es.met if es is not None else True
    # NOTE: from here on `scratch` (and so `sample_lat`) is reused for the breakdown and issue delay.
    breakdown = latency_breakdown(result, scratch=scratch)
    issued, scheduled = result.issued_ns, result.scheduled_ns
    issue_delay = delay_stats(query_values(result, scratch, lambda s: issued[s] - scheduled[s]))
    return PerformanceSummary(
        scenario=scenario,
        rules=settings.rules,
        queries_issued=q,
        sample_count=n,
        samples_issued=result.n_samples,
        samples_failed=failed,
        errors_by_status=result.errors_by_status(),
        errors_by_message=result.errors_by_message(),
        sample_latency=sample_stats,
        query_latency=query_stats,
        final_query_scheduled_s=final_scheduled_s,
        final_query_issued_s=final_issued_s,
        final_query_all_samples_done_s=final_done_s,
        max_latency_s=max_latency_s,
        qps_with_loadgen_overhead=_per_second(n - 1, final_issued_s),
        qps_without_loadgen_overhead=1 / mean_s if mean_s > 0 else 0.0,
        scheduled_samples_per_sec=_per_second(n - 1, final_scheduled_s),
        completed_samples_per_sec=_per_second(n - 1, final_done_s),
        samples_per_second=_per_second(n, max_latency_s),
        overlatency_query_count=overlatency,
        early_stopping=es,
        min_duration_met=min_duration_met,
        min_queries_met=q >= settings.min_query_count and n >= settings.min_sample_count,
        perf_constraints_met=perf_met,
        early_stopping_met=early_stopping_met,
        samples_ok_met=failed == 0 and n > 0,
        min_duration_recommendation="" if min_duration_met else RECOMMEND_MIN_DURATION[scenario],
        perf_constraints_recommendation="" if perf_met else RECOMMEND_PERF_CONSTRAINTS,
        issue_delay=issue_delay,
        breakdown=breakdown,
        interrupted_after_s=interrupted_after_s,
        aborted=aborted,
    )
