"""The end of a run: logs, accuracy.txt and result.json written, validity decided, the outcome returned.

`finish_run` takes what the mode passes produced (`ModeRuns`) and turns it into files under `out_dir`
and a `RunOutcome`; the modes themselves (`edgeperf.client.modes`) write nothing.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from edgeperf.client.issue.loop import EndOfRun, EndReason
from edgeperf.client.issue.raw_results import RunResult
from edgeperf.client.issue.selfcheck import ClientCheck
from edgeperf.client.plan.settings import EffectiveSettings, TestMode
from edgeperf.client.report.console_text import render_outcome
from edgeperf.client.report.device_notes import DeviceNotes
from edgeperf.client.report.log_files import write_logs
from edgeperf.client.report.log_format import LoadableSetLog, RunInfo, atomic_write
from edgeperf.client.report.metrics import PerformanceSummary, summarize

if TYPE_CHECKING:
    from edgeperf.benchmarks.base import AccuracyReport
    from edgeperf.client.issue.network import NetworkReport
    from edgeperf.client.issue.power import PowerMeasurement

__all__ = ["ModeResult", "ModeRuns", "RunOutcome", "finish_run"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutcome:
    """What a run produced; the logs under `out_dir` say the same in MLPerf's format."""

    validity: str
    """`VALID` or `INVALID` (performance part; accuracy-only runs are VALID when every sample succeeded)."""
    invalid_reasons: tuple[str, ...]
    out_dir: Path
    files: tuple[Path, ...]
    """Every file written (summary, detail, accuracy log, result.json, accuracy.txt)."""
    summary_text: str
    """The readable summary the CLI prints."""
    result_json: dict[str, object]
    """The content of result.json."""
    accuracy: AccuracyReport | None = None
    peak_qps: float | None = None
    """FindPeakPerformance only: the highest target QPS that passed."""
    interrupted: bool = False
    client: ClientCheck | None = None
    """The performance pass's client self-check."""
    device_lines: tuple[str, ...] = ()
    """Power and network, as the console shows them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeResult:
    """One accuracy-mode or performance-mode pass."""

    result: RunResult
    sets: tuple[LoadableSetLog, ...]
    end: EndOfRun
    interrupted_after_s: float | None = None
    """The user stopped this pass this long after its start; None if it was not stopped."""
    client: ClientCheck | None = None
    """What the client itself cost during the pass and whether it kept up (`edgeperf.client.issue.selfcheck`)."""
    power: PowerMeasurement | None = None
    """The server's power over this (performance) pass."""
    power_note: str | None = None
    """Why a pass that was to be measured has no measurement."""

    @property
    def interrupted(self) -> bool:
        return self.end.reason is EndReason.INTERRUPTED

    @property
    def aborted(self) -> bool:
        """Ended by the SUT failing (errors in a row, a stall), not by its schedule or the user."""
        return self.end.reason in (EndReason.TOO_MANY_ERRORS, EndReason.STALLED)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeRuns:
    """Everything the mode passes of one run produced."""

    settings: EffectiveSettings
    """The effective settings of the reported performance pass (the chosen probe in FindPeakPerformance)."""
    accuracy: ModeResult | None = None
    performance: ModeResult | None = None
    peak_qps: float | None = None
    probes: tuple[tuple[float, bool], ...] = ()
    """FindPeakPerformance: (target QPS, passed) of each probe, in order."""
    probe_sets: tuple[tuple[float, LoadableSetLog], ...] = ()
    """FindPeakPerformance: (target QPS, loaded set and generated queries) of each probe, in order."""

    @property
    def interrupted_after_s(self) -> float | None:
        for run in (self.performance, self.accuracy):
            if run is not None and run.interrupted_after_s is not None:
                return run.interrupted_after_s
        return None


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
    files = write_logs(
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
    doc = json.loads(files.result_json.read_text(encoding="utf-8"))
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
    atomic_write(files.result_json, [json.dumps(doc, indent=2, allow_nan=False) + "\n"])
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
