"""``mlperf_log_detail.txt``: ``:::MLLOG`` JSON lines with LoadGen's keys, order and value formats.

Booleans are true/false, doubles C++ stream defaults, "unlimited" is 0, and every line is valid JSON.
Failed samples appear once per distinct ``(status, message)`` with their count (`MAX_ERROR_LINES` at most).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from edgeperf.client.issue.raw_results import RunResult
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.settings import Rules, Scenario
from edgeperf.client.report.detail_record import DetailRecord, render_record
from edgeperf.client.report.detail_settings import settings_records
from edgeperf.client.report.latency_stats import REPORTED_PERCENTILES
from edgeperf.client.report.log_format import (
    MAX_ERROR_LINES,
    NOT_OFFICIAL_NOTICE,
    LoadableSetLog,
    RunInfo,
    fixed,
)
from edgeperf.client.report.metrics import PerformanceSummary

__all__ = ["DetailRecord", "detail_lines", "detail_records", "log_counts", "render_record"]


def _zero(value: int | None) -> int:
    return 0 if value is None else value


def _set_lines(ls: LoadableSetLog, t: int = 0) -> list[DetailRecord]:
    return [
        DetailRecord("loaded_qsl_set", ls.loaded_qsl_set, t),
        DetailRecord("generated_query_count", ls.generated_query_count, t),
        DetailRecord("generated_samples_per_query", ls.generated_samples_per_query, t),
        DetailRecord("generated_query_duration", ls.generated_query_duration_ns, t),
    ]


def _run_lines(result: RunResult, off: int = 0) -> list[DetailRecord]:
    out = [DetailRecord(e.key, e.message, e.time_ns + off, e.is_error, e.is_warning) for e in result.events]
    by_message = result.errors_by_message()
    for i, ((status, message), count) in enumerate(by_message.items()):
        if i == MAX_ERROR_LINES:
            rest = sum(list(by_message.values())[i:])
            out.append(
                DetailRecord(
                    "error_runtime",
                    f"{rest} more failed samples with other messages",
                    result.end_ns + off,
                    True,
                )
            )
            break
        text = (
            f"{count} samples failed with {status}: {message}"
            if message
            else f"{count} samples failed with {status}"
        )
        out.append(DetailRecord("error_runtime", text, result.end_ns + off, True))
    return out


def _power_lines(
    info: RunInfo, ls: LoadableSetLog | None, result: RunResult | None, not_before: int = 0
) -> list[DetailRecord]:
    """power_begin/power_end of one IssueQueries call (a loadable set, or a probe), as LoadGen logs them:
    the wall clock when issuing began and that plus the time to the last completion; logged once the
    set is done (`not_before`: the time of the set's last line)."""
    if info.log_start_ns is not None and ls is not None and ls.start_ns is not None:
        begin_ns = ls.start_ns - info.log_start_ns
        active_ns = max(ls.active_ns or 0, 0)
    elif result is not None:
        # NOTE: logs written from results alone have no logger start: the pass starts at test_datetime.
        done = result.sample_completed_ns
        begin_ns = 0
        active_ns = max(int(done.max()) if done.size else result.end_ns, 0)
    else:
        return []
    begin = info.test_datetime.astimezone(UTC) + timedelta(microseconds=begin_ns / 1000)
    end = begin + timedelta(microseconds=active_ns / 1000)
    t = max(begin_ns + active_ns, not_before)
    return [
        DetailRecord("power_begin", _power_time(begin), t),
        DetailRecord("power_end", _power_time(end), t),
    ]


def _offset(info: RunInfo, result: RunResult) -> int:
    """What turns a pass's times (from its own start) into times from the logger's start."""
    return 0 if info.log_start_ns is None else result.start_ns - info.log_start_ns


def _since_log(info: RunInfo, at_ns: int | None, fallback: int) -> int:
    return fallback if info.log_start_ns is None or at_ns is None else at_ns - info.log_start_ns


def _pass_lines(
    info: RunInfo, title: str, result: RunResult, sets: Sequence[tuple[str | None, LoadableSetLog]]
) -> list[DetailRecord]:
    """A pass as LoadGen logs it: per loadable set (per probe in FindPeakPerformance) its set, the
    generated queries and its power window; the pass's messages before the last set's power window."""
    off = _offset(info, result)
    lines = [DetailRecord("generic_message", title, off)]
    for i, (label, ls) in enumerate(sets):
        t_set = _since_log(info, ls.start_ns, off)
        if label is not None:
            lines.append(DetailRecord("generic_message", label, t_set))
        lines += _set_lines(ls, t_set)
        if i == len(sets) - 1:
            lines += _run_lines(result, off)
            lines += _power_lines(info, ls, result, lines[-1].time_ns)
        else:
            lines += _power_lines(info, ls, None, lines[-1].time_ns)
    if not sets:
        lines += _run_lines(result, off)
        lines += _power_lines(info, None, result, lines[-1].time_ns)
    return lines


def _power_time(t: datetime) -> str:
    return t.strftime("%m-%d-%Y %H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def _result_lines(s: PerformanceSummary, t: int) -> list[DetailRecord]:
    out = [DetailRecord("result_validity", s.result_validity, t)]
    if s.has_perf_constraints:
        out.append(DetailRecord("result_perf_constraints_met", s.perf_constraints_met, t))
    out += [
        DetailRecord("result_min_duration_met", s.min_duration_met, t),
        DetailRecord("result_min_queries_met", s.min_queries_met, t),
        DetailRecord("early_stopping_met", s.early_stopping_met, t),
    ]
    if not s.valid:
        out.append(DetailRecord("result_invalid_reason", s.invalid_reason, t))
    es_text = s.early_stopping.detail_text if s.early_stopping is not None else ""
    out += [
        DetailRecord("early_stopping_result", es_text, t),
        DetailRecord("result_query_count", s.queries_issued, t),
    ]
    if s.scenario is Scenario.SERVER:
        out.append(DetailRecord("result_overlatency_query_count", s.overlatency_query_count, t))
    es = s.early_stopping
    match s.scenario:
        case Scenario.SINGLE_STREAM:
            out += [
                DetailRecord("result_qps_with_loadgen_overhead", s.qps_with_loadgen_overhead, t),
                DetailRecord("result_qps_without_loadgen_overhead", s.qps_without_loadgen_overhead, t),
                DetailRecord("early_stopping_latency_ss", es.latency_ss_ns if es else 0, t),
                DetailRecord("early_stopping_latency_ms", es.latency_ms_ns if es else 0, t),
            ]
        case Scenario.MULTI_STREAM:
            q = s.query_latency
            out += [
                DetailRecord("result_min_query_latency_ns", q.min_ns if q else 0, t),
                DetailRecord("result_max_query_latency_ns", q.max_ns if q else 0, t),
                DetailRecord("result_mean_query_latency_ns", q.mean_ns if q else 0, t),
            ]
            out += [
                DetailRecord(
                    f"result_{fixed(p * 100)}_percentile_per_query_latency_ns", q.at(p) if q else 0, t
                )
                for p in REPORTED_PERCENTILES
            ]
            out.append(DetailRecord("early_stopping_latency_ms", es.latency_ms_ns if es else 0, t))
        case Scenario.SERVER:
            out += [
                DetailRecord("result_scheduled_samples_per_sec", s.scheduled_samples_per_sec, t),
                DetailRecord("result_completed_samples_per_sec", s.completed_samples_per_sec, t),
            ]
        case Scenario.OFFLINE:
            out.append(DetailRecord("result_samples_per_second", s.samples_per_second, t))
    lat = s.sample_latency
    out += [
        DetailRecord("result_min_latency_ns", lat.min_ns if lat else 0, t),
        DetailRecord("result_max_latency_ns", lat.max_ns if lat else 0, t),
        DetailRecord("result_mean_latency_ns", lat.mean_ns if lat else 0, t),
    ]
    out += [
        DetailRecord(f"result_{fixed(p * 100)}_percentile_latency_ns", lat.at(p) if lat else 0, t)
        for p in REPORTED_PERCENTILES
    ]
    return out


def detail_records(
    settings: EffectiveSettings,
    info: RunInfo,
    performance: RunResult | None,
    summary: PerformanceSummary | None,
    accuracy: RunResult | None,
) -> list[DetailRecord]:
    lines = [
        DetailRecord(
            "loadgen_version", f"{info.version} (LoadGen-compatible; not the official MLPerf LoadGen)"
        ),
        DetailRecord("edgeperf_notice", NOT_OFFICIAL_NOTICE),
        DetailRecord("test_datetime", info.test_datetime.strftime("%Y-%m-%dT%H:%M:%SZ")),
        DetailRecord("sut_name", info.sut_name),
        DetailRecord("get_sut_name_duration_ns", info.get_sut_name_duration_ns),
        DetailRecord("qsl_name", info.qsl_name),
        DetailRecord("qsl_reported_total_count", info.qsl_total_count),
        DetailRecord("qsl_reported_performance_count", info.qsl_performance_count),
    ]
    for w in settings.warnings:
        if w.startswith("Test05"):
            lines.append(DetailRecord("warning_generic_message", w, is_warning=True))
        else:
            lines.append(DetailRecord("error_invalid_test_settings", w, is_error=True))
    lines += settings_records(settings)
    lines += [DetailRecord("generic_message", m) for m in info.messages]
    if info.log_start_ns is not None:
        lines = [dataclasses.replace(ln, time_ns=info.header_ns) for ln in lines]
    if accuracy is not None:
        lines += _pass_lines(
            info, "Starting accuracy mode", accuracy, [(None, ls) for ls in info.accuracy_sets]
        )
    t_end = 0
    if performance is not None:
        # NOTE: LoadGen logs the set, the generated queries and the power window of every probe.
        sets: list[tuple[str | None, LoadableSetLog]] = [
            (f"FindPeakPerformance: probing target_qps {qps!r}", ls) for qps, ls in info.probe_sets
        ]
        if not sets and info.performance_set is not None:
            sets = [(None, info.performance_set)]
        lines += _pass_lines(info, "Starting performance mode", performance, sets)
        t_end = performance.end_ns + _offset(info, performance)
        if summary is not None:
            lines += _result_lines(summary, t_end)
            lines.append(DetailRecord("edgeperf_samples_failed", summary.samples_failed, t_end))
        lines += [DetailRecord(key, value, t_end) for key, value in info.extra_detail]
    # NOTE: LoadGen 6.0.17 counts errors with the performance summary; an AccuracyOnly run has none.
    if settings.rules is Rules.CURRENT and performance is not None:
        errors = sum(1 for ln in lines if ln.is_error)
        lines.append(DetailRecord("num_errors", errors, t_end))
    return lines


def detail_lines(
    settings: EffectiveSettings,
    info: RunInfo,
    *,
    performance: RunResult | None = None,
    summary: PerformanceSummary | None = None,
    accuracy: RunResult | None = None,
) -> list[str]:
    """The lines of ``mlperf_log_detail.txt``, each ending in a newline."""
    pid, tid = os.getpid(), threading.get_native_id()
    return [
        render_record(ln, pid, tid) for ln in detail_records(settings, info, performance, summary, accuracy)
    ]


def log_counts(lines: Sequence[DetailRecord]) -> tuple[int, int]:
    return sum(1 for ln in lines if ln.is_warning), sum(1 for ln in lines if ln.is_error)
