"""The end of a long run costs no memory per sample beyond one buffer: chunked summary, same figures."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from edgeperf.client.issue.raw_results import STATUS_OK, UNKNOWN_NS, RunResult
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.schedule import (
    SequenceGenerator,
    accuracy_log_mask,
    generate_queries,
    loadable_sets,
)
from edgeperf.client.plan.settings import Scenario, TestSettings
from edgeperf.client.report import columns
from edgeperf.client.report.latency_stats import DelayStats, percentile_index
from edgeperf.client.report.metrics import summarize


def _settings(scenario: Scenario, seconds: int = 10, qps: float = 1000.0) -> EffectiveSettings:
    req = TestSettings(
        scenario=scenario,
        min_duration_ms=seconds * 1000,
        min_query_count=int(qps * seconds),
        server_target_qps=qps,
        server_target_latency_ns=900_000,
        multi_stream_samples_per_query=3,
    )
    return EffectiveSettings.from_requested(req, total_sample_count=256, performance_sample_count=256)


def _result(n_queries: int, spq: int, seed: int = 1, *, failures: bool = True) -> RunResult:
    """A run with random times, some failed samples and some unknown sent/server timings."""
    rng = np.random.default_rng(seed)
    ns = n_queries * spq
    scheduled = np.cumsum(rng.integers(1, 2_000_000, n_queries))
    issued = scheduled + rng.integers(0, 300_000, n_queries)
    per_sample_issued = np.repeat(issued, spq)
    sent = per_sample_issued + rng.integers(0, 50_000, ns)
    sent[rng.random(ns) < 0.1] = UNKNOWN_NS
    completed = per_sample_issued + rng.integers(100_000, 1_000_000, ns)
    status = np.zeros(ns, dtype=np.int32)
    if failures:
        status[rng.random(ns) < 0.02] = 2
    queue = rng.integers(0, 90_000, ns)
    queue[rng.random(ns) < 0.1] = UNKNOWN_NS
    compute = rng.integers(0, 90_000, ns)
    compute[rng.random(ns) < 0.1] = UNKNOWN_NS
    return RunResult(
        start_ns=0,
        end_ns=int(completed.max()) + 1,
        query_sizes=spq,
        scheduled_ns=scheduled,
        issued_ns=issued,
        sample_sent_ns=sent,
        sample_completed_ns=completed,
        sample_status=status,
        status_table=(("OK", ""), ("INCOMPLETE", "never"), ("UNAVAILABLE", "boom")),
        server_queue_ns=queue,
        server_compute_ns=compute,
        sample_indices=np.zeros(ns, dtype=np.int64),
    )


def _reference(values: np.ndarray) -> DelayStats | None:
    """The stats as whole-array numpy computed them before the chunked summary."""
    s = np.sort(values)
    n = int(s.shape[0])
    if n == 0:
        return None
    return DelayStats(
        count=n,
        mean_ns=int(s.sum(dtype=np.int64)) // n,
        p50_ns=int(s[percentile_index(n, 0.5)]),
        p90_ns=int(s[percentile_index(n, 0.9)]),
        p99_ns=int(s[percentile_index(n, 0.99)]),
        max_ns=int(s[-1]),
    )


@pytest.mark.parametrize("scenario", [Scenario.SERVER, Scenario.MULTI_STREAM])
def test_chunked_figures_equal_the_whole_array_ones(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(columns, "CHUNK", 7)  # many chunks, boundaries inside queries
    spq = 3 if scenario is Scenario.MULTI_STREAM else 1
    result = _result(500, spq)
    summary = summarize(_settings(scenario), result)

    ok = result.sample_status == STATUS_OK
    sample_query = np.repeat(np.arange(result.n_queries), spq)
    latency = (result.sample_completed_ns - result.scheduled_ns[sample_query])[ok]
    issued = result.issued_ns[sample_query]
    sent = np.where(result.sample_sent_ns >= 0, result.sample_sent_ns, issued)[ok]
    rpc = result.sample_completed_ns[ok] - sent
    queue, compute = result.server_queue_ns[ok], result.server_compute_ns[ok]
    known = (queue != UNKNOWN_NS) & (compute != UNKNOWN_NS)
    expected = {
        "end_to_end": latency,
        "client_wait": sent - result.scheduled_ns[sample_query][ok],
        "rpc": rpc,
        "server_queue": queue[queue != UNKNOWN_NS],
        "server_compute": compute[compute != UNKNOWN_NS],
        "network_and_serialization": (rpc - queue - compute)[known],
    }
    assert {c.name: c.stats for c in summary.breakdown} == {k: _reference(v) for k, v in expected.items()}
    assert summary.issue_delay == _reference(result.issued_ns - result.scheduled_ns)
    lat = summary.sample_latency
    assert lat is not None and lat.count == latency.size == summary.sample_count
    ordered = np.sort(latency)
    assert (lat.min_ns, lat.max_ns, lat.mean_ns) == (
        ordered[0],
        ordered[-1],
        int(ordered.sum()) // ordered.size,
    )
    assert lat.percentiles_ns == tuple(
        (p, int(ordered[percentile_index(ordered.size, p)])) for p, _ in lat.percentiles_ns
    )
    assert summary.samples_failed == int(np.count_nonzero(~ok)) > 0


def _peak_bytes(n_queries: int) -> int:
    result = _result(n_queries, 1, failures=False)
    tracemalloc.start()
    try:
        summarize(_settings(Scenario.SERVER), result)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_summarizing_a_longer_run_costs_one_int64_per_sample_more() -> None:
    # NOTE: the slope between two sizes, so the fixed chunk temporaries cancel out; the whole-array
    # summary cost ~130 bytes a sample here.
    small, big = 40_000, 240_000
    slope = (_peak_bytes(big) - _peak_bytes(small)) / (big - small)
    assert slope <= 9.5, f"{slope:.1f} bytes per sample"


def test_a_long_schedule_is_generated_without_per_query_temporaries() -> None:
    def peak(seconds: int) -> tuple[int, int]:
        settings = _settings(Scenario.SERVER, seconds=seconds, qps=500.0)
        loaded = loadable_sets(settings, 256)[0]
        tracemalloc.start()
        try:
            schedule = generate_queries(settings, loaded, accuracy=False)
            block = SequenceGenerator().assign(schedule)
            mask = accuracy_log_mask(settings, block.accuracy_log_values, accuracy=False)
            return schedule.query_count, tracemalloc.get_traced_memory()[1] - mask.nbytes
        finally:
            tracemalloc.stop()

    (n0, p0), (n1, p1) = peak(60), peak(200)  # both longer than a chunk of draws
    # offsets, sample indices and one float per sample for the accuracy-log draw: 24 bytes a query kept;
    # the whole-array generation peaked at ~90 bytes a query (Python floats for libm's log).
    slope = (p1 - p0) / (n1 - n0)
    assert slope <= 28, f"{slope:.1f} bytes per query"
