"""The detail log's settings block: every ``requested_*`` and ``effective_*`` key LoadGen logs, in its order.

edgeperf's None ("unlimited", "not set") is LoadGen's 0, and doubles print as doubles.
"""

from __future__ import annotations

import enum

from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.settings import Rules, Scenario
from edgeperf.client.report.detail_record import DetailRecord

__all__ = ["settings_records"]


_SCENARIO_REQUESTED: dict[Scenario, tuple[str, ...]] = {
    Scenario.SINGLE_STREAM: ("single_stream_expected_latency_ns", "single_stream_target_latency_percentile"),
    Scenario.MULTI_STREAM: (
        "multi_stream_expected_latency_ns",
        "multi_stream_target_latency_percentile",
        "multi_stream_samples_per_query",
    ),
    Scenario.SERVER: (
        "server_target_qps",
        "server_target_latency_ns",
        "server_target_latency_percentile",
        "server_coalesce_queries",
        "server_find_peak_qps_decimals_of_precision",
        "server_find_peak_qps_boundary_step_size",
        "server_max_async_queries",
        "server_num_issue_query_threads",
    ),
    Scenario.OFFLINE: ("offline_expected_qps",),
}
_LIMITS = ("min_duration_ms", "max_duration_ms", "min_query_count", "max_query_count")
# NOTE: LoadGen logs these ten under the same names in the requested and the effective block.
_SEEDS_AND_ISSUE = (
    "qsl_rng_seed",
    "sample_index_rng_seed",
    "schedule_rng_seed",
    "accuracy_log_rng_seed",
    "accuracy_log_probability",
    "accuracy_log_sampling_target",
    "print_timestamps",
    "performance_issue_unique",
    "performance_issue_same",
    "performance_issue_same_index",
)
_COMMON_REQUESTED = [*_LIMITS, *_SEEDS_AND_ISSUE, "performance_sample_count_override"]
_EFFECTIVE = [
    "samples_per_query",
    "target_qps",
    "target_latency_ns",
    "target_latency_percentile",
    "max_async_queries",
    "target_duration_ms",
    *_LIMITS,
    "min_sample_count",
    *_SEEDS_AND_ISSUE,
    "performance_sample_count",
]
_CURRENT_REQUESTED = ("accuracy_sample_count_override", "sample_concatenate_permutation")
_CURRENT_EFFECTIVE = ("accuracy_sample_count", "sample_concatenate_permutation")
_DOUBLES = frozenset(
    [
        "single_stream_expected_latency_ns",
        "single_stream_target_latency_percentile",
        "multi_stream_expected_latency_ns",
        "multi_stream_target_latency_percentile",
        "server_target_qps",
        "server_target_latency_percentile",
        "server_find_peak_qps_boundary_step_size",
        "offline_expected_qps",
        "accuracy_log_probability",
        "target_qps",
        "target_latency_percentile",
    ]
)


def _setting(obj: object, name: str) -> object:
    # NOTE: LoadGen's log types: doubles print as doubles even when a conf value was integral, and
    # edgeperf's None ("unlimited", "not set") is LoadGen's 0.
    value = getattr(obj, name)
    if value is None:
        return 0
    if isinstance(value, enum.Enum):
        return value.value
    return float(value) if name in _DOUBLES else value


def settings_records(s: EffectiveSettings) -> list[DetailRecord]:
    r = s.requested
    current = s.rules is Rules.CURRENT
    names = [*_SCENARIO_REQUESTED[r.scenario], *_COMMON_REQUESTED, *(_CURRENT_REQUESTED if current else ())]
    out = [
        DetailRecord("requested_scenario", r.scenario.value),
        DetailRecord("requested_test_mode", r.mode.value),
    ]
    out += [DetailRecord(f"requested_{n}", _setting(r, n)) for n in names]
    if current and r.use_token_latencies:
        out.append(DetailRecord("requested_use_token_latencies", True))
        if r.scenario is not Scenario.OFFLINE:
            out.append(DetailRecord("requested_server_ttft_latency", r.server_ttft_latency_ns))
            out.append(DetailRecord("requested_server_tpot_latency", r.server_tpot_latency_ns))
    out += [
        DetailRecord("effective_scenario", s.scenario.value),
        DetailRecord("effective_test_mode", s.mode.value),
    ]
    out += [
        DetailRecord(f"effective_{n}", _setting(s, n))
        for n in (*_EFFECTIVE, *(_CURRENT_EFFECTIVE if current else ()))
    ]
    return out
