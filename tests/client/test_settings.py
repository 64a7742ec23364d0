"""TestSettings validation and EffectiveSettings.from_requested (MLPERF_LOADGEN.md §2.2)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.settings import Rules, Scenario, TestMode, TestSettings


def _effective(total: int = 2000, performance: int = 1024, **fields: Any) -> EffectiveSettings:
    return EffectiveSettings.from_requested(
        TestSettings(**fields),
        total_sample_count=total,
        performance_sample_count=performance,
    )


def test_enum_values_are_loadgen_names() -> None:
    assert [s.value for s in Scenario] == ["SingleStream", "MultiStream", "Server", "Offline"]
    assert [m.value for m in TestMode] == [
        "SubmissionRun",
        "AccuracyOnly",
        "PerformanceOnly",
        "FindPeakPerformance",
    ]
    assert [m.conf_value for m in TestMode] == [0, 1, 2, 3]
    assert TestMode.from_conf_value(1) is TestMode.ACCURACY_ONLY
    with pytest.raises(ValueError, match="0 \\(SubmissionRun\\)"):
        TestMode.from_conf_value(4)


def test_defaults_are_loadgens_with_none_for_unlimited() -> None:
    s = TestSettings()
    assert (s.scenario, s.mode, s.rules) == (Scenario.SINGLE_STREAM, TestMode.PERFORMANCE_ONLY, Rules.V2_1)
    assert (s.min_duration_ms, s.min_query_count, s.server_target_latency_ns) == (10_000, 100, 100_000_000)
    assert (s.max_duration_ms, s.max_query_count, s.server_max_async_queries) == (None, None, None)
    assert s.performance_sample_count_override is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_duration_ms": 0}, "use None"),
        ({"server_max_async_queries": 0}, "use None"),
        ({"min_query_count": -1}, "negative"),
        ({"qsl_rng_seed": 2**64}, "64 unsigned bits"),
        ({"server_target_latency_percentile": 1.5}, "fraction"),
        ({"accuracy_sample_count_override": 10}, "v2.1"),
        ({"test05": True}, "v2.1"),
    ],
)
def test_invalid_requested_settings_are_rejected(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TestSettings(**changes)  # type: ignore[arg-type]


def test_settings_are_frozen_and_with_changes_revalidates() -> None:
    s = TestSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.min_duration_ms = 5  # type: ignore[misc]
    assert s.with_changes(min_duration_ms=5).min_duration_ms == 5
    with pytest.raises(ValueError, match="use None"):
        s.with_changes(max_query_count=0)


def test_single_stream() -> None:
    e = _effective(single_stream_expected_latency_ns=2_000_000.0, min_query_count=1024)
    assert (e.target_qps, e.max_async_queries, e.target_latency_ns) == (500.0, 1, None)
    assert (e.target_latency_percentile, e.samples_per_query, e.min_sample_count) == (0.9, 1, 1024)
    assert (e.target_duration_ms, e.performance_sample_count, e.accuracy_sample_count) == (10_000, 1024, 2000)


def test_multi_stream_samples_per_query_and_min_sample_count() -> None:
    e = _effective(scenario=Scenario.MULTI_STREAM, min_query_count=662)
    assert (e.samples_per_query, e.target_qps, e.target_latency_percentile) == (8, 125.0, 0.99)
    assert e.min_sample_count == 662 * 8


def test_server_takes_the_bound_and_the_outstanding_limit() -> None:
    e = _effective(scenario=Scenario.SERVER, server_target_qps=250.0, server_target_latency_ns=15_000_000)
    assert (e.target_qps, e.target_latency_ns, e.max_async_queries) == (250.0, 15_000_000, None)
    limited = _effective(scenario=Scenario.SERVER, server_max_async_queries=4)
    assert limited.max_async_queries == 4


def test_offline_query_size_example_checked_against_6_0_17() -> None:
    e = _effective(
        scenario=Scenario.OFFLINE, min_duration_ms=1000, offline_expected_qps=2000.0, min_query_count=24576
    )
    assert (e.samples_per_query, e.min_query_count, e.target_duration_ms) == (24576, 1, 0)
    assert (e.min_sample_count, e.target_latency_percentile) == (24576, 0.99)


def test_offline_query_size_from_duration_and_unique() -> None:
    bigger = _effective(scenario=Scenario.OFFLINE, min_duration_ms=10_000, offline_expected_qps=3000.0)
    assert bigger.samples_per_query == int(1.1 * 10.0 * 3000.0) == 33000
    unique = _effective(scenario=Scenario.OFFLINE, performance_issue_unique=True)
    assert unique.samples_per_query == 1024


def test_equal_issue_example_checked_against_6_0_17_uses_the_qsl_count() -> None:
    # P is the QSL's own PerformanceSampleCount (100), not the override (64).
    e = _effective(
        performance=100,
        sample_concatenate_permutation=True,
        min_duration_ms=1500,
        min_query_count=1024,
        performance_sample_count_override=64,
    )
    assert e.min_query_count == 3100
    assert e.performance_sample_count == 64
    exact = _effective(performance=100, sample_concatenate_permutation=True, min_duration_ms=50)
    assert exact.min_query_count == 200  # 100 is already a multiple: the step is still added


def test_equal_issue_outside_single_stream_leaves_min_query_count() -> None:
    e = _effective(scenario=Scenario.SERVER, sample_concatenate_permutation=True, min_query_count=7)
    assert (e.min_query_count, e.sample_concatenate_permutation) == (7, True)


def test_loadgen_setting_errors_become_warnings() -> None:
    e = _effective(
        performance=8,
        performance_issue_same=True,
        performance_issue_same_index=8,
        performance_issue_unique=True,
    )
    assert e.warnings == (
        "Sample Idx to be repeated in performance_issue_same mode cannot be greater than loaded "
        "performance_sample_count. performance_issue_same_index: 8 performance_sample_count: 8",
        "Performance_issue_unique and performance_issue_same, both cannot be true at the same time. "
        "performance_issue_unique: 1 performance_issue_same: 1",
    )
    assert _effective().warnings == ()


def test_test05_swaps_the_seeds_and_forces_performance_mode() -> None:
    e = _effective(
        rules=Rules.CURRENT,
        mode=TestMode.ACCURACY_ONLY,
        test05=True,
        qsl_rng_seed=1,
        test05_qsl_rng_seed=11,
        test05_sample_index_rng_seed=12,
        test05_schedule_rng_seed=13,
    )
    assert (e.qsl_rng_seed, e.sample_index_rng_seed, e.schedule_rng_seed) == (11, 12, 13)
    assert e.mode is TestMode.PERFORMANCE_ONLY and e.requested.qsl_rng_seed == 11
    assert e.warnings == ("Test05 flag detected Overriding random seeds",)


def test_overrides_replace_the_qsl_counts() -> None:
    e = _effective(
        rules=Rules.CURRENT, performance_sample_count_override=64, accuracy_sample_count_override=500
    )
    assert (e.performance_sample_count, e.accuracy_sample_count) == (64, 500)
    assert (e.qsl_performance_sample_count, e.qsl_total_sample_count) == (1024, 2000)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"scenario": Scenario.SERVER, "server_target_qps": 0.0}, "server_target_qps must be positive"),
        ({"scenario": Scenario.OFFLINE, "offline_expected_qps": 0.0}, "offline_expected_qps"),
        ({"single_stream_expected_latency_ns": 0.0}, "expected_latency_ns must be positive"),
        ({"scenario": Scenario.MULTI_STREAM, "multi_stream_samples_per_query": 0}, "at least 1"),
    ],
)
def test_settings_loadgen_would_divide_by_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _effective(**fields)


def test_an_empty_qsl_is_refused() -> None:
    with pytest.raises(ValueError, match="must report samples"):
        _effective(total=0)
    with pytest.raises(ValueError, match="performance sample count above 0"):
        _effective(performance=0, sample_concatenate_permutation=True)


def test_fields_both_settings_have_are_carried_unchanged_except_min_query_count() -> None:
    changed = {
        "scenario": Scenario.SERVER,
        "mode": TestMode.ACCURACY_ONLY,
        "rules": Rules.CURRENT,
        "max_duration_ms": 5_000,
        "max_query_count": 77,
        "qsl_rng_seed": 3,
        "accuracy_log_probability": 0.25,
        "accuracy_log_sampling_target": 9,
        "print_timestamps": True,
        "performance_issue_same": True,
        "performance_issue_same_index": 5,
        "server_coalesce_queries": True,
        "server_find_peak_qps_boundary_step_size": 2.5,
        "use_token_latencies": True,
        "server_tpot_latency_ns": 7_000_000,
        "token_latency_scaling_factor": 4,
    }
    e = _effective(**changed)
    requested = {f.name: f for f in dataclasses.fields(TestSettings)}
    shared = [f for f in dataclasses.fields(EffectiveSettings) if f.name in requested]
    assert {f.name for f in shared} >= changed.keys()
    for f in shared:
        assert f.type == requested[f.name].type, f.name
        if f.name != "min_query_count":
            assert getattr(e, f.name) == getattr(e.requested, f.name), f.name
    assert (e.max_query_count, e.accuracy_log_sampling_target, e.token_latency_scaling_factor) == (77, 9, 4)
