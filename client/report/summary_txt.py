"""``mlperf_log_summary.txt``: LoadGen's layout and phrases, then edgeperf's not-official notice.

The phrases the official parsers read (``Result is : VALID``, the "Test Parameters Used" block, the
warning/error footer) are LoadGen's; the notice comes after the footer so that no parsed phrase changes.
"""

from __future__ import annotations

from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.settings import Rules, Scenario
from edgeperf.client.report.latency_stats import LatencyStats
from edgeperf.client.report.log_format import NOT_OFFICIAL_NOTICE, RunInfo, cpp_double, fixed
from edgeperf.client.report.metrics import PerformanceSummary

__all__ = ["summary_text"]

_BANNER = "================================================"


def _zero(value: int | None) -> int:
    return 0 if value is None else value


def _yes(flag: bool) -> str:
    return "Yes" if flag else "NO"


def _settings_summary(s: EffectiveSettings) -> list[str]:
    out = [f"samples_per_query : {s.samples_per_query}", f"target_qps : {cpp_double(s.target_qps)}"]
    if s.use_token_latencies:
        out += [
            f"ttft_latency (ns): {s.server_ttft_latency_ns}",
            f"tpot_latency (ns): {s.server_tpot_latency_ns}",
        ]
    else:
        out.append(f"target_latency (ns): {_zero(s.target_latency_ns)}")
    out += [
        f"max_async_queries : {_zero(s.max_async_queries)}",
        f"min_duration (ms): {s.min_duration_ms}",
        f"max_duration (ms): {_zero(s.max_duration_ms)}",
        f"min_query_count : {s.min_query_count}",
        f"max_query_count : {_zero(s.max_query_count)}",
        f"qsl_rng_seed : {s.qsl_rng_seed}",
        f"sample_index_rng_seed : {s.sample_index_rng_seed}",
        f"schedule_rng_seed : {s.schedule_rng_seed}",
        f"accuracy_log_rng_seed : {s.accuracy_log_rng_seed}",
        f"accuracy_log_probability : {cpp_double(s.accuracy_log_probability)}",
        f"accuracy_log_sampling_target : {_zero(s.accuracy_log_sampling_target)}",
        f"print_timestamps : {int(s.print_timestamps)}",
        f"performance_issue_unique : {int(s.performance_issue_unique)}",
        f"performance_issue_same : {int(s.performance_issue_same)}",
        f"performance_issue_same_index : {s.performance_issue_same_index}",
        f"performance_sample_count : {s.performance_sample_count}",
    ]
    if s.rules is Rules.CURRENT:
        out.append(f"accuracy_sample_count : {s.accuracy_sample_count}")
        if s.sample_concatenate_permutation:
            out.append(
                "WARNING: sample_concatenate_permutation was set to true. \n"
                "Generated samples per query might be different as the one in the setting.\n"
                "Check the generated_samples_per_query line in the detailed log for the real\n"
                "samples_per_query value"
            )
    return out


def _latency_block(lat: LatencyStats) -> list[str]:
    out = [
        f"Min latency (ns)                : {lat.min_ns}",
        f"Max latency (ns)                : {lat.max_ns}",
        f"Mean latency (ns)               : {lat.mean_ns}",
    ]
    out += [f"{fixed(p * 100)} percentile latency (ns)   : {v}" for p, v in lat.percentiles_ns]
    return out


def _performance_summary(settings: EffectiveSettings, info: RunInfo, s: PerformanceSummary) -> list[str]:
    out = [_BANNER, "MLPerf Results Summary", _BANNER]
    out += [
        f"SUT name : {info.sut_name}",
        f"Scenario : {s.scenario.value}",
        f"Mode     : {settings.mode.value}",
    ]
    p = settings.target_latency_percentile
    label = f"{p * 100:.{s.label_decimals}f}"
    match s.scenario:
        case Scenario.SINGLE_STREAM:
            out.append(
                f"{label}th percentile latency (ns) : {s.sample_latency.target_ns if s.sample_latency else 0}"
            )
        case Scenario.MULTI_STREAM:
            out.append(
                f"{label}th percentile latency (ns) : {s.query_latency.target_ns if s.query_latency else 0}"
            )
        case Scenario.SERVER:
            if s.rules is Rules.V2_1:
                out.append(f"Scheduled samples per second : {fixed(s.scheduled_samples_per_sec)}")
            else:
                out.append(f"Completed samples per second    : {fixed(s.completed_samples_per_sec)}")
        case Scenario.OFFLINE:
            out.append(f"Samples per second: {cpp_double(s.samples_per_second)}")
    out.append(f"Result is : {s.result_validity}")
    if s.has_perf_constraints:
        out.append(f"  Performance constraints satisfied : {_yes(s.perf_constraints_met)}")
    out += [
        f"  Min duration satisfied : {_yes(s.min_duration_met)}",
        f"  Min queries satisfied : {_yes(s.min_queries_met)}",
        f"  Early stopping satisfied: {_yes(s.early_stopping_met)}",
    ]
    if not s.valid:
        out.append("Recommendations:")
        out += [f" * {r}" for r in s.recommendations]
    if s.early_stopping is not None:
        out += ["Early Stopping Result:", s.early_stopping.text]
    out += ["", _BANNER, "Additional Stats", _BANNER]
    match s.scenario:
        case Scenario.SINGLE_STREAM:
            out += [
                f"QPS w/ loadgen overhead         : {fixed(s.qps_with_loadgen_overhead)}",
                f"QPS w/o loadgen overhead        : {fixed(s.qps_without_loadgen_overhead)}",
                "",
            ]
        case Scenario.SERVER:
            if s.rules is Rules.V2_1:
                out += [f"Completed samples per second    : {fixed(s.completed_samples_per_sec)}", ""]
            else:
                out.append(f"Scheduled samples per second : {fixed(s.scheduled_samples_per_sec)}")
        case Scenario.MULTI_STREAM:
            out.append("Per-query latency:  ")
            if s.query_latency is not None:
                out += _latency_block(s.query_latency)
        case Scenario.OFFLINE:
            pass
    if s.scenario is not Scenario.MULTI_STREAM and s.sample_latency is not None:
        out += _latency_block(s.sample_latency)
    out += ["", _BANNER, "Test Parameters Used", _BANNER]
    out += _settings_summary(settings)
    return out


def summary_text(
    settings: EffectiveSettings,
    info: RunInfo,
    summary: PerformanceSummary | None,
    *,
    warnings: int,
    errors: int,
) -> str:
    """The text of ``mlperf_log_summary.txt``; ``summary`` None (accuracy mode) gives only the footer."""
    lines = _performance_summary(settings, info, summary) if summary is not None else []
    if summary is not None and info.extra_summary:
        lines += ["", _BANNER, "edgeperf", _BANNER, *info.extra_summary]
    text = "".join(line + "\n" for line in lines)
    text += _encountered(warnings, "warnings", "warning", "warnings")
    text += _encountered(errors, "errors", "ERROR", "ERRORS")
    return text + "\n" + NOT_OFFICIAL_NOTICE + "\n"


def _encountered(count: int, none: str, one: str, many: str) -> str:
    """LoadGen's closing line on the warnings or errors of the run, in its words (`none` when there were none,
    then `one` or `many`)."""
    if count == 0:
        return f"\nNo {none} encountered during test.\n"
    return f"\n{count} {one if count == 1 else many} encountered. See detailed log.\n"
