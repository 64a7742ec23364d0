"""``result.json``: settings, metrics, validity, errors, latency breakdown and issue delay, machine-readable."""

from __future__ import annotations

import enum
from dataclasses import fields, is_dataclass

from edgeperf.client.issue.raw_results import RunResult
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.report.latency_stats import LatencyStats
from edgeperf.client.report.log_format import MAX_ERROR_LINES, NOT_OFFICIAL_NOTICE, RunInfo, fixed
from edgeperf.client.report.metrics import PerformanceSummary

__all__ = ["result_json"]


def _jsonable(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def result_json(
    settings: EffectiveSettings,
    info: RunInfo,
    *,
    performance: RunResult | None = None,
    summary: PerformanceSummary | None = None,
    accuracy: RunResult | None = None,
) -> dict[str, object]:
    """The machine-readable result: settings, metrics, validity, errors, breakdown and issue delay."""
    out: dict[str, object] = {
        "tool": info.version,
        "notice": NOT_OFFICIAL_NOTICE,
        "sut_name": info.sut_name,
        "test_datetime": info.test_datetime.isoformat(),
        "scenario": settings.scenario.value,
        "mode": settings.mode.value,
        "rules": settings.rules.value,
        "settings": _jsonable(settings),
    }
    runs = {"accuracy": accuracy, "performance": performance}
    out["errors"] = {
        name: {
            "samples": run.n_samples,
            "failed": run.error_count,
            "by_status": run.errors_by_status(),
            "by_message": [
                {"status": st, "message": msg, "count": n}
                for (st, msg), n in list(run.errors_by_message().items())[:MAX_ERROR_LINES]
            ],
        }
        for name, run in runs.items()
        if run is not None
    }
    if summary is not None:
        key, value, unit = summary.official_metric
        out["validity"] = {
            "result_validity": summary.result_validity,
            "min_duration_met": summary.min_duration_met,
            "min_queries_met": summary.min_queries_met,
            "perf_constraints_met": summary.perf_constraints_met,
            "early_stopping_met": summary.early_stopping_met,
            "samples_ok_met": summary.samples_ok_met,
            "interrupted_after_s": summary.interrupted_after_s,
            "invalid_reason": summary.invalid_reason,
            "recommendations": list(summary.recommendations),
        }
        es = summary.early_stopping
        out["metrics"] = {
            "official": {"key": key, "value": value, "unit": unit},
            "queries_issued": summary.queries_issued,
            "sample_count": summary.sample_count,
            "sample_latency_ns": _latency_json(summary.sample_latency),
            "query_latency_ns": _latency_json(summary.query_latency),
            "qps_with_loadgen_overhead": summary.qps_with_loadgen_overhead,
            "qps_without_loadgen_overhead": summary.qps_without_loadgen_overhead,
            "scheduled_samples_per_sec": summary.scheduled_samples_per_sec,
            "completed_samples_per_sec": summary.completed_samples_per_sec,
            "samples_per_second": summary.samples_per_second,
            "overlatency_query_count": summary.overlatency_query_count,
            "final_query_scheduled_s": summary.final_query_scheduled_s,
            "final_query_issued_s": summary.final_query_issued_s,
            "final_query_all_samples_done_s": summary.final_query_all_samples_done_s,
            "early_stopping": None
            if es is None
            else {
                "met": es.met,
                "result": es.text,
                "latency_ss_ns": es.latency_ss_ns,
                "latency_ms_ns": es.latency_ms_ns,
                "estimates": _jsonable(es.estimates),
                "overlatency_count": es.overlatency_count,
                "queries_needed": es.queries_needed,
            },
        }
        out["issue_delay_ns"] = _jsonable(summary.issue_delay)
        out["latency_breakdown_ns"] = {
            c.name: {"description": c.description, **_stats(c.stats)} for c in summary.breakdown
        }
    return out


def _latency_json(stats: LatencyStats | None) -> dict[str, object] | None:
    if stats is None:
        return None
    return {
        "count": stats.count,
        "min": stats.min_ns,
        "max": stats.max_ns,
        "mean": stats.mean_ns,
        "target_percentile": stats.target_percentile,
        "at_target_percentile": stats.target_ns,
        "percentiles": {fixed(p * 100): v for p, v in stats.percentiles_ns},
    }


def _stats(stats: object) -> dict[str, object]:
    value = _jsonable(stats)
    return value if isinstance(value, dict) else {"count": 0}
