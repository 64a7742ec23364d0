"""The end of a run: logs, accuracy.txt and result.json written, validity decided, the outcome returned.

`finish_run` takes what the mode passes produced (`ModeRuns`) and turns it into files under `out_dir`
and a `RunOutcome`; the modes themselves (`edgeperf.client.modes`) write nothing. Each file is written
once: result.json last, from the document built in memory with the validity and accuracy it records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from edgeperf.client.issue.pass_result import ModeRuns
from edgeperf.client.plan.settings import TestMode
from edgeperf.client.report.console_text import render_outcome
from edgeperf.client.report.device_notes import DeviceNotes
from edgeperf.client.report.log_files import write_result_json, write_run_logs
from edgeperf.client.report.log_format import RunInfo, atomic_write
from edgeperf.client.report.metrics import PerformanceSummary, summarize
from edgeperf.client.report.run_outcome import RunOutcome

if TYPE_CHECKING:
    from edgeperf.benchmarks.base import AccuracyReport
    from edgeperf.client.issue.network import NetworkReport

__all__ = ["finish_run", "write_accuracy_txt"]


def _reasons(runs: ModeRuns, summary: PerformanceSummary | None) -> list[str]:
    reasons: list[str] = []
    for run in (runs.accuracy, runs.performance):
        if run is not None and run.aborted:  # NOTE: the cause first; the recommendations follow from it
            pass_name = "accuracy" if run is runs.accuracy else "performance"
            reasons.append(
                f"The {pass_name} pass ended early: {run.end.message.removeprefix('Ending early: ')}"
            )
    if summary is not None and not summary.valid:
        reasons.extend(summary.recommendations)
        if not summary.early_stopping_met and summary.early_stopping is not None:
            reasons.append("Early stopping not met: " + summary.early_stopping.detail_text.strip())
    accuracy = runs.accuracy
    if accuracy is not None and accuracy.result.error_count:
        reasons.append(f"{accuracy.result.error_count} accuracy-mode samples failed.")
    stopped_s = runs.interrupted_after_s
    if stopped_s is not None and (summary is None or summary.interrupted_after_s is None):
        reasons.append(f"Run interrupted by the user after {stopped_s:.1f} s (accuracy pass).")
    mode = runs.settings.mode
    if accuracy is not None and accuracy.aborted and mode is TestMode.SUBMISSION_RUN:
        reasons.append("The accuracy pass ended early, so the performance pass was not run.")
    if mode is TestMode.FIND_PEAK_PERFORMANCE and runs.peak_qps is None:
        reasons.append("No target QPS passed.")
    check = runs.performance.client if runs.performance is not None else None
    if reasons and check is not None and check.bottleneck:
        # NOTE: first: a client that fell behind explains the rest (as perf_analyzer's overhead warning).
        reasons.insert(0, check.reason())
    return reasons


def finish_run(
    runs: ModeRuns,
    out_dir: Path,
    *,
    sut_name: str,
    qsl_name: str,
    qsl_total_count: int,
    qsl_performance_count: int,
    test_datetime: datetime,
    log_start_ns: int | None = None,
    header_ns: int = 0,
    messages: tuple[str, ...],
    score: Callable[[Path], AccuracyReport] | None,
    power_note: str | None = None,
    network: NetworkReport | None = None,
) -> RunOutcome:
    """Write the logs (and accuracy.txt when `score` is given), decide validity, return the outcome."""
    settings = runs.settings
    accuracy, performance = runs.accuracy, runs.performance
    interrupted_after_s = runs.interrupted_after_s
    interrupted = interrupted_after_s is not None
    summary: PerformanceSummary | None = None
    check = performance.client if performance is not None else None
    if performance is not None:
        # NOTE: a stopped run is never VALID, even if what it measured would pass.
        summary = summarize(
            settings, performance.result, interrupted_after_s=interrupted_after_s, aborted=performance.aborted
        )
    device = DeviceNotes.of(settings, performance, summary, power_note=power_note, network=network)
    notes = list(messages)
    for qps, passed in runs.probes:
        # NOTE: every digit (repr): LoadGen's peak is a sum of halvings, e.g. 437.6953125.
        notes.append(f"FindPeakPerformance: target_qps {qps!r} {'passed' if passed else 'failed'}")
    if runs.peak_qps is not None:
        notes.append(f"FindPeakPerformance: highest passing target_qps {runs.peak_qps!r}")
    if interrupted_after_s is not None:
        notes.append(f"Run interrupted by the user after {interrupted_after_s:.1f} s; the result is INVALID.")
    info = RunInfo(
        sut_name=sut_name,
        test_datetime=test_datetime,
        log_start_ns=log_start_ns,
        header_ns=header_ns,
        qsl_name=qsl_name,
        qsl_total_count=qsl_total_count,
        qsl_performance_count=qsl_performance_count,
        performance_set=performance.sets[0] if performance else None,
        probe_sets=runs.probe_sets,
        accuracy_sets=accuracy.sets if accuracy else (),
        messages=tuple(notes),
        extra_detail=(*(check.detail_items() if check is not None else ()), *device.detail_items()),
        extra_summary=tuple(device.summary_lines()),
    )
    files, doc = write_run_logs(
        out_dir,
        settings,
        info,
        performance=performance.result if performance else None,
        summary=summary,
        accuracy=accuracy.result if accuracy else None,
    )
    written = list(files.all)
    written += device.write_sample_log(out_dir, settings)
    report: AccuracyReport | None = None
    accuracy_path = out_dir / "accuracy.txt"
    if score is not None and accuracy is not None and not accuracy.interrupted:
        report = score(files.accuracy)
        write_accuracy_txt(accuracy_path, report)
        written.append(accuracy_path)
    else:
        # NOTE: an accuracy.txt left from an earlier run in the same folder would describe other logs.
        accuracy_path.unlink(missing_ok=True)
    reasons = _reasons(runs, summary)
    validity = "INVALID" if reasons else "VALID"
    doc["run"] = {
        "validity": validity,
        "invalid_reasons": reasons,
        "interrupted": interrupted,
        "interrupted_after_s": interrupted_after_s,
        "peak_qps": runs.peak_qps,
        "end_of_run": {
            name: {"reason": r.end.reason.value, "message": r.end.message}
            for name, r in (("accuracy", accuracy), ("performance", performance))
            if r is not None
        },
        "client": None if check is None else check.as_json(),
        "accuracy": None
        if report is None
        else {
            "metric": report.metric,
            "value": report.value,
            "target": report.target,
            "passed": report.passed,
        },
    }
    doc.update(device.as_json(summary))
    write_result_json(files.result_json, doc)
    outcome = RunOutcome(
        validity=validity,
        invalid_reasons=tuple(reasons),
        out_dir=out_dir,
        files=tuple(written),
        summary_text="",
        result_json=doc,
        accuracy=report,
        peak_qps=runs.peak_qps,
        interrupted=interrupted,
        client=check,
        device_lines=tuple(device.console_lines()),
    )
    text = render_outcome(settings, summary, outcome, accuracy.result if accuracy else None)
    return dataclasses.replace(outcome, summary_text=text)


def write_accuracy_txt(path: Path, report: AccuracyReport) -> None:
    """`accuracy.txt` beside the logs, atomically, ending with a newline."""
    atomic_write(path, [report.text if report.text.endswith("\n") else report.text + "\n"])
