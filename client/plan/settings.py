"""Requested and effective LoadGen test settings (MLPERF_LOADGEN.md §2).

`TestSettings` is what the conf files and flags ask for, with LoadGen's field names and units;
`EffectiveSettings` (`edgeperf.client.plan.effective`) is what one run uses, derived once from them
exactly as LoadGen's `TestSettingsInternal` constructor does. Inside edgeperf "unlimited" and "not set" are `None`;
LoadGen's `0` appears only in the log writers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields, replace
from typing import ClassVar

__all__ = [
    "Rules",
    "Scenario",
    "TestMode",
    "TestSettings",
]

_UINT64_MAX = 2**64 - 1


class Scenario(enum.Enum):
    """LoadGen's `TestScenario`; the value is the name LoadGen logs and the conf files use."""

    __test__ = False  # NOTE: keeps pytest from collecting the class when a test imports it.

    SINGLE_STREAM = "SingleStream"
    MULTI_STREAM = "MultiStream"
    SERVER = "Server"
    OFFLINE = "Offline"


class TestMode(enum.Enum):
    """LoadGen's `TestMode`; the value is the name LoadGen logs (`requested_test_mode`)."""

    __test__ = False

    SUBMISSION_RUN = "SubmissionRun"
    """Accuracy mode, then performance mode, sharing one sequence generator."""
    ACCURACY_ONLY = "AccuracyOnly"
    """Every sample of the accuracy range once, one loadable set at a time; every response logged."""
    PERFORMANCE_ONLY = "PerformanceOnly"
    """The performance set loaded once, the pre-generated schedule issued, metrics reported."""
    FIND_PEAK_PERFORMANCE = "FindPeakPerformance"
    """Server only: search for the highest target QPS that passes."""

    @property
    def conf_value(self) -> int:
        """The integer the `mode` conf key uses (0 SubmissionRun ... 3 FindPeakPerformance)."""
        return _MODE_ORDER.index(self)

    @classmethod
    def from_conf_value(cls, value: int) -> TestMode:
        """The mode for a `mode` conf value; raises ValueError outside 0-3."""
        if not 0 <= value < len(_MODE_ORDER):
            raise ValueError(f"mode must be 0 (SubmissionRun) .. 3 (FindPeakPerformance), got {value}")
        return _MODE_ORDER[value]


_MODE_ORDER: tuple[TestMode, ...] = (
    TestMode.SUBMISSION_RUN,
    TestMode.ACCURACY_ONLY,
    TestMode.PERFORMANCE_ONLY,
    TestMode.FIND_PEAK_PERFORMANCE,
)


class Rules(enum.Enum):
    """Which LoadGen version's semantics a run follows where the versions differ (MLPERF_LOADGEN.md §0)."""

    V2_1 = "v2.1"
    """Tag v2.1 (the Edge round edgeperf follows by default)."""
    CURRENT = "current"
    """LoadGen 6.0.17, the version of the `mlcommons-loadgen` wheel used as the test oracle."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TestSettings:
    """The requested settings: LoadGen's `mlperf::TestSettings`, field for field (§2.1).

    Defaults are LoadGen's defaults. Where LoadGen uses `0` for "unlimited" or "not set"
    (`max_duration_ms`, `max_query_count`, `server_max_async_queries`, the two sample-count overrides,
    `accuracy_log_sampling_target`) the field is `None` instead, and `0` is rejected.

    Raises:
        ValueError: for a negative count, a seed outside uint64, a `0` where `None` is meant, or a
            percentile or probability outside [0, 1].
    """

    __test__: ClassVar[bool] = False

    scenario: Scenario = Scenario.SINGLE_STREAM
    """Which scenario the run uses; never set by a conf file."""
    mode: TestMode = TestMode.PERFORMANCE_ONLY
    """Run mode (conf key `mode`, 0-3)."""

    single_stream_expected_latency_ns: float = 1_000_000.0
    """SingleStream hint: queries are pre-generated at 1e9 / this rate (`SingleStream.target_latency`, ms)."""
    single_stream_target_latency_percentile: float = 0.90
    """Fraction, e.g. 0.9 (`SingleStream.target_latency_percentile`, percent)."""
    multi_stream_expected_latency_ns: float = 8_000_000.0
    """MultiStream hint, as for SingleStream (`MultiStream.target_latency`, ms)."""
    multi_stream_target_latency_percentile: float = 0.99
    """Fraction (`MultiStream.target_latency_percentile`, percent)."""
    multi_stream_samples_per_query: int = 8
    """Samples in each MultiStream query (`MultiStream.samples_per_query`)."""

    server_target_qps: float = 1.0
    """Poisson arrival rate of the Server scenario (`Server.target_qps`)."""
    server_target_latency_ns: int = 100_000_000
    """Server latency bound (`Server.target_latency`, ms, truncated to an integer)."""
    server_target_latency_percentile: float = 0.99
    """Fraction of Server samples that must meet the bound (`Server.target_latency_percentile`, percent)."""
    server_coalesce_queries: bool = False
    """Merge Server queries already past their scheduled time into one issue (`Server.coalesce_queries`)."""
    server_find_peak_qps_decimals_of_precision: int = 1
    """FindPeakPerformance: decimals of the QPS at which the search stops (no conf key)."""
    server_find_peak_qps_boundary_step_size: float = 1.0
    """FindPeakPerformance: the upper bound grows by a factor (1 + step) (no conf key)."""
    server_max_async_queries: int | None = None
    """Outstanding Server queries above which the run ends with an error; None = unlimited."""
    server_num_issue_query_threads: int = 0
    """Issue threads registered by a C++ SUT; logged only (no conf key)."""

    offline_expected_qps: float = 1.0
    """Offline hint that sizes the single query (`Offline.target_qps`)."""

    sample_concatenate_permutation: bool = False
    """Equal issue: issue the loaded set as concatenated permutations (only the value 1 sets it)."""

    min_duration_ms: int = 10_000
    """Minimum test duration (`min_duration`, ms)."""
    max_duration_ms: int | None = None
    """Maximum test duration (`max_duration`, ms); None = unlimited."""
    min_query_count: int = 100
    """Minimum number of queries (`min_query_count`)."""
    max_query_count: int | None = None
    """Maximum number of queries (`max_query_count`); None = unlimited."""

    qsl_rng_seed: int = 0
    """uint64 seed choosing which samples are loaded (`qsl_rng_seed`)."""
    sample_index_rng_seed: int = 0
    """uint64 seed choosing which loaded samples go into each query (`sample_index_rng_seed`)."""
    schedule_rng_seed: int = 0
    """uint64 seed of the Server Poisson inter-arrival times (`schedule_rng_seed`)."""
    accuracy_log_rng_seed: int = 0
    """uint64 seed of the accuracy-log offset in performance mode (`accuracy_log_rng_seed`)."""
    accuracy_log_probability: float = 0.0
    """Fraction of samples logged in performance mode (`accuracy_log_probability`, percent)."""
    accuracy_log_sampling_target: int | None = None
    """If set, probability = target / expected samples, as TEST01 uses; None = off."""
    print_timestamps: bool = False
    """Print system-clock start and stop (`print_timestamps`)."""

    performance_issue_unique: bool = False
    """Performance mode issues each loaded sample exactly once (`performance_issue_unique`)."""
    performance_issue_same: bool = False
    """Every query repeats one sample, as TEST04 does (`performance_issue_same`)."""
    performance_issue_same_index: int = 0
    """Position in the loaded set of the repeated sample; must be < performance_sample_count."""
    performance_sample_count_override: int | None = None
    """Replaces the QSL's performance sample count when set (`performance_sample_count_override`)."""
    accuracy_sample_count_override: int | None = None
    """Current only: replaces the QSL's total count in accuracy mode (`accuracy_sample_count_override`)."""

    test05: bool = False
    """Current only: StartTest swaps in the three test05 seeds and forces PerformanceOnly."""
    test05_qsl_rng_seed: int = 0
    """Current only: qsl seed used when `test05` is set."""
    test05_sample_index_rng_seed: int = 0
    """Current only: sample index seed used when `test05` is set."""
    test05_schedule_rng_seed: int = 0
    """Current only: schedule seed used when `test05` is set."""

    use_token_latencies: bool = False
    """Current only (LLMs): record time to first token and time per output token."""
    server_ttft_latency_ns: int = 100_000_000
    """Current only: Server TTFT bound (`Server.ttft_latency`, ms; Python attribute `ttft_latency`)."""
    server_tpot_latency_ns: int = 100_000_000
    """Current only: Server TPOT bound (`Server.tpot_latency`, ms; Python attribute `tpot_latency`)."""
    infer_token_latencies: bool = False
    """Current only: report tokens per second inferred as samples x `token_latency_scaling_factor`."""
    token_latency_scaling_factor: int = 0
    """Current only: tokens per sample used when `infer_token_latencies` is set."""

    rules: Rules = Rules.V2_1
    """edgeperf, not LoadGen: which LoadGen version's semantics apply where v2.1 and current differ."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if value < 0:
                raise ValueError(f"{f.name} must not be negative, got {value}")
            if isinstance(value, int) and value > _UINT64_MAX:
                raise ValueError(f"{f.name} must fit in 64 unsigned bits, got {value}")
            if f.name in _NONE_MEANS_UNSET and value == 0:
                raise ValueError(f"{f.name}: use None, not 0, for unlimited or not set")
        if self.rules is Rules.V2_1:
            for name in _CURRENT_ONLY:
                if getattr(self, name):
                    raise ValueError(f"{name} does not exist at LoadGen v2.1; use rules=Rules.CURRENT")
        for name in _FRACTIONS:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a fraction in [0, 1], got {value}")

    def with_changes(self, **changes: object) -> TestSettings:
        """A copy with the named fields replaced (and validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]


_NONE_MEANS_UNSET = frozenset(
    {
        "max_duration_ms",
        "max_query_count",
        "server_max_async_queries",
        "performance_sample_count_override",
        "accuracy_sample_count_override",
        "accuracy_log_sampling_target",
    }
)
_CURRENT_ONLY = ("accuracy_sample_count_override", "test05", "use_token_latencies", "infer_token_latencies")
_FRACTIONS = (
    "single_stream_target_latency_percentile",
    "multi_stream_target_latency_percentile",
    "server_target_latency_percentile",
    "accuracy_log_probability",
)
