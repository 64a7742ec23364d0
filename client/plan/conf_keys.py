"""Every key LoadGen's `TestSettings::FromConfig` reads: the field it sets, its type, scenario, unit and checks."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from edgeperf.client.plan.settings import Scenario

__all__ = ["BY_NAME", "KEYS", "ConfKey", "Kind"]


class Kind(enum.Enum):
    """How a key's value is read."""

    INT = "int"
    DOUBLE = "double"
    FLAG = "flag"  # 0 false, anything else true
    FLAG_ONE = "flag_one"  # only 1 is true
    MODE = "mode"


@dataclass(frozen=True, slots=True)
class ConfKey:
    """One conf key and the TestSettings field it sets."""

    name: str
    """The last part of the conf key."""
    field: str
    """The TestSettings field it sets."""
    kind: Kind
    scenario: Scenario | None = None
    """Scenario-specific keys are looked up with this fixed scenario, whatever the run's scenario."""
    multiplier: float = 1.0
    current_only: bool = False
    preset_only_current: bool = False
    """Current LoadGen reads it only from the built-in mlperf.conf."""
    needs: str | None = None
    """Read only when this TestSettings flag is already true."""
    none_if_zero: bool = False
    check: str = ""
    """Value check: "positive", "percent", "count" (at least 1), "probability"."""


_MS = 1_000_000.0
_S = Scenario
# NOTE: the order is LoadGen's (current): the flag keys precede the keys they enable.
KEYS: tuple[ConfKey, ...] = (
    ConfKey("mode", "mode", Kind.MODE),
    ConfKey("qsl_rng_seed", "qsl_rng_seed", Kind.INT, preset_only_current=True),
    ConfKey("sample_index_rng_seed", "sample_index_rng_seed", Kind.INT, preset_only_current=True),
    ConfKey("schedule_rng_seed", "schedule_rng_seed", Kind.INT, preset_only_current=True),
    ConfKey("accuracy_log_probability", "accuracy_log_probability", Kind.DOUBLE, multiplier=0.01,
         preset_only_current=True, check="probability"),
    ConfKey("test05", "test05", Kind.FLAG_ONE, current_only=True, preset_only_current=True),
    ConfKey("test05_qsl_rng_seed", "test05_qsl_rng_seed", Kind.INT, current_only=True, preset_only_current=True),
    ConfKey("test05_sample_index_rng_seed", "test05_sample_index_rng_seed", Kind.INT, current_only=True,
         preset_only_current=True),
    ConfKey("test05_schedule_rng_seed", "test05_schedule_rng_seed", Kind.INT, current_only=True,
         preset_only_current=True),
    ConfKey("use_token_latencies", "use_token_latencies", Kind.FLAG_ONE, current_only=True),
    ConfKey("ttft_latency", "server_ttft_latency_ns", Kind.INT, _S.SERVER, _MS, current_only=True,
         needs="use_token_latencies"),
    ConfKey("tpot_latency", "server_tpot_latency_ns", Kind.INT, _S.SERVER, _MS, current_only=True,
         needs="use_token_latencies"),
    ConfKey("infer_token_latencies", "infer_token_latencies", Kind.FLAG_ONE, current_only=True),
    ConfKey("token_latency_scaling_factor", "token_latency_scaling_factor", Kind.INT, current_only=True,
         needs="infer_token_latencies"),
    ConfKey("target_latency_percentile", "single_stream_target_latency_percentile", Kind.DOUBLE,
         _S.SINGLE_STREAM, 0.01, check="percent"),
    ConfKey("target_latency_percentile", "multi_stream_target_latency_percentile", Kind.DOUBLE,
         _S.MULTI_STREAM, 0.01, check="percent"),
    ConfKey("samples_per_query", "multi_stream_samples_per_query", Kind.INT, _S.MULTI_STREAM, check="count"),
    ConfKey("target_latency_percentile", "server_target_latency_percentile", Kind.DOUBLE, _S.SERVER, 0.01,
         check="percent"),
    ConfKey("target_latency", "server_target_latency_ns", Kind.INT, _S.SERVER, _MS),
    ConfKey("performance_issue_unique", "performance_issue_unique", Kind.FLAG),
    ConfKey("performance_issue_same", "performance_issue_same", Kind.FLAG),
    ConfKey("performance_issue_same_index", "performance_issue_same_index", Kind.INT),
    ConfKey("sample_concatenate_permutation", "sample_concatenate_permutation", Kind.FLAG_ONE),
    ConfKey("coalesce_queries", "server_coalesce_queries", Kind.FLAG, _S.SERVER),
    ConfKey("max_async_queries", "server_max_async_queries", Kind.INT, _S.SERVER, none_if_zero=True),
    ConfKey("min_duration", "min_duration_ms", Kind.INT),
    ConfKey("max_duration", "max_duration_ms", Kind.INT, none_if_zero=True),
    ConfKey("min_query_count", "min_query_count", Kind.INT),
    ConfKey("max_query_count", "max_query_count", Kind.INT, none_if_zero=True),
    ConfKey("performance_sample_count_override", "performance_sample_count_override", Kind.INT,
         none_if_zero=True),
    ConfKey("accuracy_sample_count_override", "accuracy_sample_count_override", Kind.INT, current_only=True,
         none_if_zero=True),
    ConfKey("target_latency", "single_stream_expected_latency_ns", Kind.DOUBLE, _S.SINGLE_STREAM, _MS,
         check="positive"),
    ConfKey("target_latency", "multi_stream_expected_latency_ns", Kind.DOUBLE, _S.MULTI_STREAM, _MS,
         check="positive"),
    ConfKey("target_qps", "server_target_qps", Kind.DOUBLE, _S.SERVER, check="positive"),
    ConfKey("target_qps", "offline_expected_qps", Kind.DOUBLE, _S.OFFLINE, check="positive"),
    ConfKey("print_timestamps", "print_timestamps", Kind.FLAG),
    ConfKey("accuracy_log_rng_seed", "accuracy_log_rng_seed", Kind.INT),
    ConfKey("accuracy_log_sampling_target", "accuracy_log_sampling_target", Kind.INT, none_if_zero=True),
)  # fmt: skip
BY_NAME: dict[str, list[ConfKey]] = {}
for _k in KEYS:
    BY_NAME.setdefault(_k.name, []).append(_k)
"""Keys by their last name part (a name can set one field per scenario)."""
