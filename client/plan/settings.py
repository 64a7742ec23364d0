"""Requested and effective LoadGen test settings (MLPERF_LOADGEN.md §2).

`TestSettings` is what the conf files and flags ask for, with LoadGen's field names and units;
`EffectiveSettings` is what one run uses, derived once by `EffectiveSettings.from_requested` exactly as
LoadGen's `TestSettingsInternal` constructor does. Inside edgeperf "unlimited" and "not set" are `None`;
LoadGen's `0` appears only in the log writers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields, replace
from typing import ClassVar, assert_never

__all__ = [
    "EffectiveSettings",
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

        return cls(
            requested=req,
            scenario=req.scenario,
            mode=req.mode,
            rules=req.rules,
            samples_per_query=samples_per_query,
            target_qps=target_qps,
            target_latency_ns=target_latency_ns,
            target_latency_percentile=percentile,
            max_async_queries=max_async_queries,
            target_duration_ms=target_duration_ms,
            min_duration_ms=req.min_duration_ms,
            max_duration_ms=req.max_duration_ms,
            min_query_count=min_query_count,
            max_query_count=req.max_query_count,
            min_sample_count=min_query_count * samples_per_query,
            qsl_rng_seed=req.qsl_rng_seed,
            sample_index_rng_seed=req.sample_index_rng_seed,
            schedule_rng_seed=req.schedule_rng_seed,
            accuracy_log_rng_seed=req.accuracy_log_rng_seed,
            accuracy_log_probability=req.accuracy_log_probability,
            accuracy_log_sampling_target=req.accuracy_log_sampling_target,
            print_timestamps=req.print_timestamps,
            performance_issue_unique=req.performance_issue_unique,
            performance_issue_same=req.performance_issue_same,
            performance_issue_same_index=req.performance_issue_same_index,
            performance_sample_count=perf_count,
            accuracy_sample_count=acc_count,
            sample_concatenate_permutation=req.sample_concatenate_permutation,
            server_coalesce_queries=req.server_coalesce_queries,
            server_find_peak_qps_decimals_of_precision=req.server_find_peak_qps_decimals_of_precision,
            server_find_peak_qps_boundary_step_size=req.server_find_peak_qps_boundary_step_size,
            use_token_latencies=req.use_token_latencies,
            server_ttft_latency_ns=req.server_ttft_latency_ns,
            server_tpot_latency_ns=req.server_tpot_latency_ns,
            infer_token_latencies=req.infer_token_latencies,
            token_latency_scaling_factor=req.token_latency_scaling_factor,
            qsl_total_sample_count=total_sample_count,
            qsl_performance_sample_count=performance_sample_count,
            warnings=tuple(warnings),
        )


def _qps_from_latency(expected_latency_ns: float, name: str) -> float:
    if expected_latency_ns <= 0:
        raise ValueError(f"{name}_expected_latency_ns must be positive, got {expected_latency_ns}")
    return 1e9 / expected_latency_ns


def _positive_qps(qps: float, name: str) -> float:
    # NOTE: LoadGen accepts 0 and then divides by it when it generates queries; edgeperf refuses.
    if not qps > 0:
        raise ValueError(f"{name} must be positive, got {qps}")
    return qps
