"""The results page: the MLPerf-results-page table of a suite's results folders, as Markdown and CSV.

A row per system: Submitter, System, Processor and count, Accelerator and count, Software (from
`systems/<system>.json`, MLPerf's field names), then per benchmark and scenario the MLPerf metric read
back from the run's summary (SingleStream: early-stopping 90th percentile latency in ms; MultiStream:
early-stopping 99th percentile in ms; Server: scheduled (v2.1) or completed samples per second; Offline:
samples per second) and, where power was measured, System power (W) for Offline/Server and Energy per
stream (mJ) for SingleStream/MultiStream, from the run's result.json.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeperf.benchmarks import registry

__all__ = [
    "PAGE_COLUMNS",
    "SCENARIO_ORDER",
    "CellResult",
    "collect_results",
    "page_grid",
    "parse_summary",
    "render_csv",
    "render_markdown",
]

SCENARIO_ORDER: tuple[str, ...] = ("SingleStream", "MultiStream", "Server", "Offline")
PAGE_COLUMNS: tuple[str, ...] = ("Submitter", "System", "Processor", "#", "Accelerator", "#", "Software")
_PAGE_FIELDS: tuple[str, ...] = (
    "submitter",
    "system_name",
    "host_processor_model_name",
    "host_processors_per_node",
    "accelerator_model_name",
    "accelerators_per_node",
    "framework",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CellResult:
    """One system x benchmark x scenario, as read back from its results folder."""

    system: str
    benchmark: str
    scenario: str
    metric: str | None = None
    """`latency_ms` or `samples_per_s`."""
    value: float | None = None
    valid: bool | None = None
    accuracy_verdict: str | None = None
    """`PASS`, `FAIL`, or None when no accuracy.txt with a gate line exists."""
    accuracy_line: str | None = None
    accuracy_present: bool = False
    """accuracy.txt exists (an official-LoadGen folder has one without edgeperf's gate line)."""
    summary_unreadable: bool = False
    """A performance summary exists but is not in LoadGen's layout (no `Result is` line)."""
    power_w: float | None = None
    """Average system power over the timed pass, where the run measured it (result.json `power`)."""
    energy_mj_per_query: float | None = None
    """SingleStream/MultiStream: energy per query (MLPerf's "energy per stream") in mJ."""
    performance_dir: Path | None = None
    """The performance run's folder (`performance/run_1`), where it exists."""


_NUMBER = r"([0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"
_SUMMARY_PATTERNS: dict[str, tuple[str, ...]] = {
    # Early-stopping estimate first (the official metric since v2.0), then the plain percentile.
    "SingleStream": (
        rf"Early stopping 90(?:\.0)?th percentile estimate: {_NUMBER}",
        rf"^90(?:\.0)?th percentile latency \(ns\) : {_NUMBER}",
    ),
    "MultiStream": (
        rf"Early stopping 99(?:\.0)?th percentile estimate: {_NUMBER}",
        rf"^99(?:\.0)?th percentile latency \(ns\) : {_NUMBER}",
    ),
    "Server": (
        rf"^Scheduled samples per second : {_NUMBER}",
        rf"^Completed samples per second\s*: {_NUMBER}",
    ),
    "Offline": (rf"^Samples per second: {_NUMBER}",),
}


def parse_summary(text: str) -> tuple[str, str, float | None, bool | None]:
    """`(scenario, metric, value, valid)` from an `mlperf_log_summary.txt` (LoadGen's layout).

    Latencies come back in milliseconds, throughputs in samples per second; missing parts are None.
    """
    scenario_match = re.search(r"^Scenario\s*:\s*(\w+)", text, re.MULTILINE)
    scenario = scenario_match.group(1) if scenario_match else ""
    validity = re.search(r"^Result is\s*:\s*(VALID|INVALID)", text, re.MULTILINE)
    valid = None if validity is None else validity.group(1) == "VALID"
    latency = scenario in ("SingleStream", "MultiStream")
    metric = "latency_ms" if latency else "samples_per_s"
    for pattern in _SUMMARY_PATTERNS.get(scenario, ()):
        found = re.search(pattern, text, re.MULTILINE)
        if found:
            value = float(found.group(1))
            return scenario, metric, value / 1e6 if latency else value, valid
    return scenario, metric, None, valid


def _accuracy_gate(path: Path) -> tuple[str | None, str | None]:
    if not path.is_file():
        return None, None
    for line in reversed(path.read_text(encoding="utf-8", errors="replace").splitlines()):
        words = line.split()
        if words and words[0].rstrip(":") in ("PASS", "FAIL"):
            return words[0].rstrip(":"), line.strip()
    return None, None


def collect_results(folder: Path) -> list[CellResult]:
    """Every `<system>/<benchmark>/<scenario>/` found under `folder` (an `--out` folder, or one system's)."""
    cells: dict[tuple[str, str, str], CellResult] = {}
    roots = [folder] if any(folder.glob("*/*/performance")) or any(folder.glob("*/*/accuracy")) else []
    for scenario_dir in sorted({*folder.glob("*/*/*/performance"), *folder.glob("*/*/*/accuracy")}):
        roots.append(scenario_dir.parent.parent.parent)
    for system_dir in dict.fromkeys(roots):
        for scenario_dir in sorted(p for p in system_dir.glob("*/*") if p.is_dir()):
            perf = scenario_dir / "performance" / "run_1" / "mlperf_log_summary.txt"
            acc = scenario_dir / "accuracy" / "accuracy.txt"
            if not perf.is_file() and not acc.is_file():
                continue
            metric, value, valid, unreadable = None, None, None, False
            if perf.is_file():
                _, metric, value, valid = parse_summary(perf.read_text(encoding="utf-8", errors="replace"))
                unreadable = valid is None
            verdict, line = _accuracy_gate(acc)
            power_w, energy_mj = _power(perf.with_name("result.json"))
            key = (system_dir.name, scenario_dir.parent.name, scenario_dir.name)
            cells[key] = CellResult(
                system=key[0],
                benchmark=key[1],
                scenario=key[2],
                metric=metric,
                value=value,
                valid=valid,
                accuracy_verdict=verdict,
                accuracy_line=line,
                accuracy_present=acc.is_file(),
                summary_unreadable=unreadable,
                power_w=power_w,
                energy_mj_per_query=energy_mj,
                performance_dir=perf.parent if perf.is_file() else None,
            )
    return list(cells.values())


def _power(result_json: Path) -> tuple[float | None, float | None]:
    try:
        doc = json.loads(result_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None
    power = doc.get("power") if isinstance(doc, dict) else None
    if not isinstance(power, dict) or not power.get("measured"):
        return None, None
    watts, mj = power.get("average_w"), power.get("mj_per_query")
    return (
        float(watts) if isinstance(watts, int | float) else None,
        float(mj) if isinstance(mj, int | float) else None,
    )


def _columns(cells: Sequence[CellResult]) -> list[tuple[str, str]]:
    order = {name: i for i, name in enumerate(registry.MLPERF_BENCHMARKS)}
    keys = {(c.benchmark, c.scenario) for c in cells}
    return sorted(
        keys,
        key=lambda k: (
            order.get(k[0], len(order)),
            k[0],
            SCENARIO_ORDER.index(k[1]) if k[1] in SCENARIO_ORDER else 9,
        ),
    )


def _cell_text(cell: CellResult | None) -> str:
    if cell is None:
        return ""
    parts = ["-" if cell.value is None else f"{cell.value:.4g}"]
    if cell.summary_unreadable:
        parts.append("(unreadable summary)")
    if cell.valid is False:
        parts.append("(INVALID)")
    if cell.accuracy_verdict == "FAIL":
        parts.append("(accuracy FAIL)")
    elif cell.accuracy_verdict is None:
        parts.append("(accuracy not gated)" if cell.accuracy_present else "(no accuracy)")
    return " ".join(parts)


def _header(benchmark: str, scenario: str) -> str:
    unit = "ms" if scenario in ("SingleStream", "MultiStream") else "samples/s"
    return f"{benchmark} {scenario} ({unit})"


def _per_stream(scenario: str) -> bool:
    return scenario in ("SingleStream", "MultiStream")


def _power_header(benchmark: str, scenario: str) -> str:
    what = "Energy per stream (mJ)" if _per_stream(scenario) else "System power (W)"
    return f"{benchmark} {scenario} {what}"


def _power_value(cell: CellResult | None) -> float | None:
    if cell is None:
        return None
    return cell.energy_mj_per_query if _per_stream(cell.scenario) else cell.power_w


def _measured(cells: Sequence[CellResult]) -> set[tuple[str, str]]:
    """The benchmark x scenario columns with a power value for at least one system."""
    return {(c.benchmark, c.scenario) for c in cells if _power_value(c) is not None}


def system_cells(doc: Mapping[str, Any] | None, system: str) -> list[str]:
    """Submitter, System, Processor, #, Accelerator, #, Software of one row ("" where unknown)."""
    doc = doc or {}
    values = [doc.get(name) for name in _PAGE_FIELDS]
    values[1] = values[1] or system
    return ["" if v is None else str(v) for v in values]


def page_grid(
    cells: Sequence[CellResult], systems: Mapping[str, Mapping[str, Any]]
) -> tuple[list[str], list[list[str]]]:
    columns = _columns(cells)
    measured = _measured(cells)
    by_key = {(c.system, c.benchmark, c.scenario): c for c in cells}
    header = list(PAGE_COLUMNS)
    for b, s in columns:
        header.append(_header(b, s))
        if (b, s) in measured:
            header.append(_power_header(b, s))
    rows = []
    for system in dict.fromkeys(c.system for c in cells):
        row = system_cells(systems.get(system), system)
        for b, s in columns:
            cell = by_key.get((system, b, s))
            row.append(_cell_text(cell))
            if (b, s) in measured:
                value = _power_value(cell)
                row.append("" if value is None else f"{value:.4g}")
        rows.append(row)
    return header, rows


def render_markdown(
    cells: Sequence[CellResult], systems: Mapping[str, Mapping[str, Any]] | None = None
) -> str:
    """The MLPerf-results-page-shaped table: a row per system, a column per benchmark and scenario."""
    header, rows = page_grid(cells, systems or {})
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    note = (
        "\nLatency: early-stopping estimate (90th percentile SingleStream, 99th MultiStream). "
        "Results of edgeperf's own load generator are not official MLPerf results.\n"
    )
    return "\n".join(lines) + "\n" + note


def _validity(cell: CellResult) -> str:
    if cell.summary_unreadable:
        return "UNREADABLE"
    if cell.valid is None:
        return ""
    return "VALID" if cell.valid else "INVALID"


def render_csv(cells: Sequence[CellResult], systems: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The same grid for machines: the system's columns, then per benchmark and scenario the raw value,
    the validity, the accuracy gate and, where measured, the power value."""
    systems = systems or {}
    columns = _columns(cells)
    measured = _measured(cells)
    by_key = {(c.system, c.benchmark, c.scenario): c for c in cells}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["system", *PAGE_COLUMNS]
    for benchmark, scenario in columns:
        header += [
            _header(benchmark, scenario),
            f"{benchmark} {scenario} validity",
            f"{benchmark} {scenario} accuracy",
        ]
        if (benchmark, scenario) in measured:
            header.append(_power_header(benchmark, scenario))
    writer.writerow(header)
    for system in dict.fromkeys(c.system for c in cells):
        row = [system, *system_cells(systems.get(system), system)]
        for benchmark, scenario in columns:
            cell = by_key.get((system, benchmark, scenario))
            if cell is None:
                row += ["", "", ""]
            else:
                row += [
                    "" if cell.value is None else repr(cell.value),
                    _validity(cell),
                    cell.accuracy_verdict or "",
                ]
            if (benchmark, scenario) in measured:
                value = _power_value(cell)
                row.append("" if value is None else repr(value))
        writer.writerow(row)
    return buffer.getvalue()
