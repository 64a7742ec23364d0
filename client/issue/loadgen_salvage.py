"""Complete, parseable log files from an official LoadGen run that was stopped before it ended.

The official LoadGen has no way to end a test early: once `StartTest` runs, it issues its whole
schedule (a Server run keeps its timetable for `min_duration`). When the user stops such a run,
edgeperf abandons LoadGen's thread and keeps what it had logged so far: the detail log up to its last
complete line, the accuracy log's complete entries closed into a JSON array, and a summary that says
the run was interrupted and is INVALID (LoadGen writes its summary only at the end). Each file is
replaced atomically; LoadGen keeps writing into the unlinked old files until the process exits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeperf.client.files import atomic_write

__all__ = ["INTERRUPTED_KEY", "salvage_logs"]

INTERRUPTED_KEY = "edgeperf_interrupted"
"""Detail-log key of the entry edgeperf appends to an interrupted official run (not a LoadGen key)."""
_PREFIX = ":::MLLOG "


def _complete_detail_lines(text: str) -> tuple[list[str], float]:
    """The lines that parse as MLLOG entries (a line cut by the interruption does not), and the last time_ms."""
    kept: list[str] = []
    last_ms = 0.0
    for line in text.split("\n")[:-1]:  # NOTE: the last piece has no newline yet: possibly cut mid-write
        if not line.startswith(_PREFIX):
            continue
        try:
            entry = json.loads(line[len(_PREFIX) :])
        except json.JSONDecodeError:
            continue
        kept.append(line)
        if isinstance(entry, dict) and isinstance(entry.get("time_ms"), int | float):
            last_ms = float(entry["time_ms"])
    return kept, last_ms


def _complete_accuracy_entries(text: str) -> list[str]:
    """LoadGen writes one `{ ... }` entry per line, `,` after all but the last: keep those that parse."""
    kept: list[str] = []
    for line in text.split("\n")[:-1]:
        body = line.strip().removesuffix(",")
        if not body.startswith("{"):
            continue
        try:
            json.loads(body)
        except json.JSONDecodeError:
            continue
        kept.append(body)
    return kept


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def salvage_logs(out_dir: Path, *, scenario: str, mode: str, reason: str, completed_samples: int) -> None:
    """Rewrite LoadGen's files under `out_dir` as complete files that say the run was interrupted.

    Args:
        scenario, mode: LoadGen's names (`SingleStream`, `PerformanceOnly`) for the summary header.
        reason: one line saying what stopped the run.
        completed_samples: samples the SUT answered before the stop (for the summary).
    """
    detail_path = out_dir / "mlperf_log_detail.txt"
    lines, last_ms = _complete_detail_lines(_read(detail_path))
    entry: dict[str, Any] = {
        "key": INTERRUPTED_KEY,
        "value": reason,
        "time_ms": last_ms,
        "namespace": "edgeperf",
        "event_type": "POINT_IN_TIME",
        "metadata": {"is_error": True, "is_warning": False},
    }
    lines.append(_PREFIX + json.dumps(entry))
    atomic_write(detail_path, ["\n".join(lines) + "\n"])

    accuracy_path = out_dir / "mlperf_log_accuracy.json"
    entries = _complete_accuracy_entries(_read(accuracy_path))
    atomic_write(accuracy_path, ["[\n" + ",\n".join(entries) + ("\n" if entries else "") + "]\n"])

    summary = [
        "================================================",
        "MLPerf Results Summary",
        "================================================",
        f"Scenario : {scenario}",
        f"Mode     : {mode}",
        "Result is : INVALID",
        "",
        "================================================",
        "Additional Stats",
        "================================================",
        f"{reason}",
        "edgeperf wrote this summary in place of LoadGen's, which is written only at the end and would "
        "count the samples the stop answered as failed.",
        f"Samples answered by the SUT before the stop: {completed_samples}.",
        "",
    ]
    atomic_write(out_dir / "mlperf_log_summary.txt", ["\n".join(summary)])
