"""Readable text for people: the pre-run explanation and the end-of-run summary the CLI prints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, assert_never

from edgeperf.client.issue.raw_results import RunResult
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.settings import Scenario
from edgeperf.client.report.early_stopping import MinPassingQueriesFinder
from edgeperf.client.report.latency_stats import LatencyStats
from edgeperf.client.report.log_files import NOT_OFFICIAL_NOTICE
from edgeperf.client.report.metrics import PerformanceSummary

if TYPE_CHECKING:
    from edgeperf.client.report.run_outcome import RunOutcome

__all__ = ["early_stopping_floor", "expected_duration_s", "prerun_explanation", "render_outcome"]


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.3f} ms"


def early_stopping_floor(settings: EffectiveSettings) -> tuple[int, str] | None:
    """The fewest queries early stopping can pass with, and why; None where it does not apply (Offline)."""
    p = settings.target_latency_percentile
    label = f"{p * 100:g}th percentile"
    finder = MinPassingQueriesFinder()
    match settings.scenario:
        case Scenario.SINGLE_STREAM | Scenario.MULTI_STREAM:
            floor = finder(1, p) + 1
            return floor, f"early stopping needs at least {floor} queries to estimate the {label}"
        case Scenario.SERVER:
            floor = finder(0, p)
            return floor, (
                f"with no sample over the latency bound early stopping needs {floor} queries at the {label}; "
                "each sample over the bound raises it"
            )
        case Scenario.OFFLINE:
            return None
        case _:
            assert_never(settings.scenario)


def expected_duration_s(settings: EffectiveSettings) -> tuple[float, str]:
    """How long the performance run should take if the SUT meets the hints, and why."""
    min_s = settings.min_duration_ms / 1000
    match settings.scenario:
        case Scenario.SINGLE_STREAM | Scenario.MULTI_STREAM:
            by_count = settings.min_query_count / settings.target_qps
            return max(min_s, by_count), (
                f"the longer of min_duration ({min_s:g} s) and min_query_count ({settings.min_query_count}) "
                f"x expected latency ({_ms(1e9 / settings.target_qps)}); ends once both are met"
            )
        case Scenario.SERVER:
            by_count = settings.min_query_count / settings.target_qps
            return max(min_s, by_count), (
                f"every generated query is issued: the longer of min_duration ({min_s:g} s) and "
                f"min_query_count ({settings.min_query_count}) / target_qps ({settings.target_qps:g})"
            )
        case Scenario.OFFLINE:
            spq = settings.samples_per_query
            return spq / settings.target_qps, (
                f"one query of {spq} samples (max of min_query_count and 1.1 x min_duration x expected QPS "
                f"{settings.target_qps:g}) at the expected QPS"
            )
        case _:
            assert_never(settings.scenario)


def prerun_explanation(settings: EffectiveSettings, sources: Mapping[str, str] | None = None) -> str:
    """What the run will need before it is VALID, and where each number comes from."""
    src = sources or {}

    def origin(name: str) -> str:
        where = src.get(name)
        return f"  [{name} <- {where}]" if where else ""

    lines = [
        f"{settings.scenario.value} / {settings.mode.value} (rules {settings.rules.value})",
        f"  min query count    : {settings.min_query_count}{origin('min_query_count')}",
        f"  min duration       : {settings.min_duration_ms / 1000:g} s{origin('min_duration_ms')}",
    ]
    if settings.scenario is Scenario.SERVER:
        lines.append(f"  target QPS         : {settings.target_qps:g}{origin('server_target_qps')}")
        assert settings.target_latency_ns is not None
        lines.append(
            f"  latency bound      : {_ms(settings.target_latency_ns)} at the "
            f"{settings.target_latency_percentile * 100:g}th percentile{origin('server_target_latency_ns')}"
        )
    if settings.scenario is Scenario.MULTI_STREAM:
        lines.append(f"  samples per query  : {settings.samples_per_query}")
    if settings.scenario is Scenario.OFFLINE:
        lines.append(f"  samples in the query: {settings.samples_per_query}")
    floor = early_stopping_floor(settings)
    if floor is not None:
        count, why = floor
        lines.append(f"  early-stopping floor: {count} queries ({why})")
        if count > settings.min_query_count:
            lines.append(
                f"    note: min_query_count {settings.min_query_count} is below it; a shorter run is INVALID"
            )
    seconds, why = expected_duration_s(settings)
    lines.append(f"  expected duration  : ~{seconds:.1f} s ({why})")
    loaded = min(settings.performance_sample_count, settings.qsl_total_sample_count)
    lines.append(
        f"  performance samples: {loaded} loaded (performance_sample_count "
        f"{settings.performance_sample_count}, QSL size {settings.qsl_total_sample_count})"
    )
    return "\n".join(lines)


def _latency_lines(title: str, stats: LatencyStats | None) -> list[str]:
    if stats is None:
        return [f"{title}: none"]
    pct = "  ".join(f"p{p * 100:g} {_ms(v)}" for p, v in stats.percentiles_ns if p in (0.5, 0.9, 0.99))
    return [f"{title}: min {_ms(stats.min_ns)}  mean {_ms(stats.mean_ns)}  {pct}  max {_ms(stats.max_ns)}"]


def render_outcome(
    settings: EffectiveSettings,
    summary: PerformanceSummary | None,
    outcome: RunOutcome,
    accuracy_result: RunResult | None,
) -> str:
    """The end-of-run text: the official metric first, validity and reasons, latencies, errors, files."""
    lines = [f"== edgeperf {settings.scenario.value} / {settings.mode.value}: {outcome.validity} =="]
    if outcome.peak_qps is not None:
        lines.append(f"Peak target QPS that passed: {outcome.peak_qps!r}")
    if summary is not None:
        key, value, unit = summary.official_metric
        lines.append(f"Official metric ({key}): {value:.6g} {unit}")
        es = summary.early_stopping
        if es is not None:
            for est in es.estimates:
                if est.passed and est.estimate_ns is not None:
                    lines.append(
                        f"  early stopping: t = {est.t}, discarded the {max(est.t - 1, 0)} highest, "
                        f"estimate {_ms(est.estimate_ns)}"
                    )
            if es.queries_needed is not None and not es.met:
                lines.append(
                    f"  early stopping needs {es.queries_needed - summary.queries_issued} more queries"
                )
        lines.append(
            f"Queries issued {summary.queries_issued}, samples ok {summary.sample_count} "
            f"of {summary.samples_issued}, failed {summary.samples_failed}"
        )
        if settings.scenario is Scenario.SERVER:
            lines.append(
                f"Scheduled samples/s {summary.scheduled_samples_per_sec:.2f}, "
                f"completed samples/s {summary.completed_samples_per_sec:.2f}, "
                f"over latency {summary.overlatency_query_count}"
            )
        if settings.scenario is Scenario.OFFLINE:
            lines.append(f"Samples per second {summary.samples_per_second:.2f}")
        if summary.query_latency is not None:
            lines += _latency_lines("Query latency", summary.query_latency)
        else:
            lines += _latency_lines("Sample latency", summary.sample_latency)
        delay = summary.issue_delay
        if delay is not None:
            lines.append(
                f"Issue delay (issued - scheduled): p50 {delay.p50_ns / 1e3:.1f} us  "
                f"p99 {delay.p99_ns / 1e3:.1f} us  max {delay.max_ns / 1e3:.1f} us"
            )
        for component in summary.breakdown:
            if component.stats is not None and component.name != "end_to_end":
                lines.append(f"  {component.name:<26} mean {_ms(component.stats.mean_ns)}")
        for status, count in summary.errors_by_status.items():
            lines.append(f"Errors: {status} x {count}")
    if accuracy_result is not None:
        lines.append(
            f"Accuracy run: {accuracy_result.n_samples} samples, {accuracy_result.error_count} failed"
        )
    if outcome.accuracy is not None:
        report = outcome.accuracy
        lines.append(
            f"Accuracy: {report.metric} = {report.value:.5g} (target {report.target:.5g}) "
            f"{'PASS' if report.passed else 'FAIL'}"
        )
    check = outcome.client
    if check is not None:
        lines.append(check.console_line())
        if check.bottleneck and not outcome.invalid_reasons:
            lines.append(f"WARNING: {check.reason()}")
    lines += outcome.device_lines
    for reason in outcome.invalid_reasons:
        lines.append(f"INVALID because: {reason}")
    lines.append(f"Logs: {outcome.out_dir}")
    lines.append(NOT_OFFICIAL_NOTICE)
    return "\n".join(lines)
