"""The settings one run uses: LoadGen's `TestSettingsInternal` (MLPERF_LOADGEN.md §2.2), from the requested ones.

`EffectiveSettings.from_requested` derives them once, exactly as LoadGen's constructor does; every
later stage reads them and none changes them (FindPeakPerformance replaces the target QPS per probe).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, assert_never

from edgeperf.client.plan.settings import Rules, Scenario, TestMode, TestSettings

__all__ = ["EffectiveSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EffectiveSettings:
    """The settings one run uses: LoadGen's `TestSettingsInternal` (§2.2), computed once.

    Build it with `from_requested`. Fields are named as LoadGen's `effective_*` detail-log keys; a
    field without its own docstring carries the requested value unchanged (see `TestSettings`).
    """

    requested: TestSettings
    """The requested settings as LoadGen logs them (`requested_*`), after the test05 seed swap."""
    scenario: Scenario
    mode: TestMode
    rules: Rules
    samples_per_query: int
    """1, except MultiStream (`multi_stream_samples_per_query`) and Offline (the whole query)."""
    target_qps: float
    """Rate used to pre-generate queries: 1e9 / expected latency (SS, MS), target or expected QPS."""
    target_latency_ns: int | None
    """Server latency bound; None in the other scenarios (LoadGen logs 0)."""
    target_latency_percentile: float
    """Fraction; Offline uses a fixed 0.99 that nothing reads."""
    max_async_queries: int | None
    """1 for SS, MS and Offline; `server_max_async_queries` for Server; None = unlimited."""
    target_duration_ms: int
    """min_duration_ms, except Offline: 0 (the query size carries the duration)."""
    min_duration_ms: int
    max_duration_ms: int | None
    min_query_count: int
    """Offline: 1; SingleStream with equal issue: padded as in §2.2."""
    max_query_count: int | None
    min_sample_count: int
    """min_query_count x samples_per_query."""
    qsl_rng_seed: int
    sample_index_rng_seed: int
    schedule_rng_seed: int
    accuracy_log_rng_seed: int
    accuracy_log_probability: float
    accuracy_log_sampling_target: int | None
    print_timestamps: bool
    performance_issue_unique: bool
    performance_issue_same: bool
    performance_issue_same_index: int
    performance_sample_count: int
    """The override, or the QSL's own performance sample count."""
    accuracy_sample_count: int
    """The override (current only), or the QSL's total sample count."""
    sample_concatenate_permutation: bool
    server_coalesce_queries: bool
    server_find_peak_qps_decimals_of_precision: int
    server_find_peak_qps_boundary_step_size: float
    use_token_latencies: bool
    server_ttft_latency_ns: int
    server_tpot_latency_ns: int
    infer_token_latencies: bool
    token_latency_scaling_factor: int
    qsl_total_sample_count: int
    """What the QSL reported (`qsl_reported_total_count`)."""
    qsl_performance_sample_count: int
    """What the QSL reported (`qsl_reported_performance_count`); equal issue pads with it."""
    warnings: tuple[str, ...] = field(default=())
    """Messages LoadGen logs for these settings and runs on with: each as `error_invalid_test_settings`,
    except the test05 notice, which LoadGen logs as `warning_generic_message`."""

    @classmethod
    def from_requested(
        cls,
        requested: TestSettings,
        *,
        total_sample_count: int,
        performance_sample_count: int,
    ) -> EffectiveSettings:
        """Derive the effective settings as LoadGen's `TestSettingsInternal` constructor does.

        Args:
            requested: the requested settings.
            total_sample_count: the QSL's `TotalSampleCount()`.
            performance_sample_count: the QSL's own `PerformanceSampleCount()` (before any override).

        Raises:
            ValueError: for a QSL with no samples, a zero rate (LoadGen would divide by it later),
                or equal issue in SingleStream with a QSL performance count of 0.
        """
        if total_sample_count <= 0 or performance_sample_count < 0:
            raise ValueError(
                f"the QSL must report samples: total {total_sample_count}, "
                f"performance {performance_sample_count}"
            )
        warnings: list[str] = []
        req = requested
        if req.test05:
            # NOTE: StartTest swaps the seeds before TestSettingsInternal and logs the swapped values
            # as requested_*.
            warnings.append("Test05 flag detected Overriding random seeds")
            req = replace(
                req,
                mode=TestMode.PERFORMANCE_ONLY,
                qsl_rng_seed=req.test05_qsl_rng_seed,
                sample_index_rng_seed=req.test05_sample_index_rng_seed,
                schedule_rng_seed=req.test05_schedule_rng_seed,
            )
        samples_per_query = 1
        target_latency_ns: int | None = None
        max_async_queries: int | None
        match req.scenario:
            case Scenario.SINGLE_STREAM:
                target_qps = _qps_from_latency(req.single_stream_expected_latency_ns, "single_stream")
                max_async_queries = 1
                percentile = req.single_stream_target_latency_percentile
            case Scenario.MULTI_STREAM:
                target_qps = _qps_from_latency(req.multi_stream_expected_latency_ns, "multi_stream")
                max_async_queries = 1
                percentile = req.multi_stream_target_latency_percentile
                samples_per_query = req.multi_stream_samples_per_query
            case Scenario.SERVER:
                target_qps = _positive_qps(req.server_target_qps, "server_target_qps")
                target_latency_ns = req.server_target_latency_ns
                percentile = req.server_target_latency_percentile
                max_async_queries = req.server_max_async_queries
            case Scenario.OFFLINE:
                target_qps = _positive_qps(req.offline_expected_qps, "offline_expected_qps")
                max_async_queries = 1
                percentile = 0.99  # NOTE: LoadGen's fixed value; Offline never reads it.
            case _:
                assert_never(req.scenario)
        if samples_per_query <= 0:
            raise ValueError("multi_stream_samples_per_query must be at least 1")

        perf_count = req.performance_sample_count_override or performance_sample_count
        acc_count = req.accuracy_sample_count_override or total_sample_count
        target_duration_ms = req.min_duration_ms
        min_query_count = req.min_query_count

        if req.scenario is Scenario.OFFLINE:
            # NOTE: uint64(kSlack * seconds * qps), evaluated left to right as in C++.
            target_sample_count = int(1.1 * (target_duration_ms / 1000) * target_qps)
            samples_per_query = (
                perf_count if req.performance_issue_unique else max(min_query_count, target_sample_count)
            )
            min_query_count = 1
            target_duration_ms = 0

        if req.sample_concatenate_permutation and req.scenario is Scenario.SINGLE_STREAM:
            if performance_sample_count == 0:
                raise ValueError("equal issue needs a QSL performance sample count above 0")
            expected_queries = int(2.0 * (target_duration_ms / 1000) * target_qps)
            min_query_count = max(min_query_count, expected_queries)
            # NOTE: the QSL's own count, not the override; the step is added even on a multiple.
            min_query_count += performance_sample_count - min_query_count % performance_sample_count

        if req.performance_issue_same and req.performance_issue_same_index >= perf_count:
            warnings.append(
                "Sample Idx to be repeated in performance_issue_same mode cannot be greater than "
                "loaded performance_sample_count. "
                f"performance_issue_same_index: {req.performance_issue_same_index} "
                f"performance_sample_count: {perf_count}"
            )
        if req.performance_issue_unique and req.performance_issue_same:
            warnings.append(
                "Performance_issue_unique and performance_issue_same, both cannot be true at the same "
                "time. performance_issue_unique: 1 performance_issue_same: 1"
            )

        carried: dict[str, Any] = {name: getattr(req, name) for name in _CARRIED}
        return cls(
            requested=req,
            samples_per_query=samples_per_query,
            target_qps=target_qps,
            target_latency_ns=target_latency_ns,
            target_latency_percentile=percentile,
            max_async_queries=max_async_queries,
            target_duration_ms=target_duration_ms,
            min_query_count=min_query_count,
            min_sample_count=min_query_count * samples_per_query,
            performance_sample_count=perf_count,
            accuracy_sample_count=acc_count,
            qsl_total_sample_count=total_sample_count,
            qsl_performance_sample_count=performance_sample_count,
            warnings=tuple(warnings),
            **carried,
        )


_CARRIED = tuple(
    f.name
    for f in fields(EffectiveSettings)
    if f.name in {t.name for t in fields(TestSettings)} and f.name != "min_query_count"
)
"""The fields LoadGen carries over from the requested settings unchanged: every field both classes have
(same name, same type), except `min_query_count`, which `from_requested` derives."""


def _qps_from_latency(expected_latency_ns: float, name: str) -> float:
    if expected_latency_ns <= 0:
        raise ValueError(f"{name}_expected_latency_ns must be positive, got {expected_latency_ns}")
    return 1e9 / expected_latency_ns


def _positive_qps(qps: float, name: str) -> float:
    # NOTE: LoadGen accepts 0 and then divides by it when it generates queries; edgeperf refuses.
    if not qps > 0:
        raise ValueError(f"{name} must be positive, got {qps}")
    return qps
