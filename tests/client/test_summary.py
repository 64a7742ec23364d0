"""summarize(): LoadGen's percentile rule, metrics per scenario, validity and recommendations."""

from __future__ import annotations

import numpy as np
import pytest

from edgeperf.client.issue.raw_results import RunResult
from edgeperf.client.issue.recorder import RunRecorder
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.settings import Rules, Scenario, TestSettings
from edgeperf.client.report.latency_stats import latency_stats, percentile_index
from edgeperf.client.report.metrics import summarize

T0 = 5_000_000_000


def _settings(scenario: Scenario, **kw: object) -> EffectiveSettings:
    req = TestSettings(scenario=scenario, **kw)  # type: ignore[arg-type]
    return EffectiveSettings.from_requested(req, total_sample_count=100, performance_sample_count=100)


def _run(
    scheduled: list[int] | np.ndarray,
    issued: list[int] | np.ndarray,
    completed: list[list[int]] | np.ndarray,
    failures: dict[tuple[int, int], str] | None = None,
) -> RunResult:
    completed = np.asarray(completed, dtype=np.int64)
    nq, spq = completed.shape
    rec = RunRecorder(samples_per_query=spq, n_queries=nq)
    rec.mark_start(T0)
    failures = failures or {}
    for qi in range(nq):
        rec.record_issue(qi, T0 + int(scheduled[qi]), T0 + int(issued[qi]))
        for k in range(spq):
            done = T0 + int(completed[qi, k])
            if (qi, k) in failures:
                rec.record_error(rec.slot(qi, k), T0 + int(issued[qi]), done, failures[(qi, k)], "boom")
            else:
                rec.record_sample_complete(rec.slot(qi, k), T0 + int(issued[qi]), done, 1000, 2000)
    return rec.finish(T0 + int(completed.max()) + 1)


def _single_stream(
    n: int, latency_ns: np.ndarray, gap_ns: int = 0, failures: dict[tuple[int, int], str] | None = None
) -> RunResult:
    starts = np.concatenate(([0], np.cumsum(latency_ns[:-1] + gap_ns)))
    return _run(starts, starts, (starts + latency_ns).reshape(-1, 1), failures)


def test_percentile_rule_truncates_the_double_product():
    assert percentile_index(1024, 0.9) == 921
    assert percentile_index(10, 0.999) == 9
    assert percentile_index(1000, 0.97) == int(1000 * 0.97)  # 969.9999... -> 969
    stats = latency_stats(np.arange(1, 11, dtype=np.int64), 0.9)
    assert stats is not None
    assert (stats.min_ns, stats.max_ns, stats.mean_ns, stats.target_ns) == (1, 10, 5, 10)
    assert stats.at(0.5) == 6 and stats.at(0.999) == 10
    assert latency_stats(np.array([], dtype=np.int64), 0.9) is None


def test_single_stream_valid_run_metrics():
    rng = np.random.default_rng(7)
    lat = rng.integers(1_000_000, 2_000_000, size=1024).astype(np.int64)
    res = _single_stream(1024, lat)
    s = summarize(_settings(Scenario.SINGLE_STREAM, min_duration_ms=1000, min_query_count=1024), res)
    srt = np.sort(lat)
    assert s.result_validity == "VALID" and s.recommendations == () and s.invalid_reason == ""
    assert s.sample_latency is not None
    assert s.sample_latency.target_ns == srt[int(1024 * 0.9)]
    assert s.sample_latency.mean_ns == int(lat.sum()) // 1024
    assert s.early_stopping is not None and s.early_stopping.latency_ss_ns == srt[1024 - 80]
    assert s.official_metric == ("early_stopping_latency_ss", srt[944] / 1e6, "ms")
    last_issue_s = (lat[:-1].sum()) / 1e9
    assert s.qps_with_loadgen_overhead == 1023 / last_issue_s
    assert s.qps_without_loadgen_overhead == 1 / ((int(lat.sum()) // 1024) / 1e9)
    assert s.min_duration_met and s.min_queries_met and s.early_stopping_met


def test_min_duration_and_min_queries_not_met_give_loadgen_recommendations():
    lat = np.full(100, 1_000_000, dtype=np.int64)
    res = _single_stream(100, lat)
    s = summarize(_settings(Scenario.SINGLE_STREAM, min_duration_ms=1000, min_query_count=200), res)
    assert not s.valid and not s.min_duration_met and not s.min_queries_met
    assert s.recommendations == (
        "Decrease the expected latency so the loadgen pre-generates more queries.",
        "The test exited early, before enough queries were issued.\n"
        "   See the detailed log for why this may have occurred.",
    )
    assert s.invalid_reason == (
        "Decrease the expected latency so the loadgen pre-generates more queries. "
        "The test exited early, before enough queries were issued."
    )


def test_early_stopping_fails_with_too_few_queries():
    res = _single_stream(40, np.full(40, 1000, dtype=np.int64))
    s = summarize(_settings(Scenario.SINGLE_STREAM, min_duration_ms=0, min_query_count=1), res)
    assert s.min_duration_met and s.min_queries_met and not s.early_stopping_met
    assert s.result_validity == "INVALID" and s.recommendations == ()


def test_server_latency_bound_failing():
    n = 3000
    sched = np.arange(n, dtype=np.int64) * 1_000_000
    lat = np.full(n, 5_000_000, dtype=np.int64)
    lat[::20] = 20_000_000  # 5% over a 10 ms bound
    res = _run(sched, sched + 100, (sched + lat).reshape(-1, 1))
    s = summarize(
        _settings(
            Scenario.SERVER, server_target_latency_ns=10_000_000, min_duration_ms=1000, min_query_count=100
        ),
        res,
    )
    assert s.overlatency_query_count == 150
    assert not s.perf_constraints_met and not s.early_stopping_met and s.min_duration_met
    assert s.recommendations == ("Reduce target QPS to improve latency.",)
    assert s.invalid_reason == "Reduce target QPS to improve latency. "
    assert s.scheduled_samples_per_sec == (n - 1) / (sched[-1] / 1e9)
    assert s.completed_samples_per_sec == (n - 1) / ((sched[-1] + lat[-1]) / 1e9)
    assert s.issue_delay is not None and s.issue_delay.p99_ns == 100
    assert s.early_stopping is not None and " * Run unsuccessful." in s.early_stopping.text


def test_server_within_bound_is_valid_and_uses_completed_qps_for_current_rules():
    n = 2100
    sched = np.arange(n, dtype=np.int64) * 1_000_000
    res = _run(sched, sched, (sched + 1_000).reshape(-1, 1))
    st = _settings(Scenario.SERVER, min_duration_ms=1000, min_query_count=100, rules=Rules.CURRENT)
    s = summarize(st, res)
    assert s.valid and s.early_stopping is not None and s.early_stopping.text == " * Run successful."
    assert s.official_metric[0] == "result_completed_samples_per_sec"


def test_errors_make_the_result_invalid_with_a_reason():
    lat = np.full(1024, 1_000_000, dtype=np.int64)
    res = _single_stream(1024, lat, failures={(3, 0): "UNAVAILABLE", (9, 0): "DEADLINE_EXCEEDED"})
    s = summarize(_settings(Scenario.SINGLE_STREAM, min_duration_ms=100, min_query_count=1000), res)
    assert s.loadgen_valid and not s.samples_ok_met and s.result_validity == "INVALID"
    assert s.sample_count == 1022 and s.samples_failed == 2
    assert s.errors_by_status == {"UNAVAILABLE": 1, "DEADLINE_EXCEEDED": 1}
    assert "2 of 1024 samples failed (" in s.invalid_reason
    assert s.recommendations[-1].endswith("See the detailed log.")


def test_multi_stream_uses_query_latency():
    nq, spq = 700, 8
    starts = np.arange(nq, dtype=np.int64) * 10_000_000
    completed = starts[:, None] + np.arange(1, spq + 1, dtype=np.int64)[None, :] * 1000
    res = _run(starts, starts, completed)
    s = summarize(_settings(Scenario.MULTI_STREAM, min_duration_ms=1000, min_query_count=662), res)
    assert s.query_latency is not None and s.query_latency.max_ns == 8000 and s.query_latency.min_ns == 8000
    assert s.sample_latency is not None and s.sample_latency.min_ns == 1000
    assert s.early_stopping is not None and s.early_stopping.latency_ms_ns == 8000
    assert s.min_queries_met and s.valid


def test_offline_samples_per_second_and_breakdown():
    n = 500
    done = (np.arange(n, dtype=np.int64) + 1) * 2_000_000
    res = _run([0], [0], done.reshape(1, -1))
    s = summarize(_settings(Scenario.OFFLINE, min_duration_ms=1000, min_query_count=500), res)
    assert s.samples_per_second == n / (done[-1] / 1e9)
    assert s.early_stopping is None and s.early_stopping_met and s.valid
    parts = {c.name: c.stats for c in s.breakdown}
    assert parts["server_queue"] is not None and parts["server_queue"].mean_ns == 1000
    net = parts["network_and_serialization"]
    assert net is not None and net.max_ns == done[-1] - 3000


@pytest.mark.parametrize("scenario", list(Scenario))
def test_every_scenario_summarizes_an_all_failed_run_as_invalid(scenario):
    res = _run([0], [0], [[10]], failures={(0, 0): "UNAVAILABLE"})
    s = summarize(_settings(scenario, min_duration_ms=0, min_query_count=1), res)
    assert s.result_validity == "INVALID" and s.sample_latency is None


@pytest.mark.parametrize("scenario", list(Scenario))
def test_a_run_that_issued_nothing_is_invalid_with_a_reason(scenario):
    rec = RunRecorder(samples_per_query=1, n_queries=5)
    rec.mark_start(T0)
    s = summarize(_settings(scenario), rec.finish(T0 + 10))
    assert s.queries_issued == 0 and not s.valid and not s.min_queries_met
    assert s.invalid_reason.endswith("No sample completed.")


def test_an_interrupted_run_is_invalid_with_its_own_reason():
    lat = np.full(1024, 1_500_000, dtype=np.int64)
    settings = _settings(Scenario.SINGLE_STREAM, min_duration_ms=1000, min_query_count=1024)
    s = summarize(settings, _single_stream(1024, lat), interrupted_after_s=12.34)
    assert s.loadgen_valid and s.samples_ok_met  # what it measured would pass ...
    assert s.result_validity == "INVALID"  # ... but a stopped run never is VALID
    assert s.recommendations == ("Run interrupted by the user after 12.3 s.",)
    assert s.invalid_reason == "Run interrupted by the user after 12.3 s."
    assert "samples failed" not in s.invalid_reason
