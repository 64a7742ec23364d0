"""The run's log files under one folder, each written atomically (MLPERF_LOADGEN.md §11-§12).

`write_run_logs` writes ``mlperf_log_summary.txt`` (`edgeperf.client.report.summary_txt`), ``mlperf_log_detail.txt``
(`edgeperf.client.report.detail_txt`), ``mlperf_log_accuracy.json`` (LoadGen's layout, one entry per line,
uppercase hex; here), and `write_result_json` ``result.json`` (`edgeperf.client.report.result_json`), each once. Each file goes to a temporary
file in the same directory and is moved into place with ``os.replace``, so an interrupted run leaves
each file complete or absent.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from edgeperf.client.issue.raw_results import AccuracyEntry, RunResult
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.settings import TestMode
from edgeperf.client.report.detail_txt import detail_lines, detail_records, log_counts, render_record
from edgeperf.client.report.latency_dump import write_latencies
from edgeperf.client.report.log_format import (
    NOT_OFFICIAL_NOTICE,
    LoadableSetLog,
    RunInfo,
    atomic_write,
    cpp_double,
)
from edgeperf.client.report.metrics import PerformanceSummary
from edgeperf.client.report.result_json import result_json
from edgeperf.client.report.summary_txt import summary_text

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
    "write_result_json",
    "write_run_logs",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class LogFiles:
    summary: Path
    detail: Path
    accuracy: Path
    result_json: Path
    latencies: Path | None = None
    """`latencies.npz`, written for runs with a performance part."""

    @property
    def all(self) -> tuple[Path, ...]:
        extra = () if self.latencies is None else (self.latencies,)
        return (self.summary, self.detail, self.accuracy, self.result_json, *extra)


def accuracy_log_lines(entries: Iterable[AccuracyEntry]) -> Iterator[str]:
    """``mlperf_log_accuracy.json`` in chunks: ``[``, one entry per line, uppercase hex, ``\\n]\\n``."""
    yield "["
    sep = "\n"
    for e in entries:
        yield f'{sep}{{ "seq_id" : {e.seq_id}, "qsl_idx" : {e.qsl_idx}, "data" : "{e.data.hex().upper()}" }}'
        sep = ",\n"
    yield "\n]\n"


def write_result_json(path: Path, doc: Mapping[str, object]) -> None:
    """``result.json``, atomically: indented JSON, no NaN or infinity."""
    atomic_write(path, [json.dumps(doc, indent=2, allow_nan=False) + "\n"])


def write_run_logs(
    outdir: Path,
    settings: EffectiveSettings,
    info: RunInfo,
    *,
    performance: RunResult | None = None,
    summary: PerformanceSummary | None = None,
    accuracy: RunResult | None = None,
    prefix: str = "mlperf_log_",
) -> tuple[LogFiles, dict[str, object]]:
    """Writes the summary, detail and accuracy logs (and latencies.npz) under ``outdir``, each atomically.

    Returns the files and the result.json document, built in memory and not yet written: its path is
    in the files, and `write_result_json` writes it.

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
    lines = detail_records(settings, info, performance, summary, accuracy)
    warnings, errors = log_counts(lines)
    pid, tid = os.getpid(), threading.get_native_id()
    atomic_write(files.detail, (render_record(ln, pid, tid) for ln in lines))
    atomic_write(files.summary, [summary_text(settings, info, summary, warnings=warnings, errors=errors)])
    entries: list[AccuracyEntry] = []
    for run in (accuracy, performance):
        if run is not None:
            entries.extend(run.accuracy)
    entries.sort(key=lambda e: e.seq_id)
    atomic_write(files.accuracy, accuracy_log_lines(entries))
    doc = result_json(settings, info, performance=performance, summary=summary, accuracy=accuracy)
    doc["log_counts"] = {"warnings": warnings, "errors": errors}
    if performance is not None:
        files = replace(files, latencies=write_latencies(outdir, performance))
    return files, doc
