"""LoadGen-format log files and edgeperf's result.json, each written atomically (MLPERF_LOADGEN.md §11-§12).

- ``mlperf_log_summary.txt``: LoadGen's layout and phrases (``Result is : VALID``, booleans 0/1, the
  "Test Parameters Used" block, the warning/error footer), then a notice that these are not official
  MLPerf results, placed after the footer so that no parsed phrase changes.
- ``mlperf_log_detail.txt``: ``:::MLLOG {json}`` lines with LoadGen's keys, order and value formats
  (booleans true/false, C++ stream-default doubles, unlimited as 0), every line valid JSON.
- ``mlperf_log_accuracy.json``: LoadGen's layout, one entry per line, uppercase hex.
- ``result.json``: machine-readable settings, metrics, validity, errors, latency breakdown, issue delay.

A file is written to a temporary file in the same directory and moved into place with ``os.replace``,
so an interrupted run leaves each file complete or absent.
"""

from __future__ import annotations

import enum
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edgeperf.client.results import AccuracyEntry, RunResult
from edgeperf.client.settings import EffectiveSettings, Rules, Scenario, TestMode
from edgeperf.client.summary import REPORTED_PERCENTILES, LatencyStats, PerformanceSummary

__all__ = [
    "NOT_OFFICIAL_NOTICE",
    "LoadableSetLog",
    "LogFiles",
    "RunInfo",
    "accuracy_log_lines",
    "atomic_write",
    "cpp_double",
    "detail_lines",
    "result_json",
    "summary_text",
    "write_logs",
]

NOT_OFFICIAL_NOTICE = (
    "NOTE - produced by edgeperf, a LoadGen-compatible load generator. These are not official MLPerf "
    "results. MLPerf is a trademark of MLCommons; official results come only from the official MLPerf LoadGen."
)
_BANNER = "================================================"
_MAX_ERROR_LINES = 100


def cpp_double(value: float) -> str:
    """A double as a C++ ostream prints it by default (``%g``, 6 significant digits): 1e+06, 0.9, 835.116."""
    return f"{value:g}"


def _fixed(value: float, decimals: int = 2) -> str:
    """LoadGen's ``DoubleToString`` (fixed notation)."""
    return f"{value:.{decimals}f}"


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadableSetLog:
    """One loadable set and the queries generated for it (the detail log's ``loaded_qsl_set`` block)."""

    loaded_qsl_set: tuple[int, ...]
    generated_query_count: int
    generated_samples_per_query: int
    generated_query_duration_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo:
    """What the log header needs beyond settings and results.

    Attributes:
        sut_name: the SUT's name (``sut_name``, ``SUT name :``).
        test_datetime: wall-clock start of the test, timezone-aware (logged only, never used for timing).
        qsl_name, qsl_total_count, qsl_performance_count: what the QSL reported.
        performance_set: the performance-mode loadable set, if a performance run happened.
        accuracy_sets: the accuracy-mode loadable sets, in order, if an accuracy run happened.
        version: edgeperf's version, written as ``loadgen_version``.
        messages: extra ``generic_message`` lines (e.g. the command line).
    """

    sut_name: str
    test_datetime: datetime
    qsl_name: str = "edgeperf QSL"
    qsl_total_count: int = 0
    qsl_performance_count: int = 0
    get_sut_name_duration_ns: int = 0
    performance_set: LoadableSetLog | None = None
    accuracy_sets: tuple[LoadableSetLog, ...] = ()
    version: str = "edgeperf"
    messages: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True, kw_only=True)
class LogFiles:
    summary: Path
    detail: Path
    accuracy: Path
    result_json: Path

    @property
    def all(self) -> tuple[Path, ...]:
        return (self.summary, self.detail, self.accuracy, self.result_json)


def atomic_write(path: Path, chunks: Iterable[str]) -> None:
    """Writes ``chunks`` to ``path`` through a temporary file in the same directory and ``os.replace``.

    On any exception (including one raised by the ``chunks`` iterator) the temporary file is removed
    and ``path`` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- detail log -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Line:
    key: str
    value: object
    time_ns: int = 0
    is_error: bool = False
    is_warning: bool = False


def _value_json(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return cpp_double(value)
    if isinstance(value, tuple | list):
        return "[" + ",".join(str(int(v)) for v in value) + "]"
    # NOTE: LoadGen writes strings unescaped; json.dumps gives the same bytes for its plain ASCII
    # messages and keeps every line valid JSON when a message carries quotes or newlines.
    return json.dumps(str(value), ensure_ascii=False)


def _render(line: _Line, pid: int, tid: int) -> str:
    t = max(line.time_ns, 0)
    return (
        f':::MLLOG {{"key": {json.dumps(line.key)}, "value": {_value_json(line.value)}, '
        f'"time_ms": {t // 1_000_000}.{t % 1_000_000:06d}, "namespace": "mlperf::logging", '
        f'"event_type": "POINT_IN_TIME", "metadata": {{"is_error": {_value_json(line.is_error)}, '
        f'"is_warning": {_value_json(line.is_warning)}, "file": "edgeperf", "line_no": 0, '
        f'"pid": {pid}, "tid": {tid}}}}}\n'
    )


def _zero(value: int | None) -> int:
    return 0 if value is None else value


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
_COMMON_REQUESTED = [
    "min_duration_ms",
    "max_duration_ms",
    "min_query_count",
    "max_query_count",
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
    "performance_sample_count_override",
]
_EFFECTIVE = [
    "samples_per_query",
    "target_qps",
    "target_latency_ns",
    "target_latency_percentile",
    "max_async_queries",
    "target_duration_ms",
    "min_duration_ms",
    "max_duration_ms",
    "min_query_count",
    "max_query_count",
    "min_sample_count",
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


def _settings_lines(s: EffectiveSettings) -> list[_Line]:
    r = s.requested
    current = s.rules is Rules.CURRENT
    names = [*_SCENARIO_REQUESTED[r.scenario], *_COMMON_REQUESTED, *(_CURRENT_REQUESTED if current else ())]
    out = [_Line("requested_scenario", r.scenario.value), _Line("requested_test_mode", r.mode.value)]
    out += [_Line(f"requested_{n}", _setting(r, n)) for n in names]
    if current and r.use_token_latencies:
        out.append(_Line("requested_use_token_latencies", True))
        if r.scenario is not Scenario.OFFLINE:
            out.append(_Line("requested_server_ttft_latency", r.server_ttft_latency_ns))
            out.append(_Line("requested_server_tpot_latency", r.server_tpot_latency_ns))
    out += [_Line("effective_scenario", s.scenario.value), _Line("effective_test_mode", s.mode.value)]
    out += [
        _Line(f"effective_{n}", _setting(s, n))
        for n in (*_EFFECTIVE, *(_CURRENT_EFFECTIVE if current else ()))
    ]
    return out


def _set_lines(ls: LoadableSetLog) -> list[_Line]:
    return [
        _Line("loaded_qsl_set", ls.loaded_qsl_set),
        _Line("generated_query_count", ls.generated_query_count),
        _Line("generated_samples_per_query", ls.generated_samples_per_query),
        _Line("generated_query_duration", ls.generated_query_duration_ns),
    ]


def _run_lines(result: RunResult) -> list[_Line]:
    out = [_Line(e.key, e.message, e.time_ns, e.is_error, e.is_warning) for e in result.events]
    by_message = result.errors_by_message()
    for i, ((status, message), count) in enumerate(by_message.items()):
        if i == _MAX_ERROR_LINES:
            rest = sum(list(by_message.values())[i:])
            out.append(
                _Line("error_runtime", f"{rest} more failed samples with other messages", result.end_ns, True)
            )
            break
        text = (
            f"{count} samples failed with {status}: {message}"
            if message
            else f"{count} samples failed with {status}"
        )
        out.append(_Line("error_runtime", text, result.end_ns, True))
    return out


def _power_lines(info: RunInfo, result: RunResult) -> list[_Line]:
    done = result.sample_completed_ns
    active_ns = int(done.max()) if done.size else result.end_ns
    begin = info.test_datetime.astimezone(UTC)
    end = begin + timedelta(microseconds=max(active_ns, 0) / 1000)
    return [
        _Line("power_begin", _power_time(begin), 0),
        _Line("power_end", _power_time(end), result.end_ns),
    ]


def _power_time(t: datetime) -> str:
    return t.strftime("%m-%d-%Y %H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def _result_lines(s: PerformanceSummary, t: int) -> list[_Line]:
    out = [_Line("result_validity", s.result_validity, t)]
    if s.has_perf_constraints:
        out.append(_Line("result_perf_constraints_met", s.perf_constraints_met, t))
    out += [
        _Line("result_min_duration_met", s.min_duration_met, t),
        _Line("result_min_queries_met", s.min_queries_met, t),
        _Line("early_stopping_met", s.early_stopping_met, t),
    ]
    if not s.valid:
        out.append(_Line("result_invalid_reason", s.invalid_reason, t))
    es_text = s.early_stopping.detail_text if s.early_stopping is not None else ""
    out += [_Line("early_stopping_result", es_text, t), _Line("result_query_count", s.queries_issued, t)]
    if s.scenario is Scenario.SERVER:
        out.append(_Line("result_overlatency_query_count", s.overlatency_query_count, t))
    es = s.early_stopping
    match s.scenario:
        case Scenario.SINGLE_STREAM:
            out += [
                _Line("result_qps_with_loadgen_overhead", s.qps_with_loadgen_overhead, t),
                _Line("result_qps_without_loadgen_overhead", s.qps_without_loadgen_overhead, t),
                _Line("early_stopping_latency_ss", es.latency_ss_ns if es else 0, t),
                _Line("early_stopping_latency_ms", es.latency_ms_ns if es else 0, t),
            ]
        case Scenario.MULTI_STREAM:
            q = s.query_latency
            out += [
                _Line("result_min_query_latency_ns", q.min_ns if q else 0, t),
                _Line("result_max_query_latency_ns", q.max_ns if q else 0, t),
                _Line("result_mean_query_latency_ns", q.mean_ns if q else 0, t),
            ]
            out += [
                _Line(f"result_{_fixed(p * 100)}_percentile_per_query_latency_ns", q.at(p) if q else 0, t)
                for p in REPORTED_PERCENTILES
            ]
            out.append(_Line("early_stopping_latency_ms", es.latency_ms_ns if es else 0, t))
        case Scenario.SERVER:
            out += [
                _Line("result_scheduled_samples_per_sec", s.scheduled_samples_per_sec, t),
                _Line("result_completed_samples_per_sec", s.completed_samples_per_sec, t),
            ]
        case Scenario.OFFLINE:
            out.append(_Line("result_samples_per_second", s.samples_per_second, t))
    lat = s.sample_latency
    out += [
        _Line("result_min_latency_ns", lat.min_ns if lat else 0, t),
        _Line("result_max_latency_ns", lat.max_ns if lat else 0, t),
        _Line("result_mean_latency_ns", lat.mean_ns if lat else 0, t),
    ]
    out += [
        _Line(f"result_{_fixed(p * 100)}_percentile_latency_ns", lat.at(p) if lat else 0, t)
        for p in REPORTED_PERCENTILES
    ]
    return out


def _detail(
    settings: EffectiveSettings,
    info: RunInfo,
    performance: RunResult | None,
    summary: PerformanceSummary | None,
    accuracy: RunResult | None,
) -> list[_Line]:
    lines = [
        _Line("loadgen_version", f"{info.version} (LoadGen-compatible; not the official MLPerf LoadGen)"),
        _Line("edgeperf_notice", NOT_OFFICIAL_NOTICE),
        _Line("test_datetime", info.test_datetime.strftime("%Y-%m-%dT%H:%M:%SZ")),
        _Line("sut_name", info.sut_name),
        _Line("get_sut_name_duration_ns", info.get_sut_name_duration_ns),
        _Line("qsl_name", info.qsl_name),
        _Line("qsl_reported_total_count", info.qsl_total_count),
        _Line("qsl_reported_performance_count", info.qsl_performance_count),
    ]
    for w in settings.warnings:
        if w.startswith("Test05"):
            lines.append(_Line("warning_generic_message", w, is_warning=True))
        else:
            lines.append(_Line("error_invalid_test_settings", w, is_error=True))
    lines += _settings_lines(settings)
    lines += [_Line("generic_message", m) for m in info.messages]
    if accuracy is not None:
        lines.append(_Line("generic_message", "Starting accuracy mode"))
        for ls in info.accuracy_sets:
            lines += _set_lines(ls)
        lines += _run_lines(accuracy)
        lines += _power_lines(info, accuracy)
    if performance is not None:
        lines.append(_Line("generic_message", "Starting performance mode"))
        if info.performance_set is not None:
            lines += _set_lines(info.performance_set)
        lines += _run_lines(performance)
        lines += _power_lines(info, performance)
        if summary is not None:
            lines += _result_lines(summary, performance.end_ns)
            lines.append(_Line("edgeperf_samples_failed", summary.samples_failed, performance.end_ns))
    if settings.rules is Rules.CURRENT:
        errors = sum(1 for ln in lines if ln.is_error)
        t_end = (
            performance.end_ns if performance is not None else accuracy.end_ns if accuracy is not None else 0
        )
        lines.append(_Line("num_errors", errors, t_end))
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
    return [_render(ln, pid, tid) for ln in _detail(settings, info, performance, summary, accuracy)]


def _counts(lines: Sequence[_Line]) -> tuple[int, int]:
    return sum(1 for ln in lines if ln.is_warning), sum(1 for ln in lines if ln.is_error)


# --- summary --------------------------------------------------------------------------------------


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
    out += [f"{_fixed(p * 100)} percentile latency (ns)   : {v}" for p, v in lat.percentiles_ns]
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
                out.append(f"Scheduled samples per second : {_fixed(s.scheduled_samples_per_sec)}")
            else:
                out.append(f"Completed samples per second    : {_fixed(s.completed_samples_per_sec)}")
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
                f"QPS w/ loadgen overhead         : {_fixed(s.qps_with_loadgen_overhead)}",
                f"QPS w/o loadgen overhead        : {_fixed(s.qps_without_loadgen_overhead)}",
                "",
            ]
        case Scenario.SERVER:
            if s.rules is Rules.V2_1:
                out += [f"Completed samples per second    : {_fixed(s.completed_samples_per_sec)}", ""]
            else:
                out.append(f"Scheduled samples per second : {_fixed(s.scheduled_samples_per_sec)}")
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
    text = "".join(line + "\n" for line in lines)
    if warnings == 0:
        text += "\nNo warnings encountered during test.\n"
    elif warnings == 1:
        text += "\n1 warning encountered. See detailed log.\n"
    else:
        text += f"\n{warnings} warnings encountered. See detailed log.\n"
    if errors == 0:
        text += "\nNo errors encountered during test.\n"
    elif errors == 1:
        text += "\n1 ERROR encountered. See detailed log.\n"
    else:
        text += f"\n{errors} ERRORS encountered. See detailed log.\n"
    return text + "\n" + NOT_OFFICIAL_NOTICE + "\n"


# --- accuracy log ---------------------------------------------------------------------------------


def accuracy_log_lines(entries: Iterable[AccuracyEntry]) -> Iterator[str]:
    """``mlperf_log_accuracy.json`` in chunks: ``[``, one entry per line, uppercase hex, ``\\n]\\n``."""
    yield "["
    sep = "\n"
    for e in entries:
        yield f'{sep}{{ "seq_id" : {e.seq_id}, "qsl_idx" : {e.qsl_idx}, "data" : "{e.data.hex().upper()}" }}'
        sep = ",\n"
    yield "\n]\n"


# --- result.json ----------------------------------------------------------------------------------


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
                for (st, msg), n in list(run.errors_by_message().items())[:_MAX_ERROR_LINES]
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
        "percentiles": {_fixed(p * 100): v for p, v in stats.percentiles_ns},
    }


def _stats(stats: object) -> dict[str, object]:
    value = _jsonable(stats)
    return value if isinstance(value, dict) else {"count": 0}


def write_logs(
    outdir: Path,
    settings: EffectiveSettings,
    info: RunInfo,
    *,
    performance: RunResult | None = None,
    summary: PerformanceSummary | None = None,
    accuracy: RunResult | None = None,
    prefix: str = "mlperf_log_",
) -> LogFiles:
    """Writes the summary, detail and accuracy logs and result.json under ``outdir``, each atomically.

    Args:
        outdir: created if missing.
        settings: the run's effective settings (``settings.mode`` says which parts exist).
        info: header values and the loadable sets.
        performance: the performance-mode run (PerformanceOnly, SubmissionRun).
        summary: ``summarize(settings, performance)``; required with ``performance``.
        accuracy: the accuracy-mode run (AccuracyOnly, SubmissionRun).
        prefix: file-name prefix, LoadGen's default.
    """
    if performance is not None and summary is None:
        raise ValueError("a performance run needs its summary")
    if settings.mode is TestMode.ACCURACY_ONLY and performance is not None:
        raise ValueError("an AccuracyOnly run has no performance part")
    files = LogFiles(
        summary=outdir / f"{prefix}summary.txt",
        detail=outdir / f"{prefix}detail.txt",
        accuracy=outdir / f"{prefix}accuracy.json",
        result_json=outdir / "result.json",
    )
    lines = _detail(settings, info, performance, summary, accuracy)
    warnings, errors = _counts(lines)
    pid, tid = os.getpid(), threading.get_native_id()
    atomic_write(files.detail, (_render(ln, pid, tid) for ln in lines))
    atomic_write(files.summary, [summary_text(settings, info, summary, warnings=warnings, errors=errors)])
    entries: list[AccuracyEntry] = []
    for run in (accuracy, performance):
        if run is not None:
            entries.extend(run.accuracy)
    entries.sort(key=lambda e: e.seq_id)
    atomic_write(files.accuracy, accuracy_log_lines(entries))
    doc = result_json(settings, info, performance=performance, summary=summary, accuracy=accuracy)
    doc["log_counts"] = {"warnings": warnings, "errors": errors}
    atomic_write(files.result_json, [json.dumps(doc, indent=2, allow_nan=False) + "\n"])
    return files
