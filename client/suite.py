"""`edgeperf suite`: every benchmark and required scenario, accuracy and performance, in one go.

For each system (a server address), benchmark and scenario the suite makes two runs through
`run.run_benchmark` and writes them in the MLPerf submission layout:

    <out>/<system>/<benchmark>/<scenario>/performance/run_1/   mlperf_log_summary.txt, _detail.txt, ...
    <out>/<system>/<benchmark>/<scenario>/accuracy/            mlperf_log_accuracy.json, accuracy.txt, ...

then a results table, `<out>/results.md` and `<out>/results.csv`: a row per system, a column per
benchmark and scenario, holding the scenario's MLPerf metric read back from the summaries (SingleStream:
early-stopping 90th percentile latency in ms; MultiStream: early-stopping 99th percentile in ms; Server:
scheduled (v2.1) or completed samples per second; Offline: samples per second). `--compare DIR...` builds
the same table from existing results folders, from edgeperf or from the official LoadGen, for several
devices side by side.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgeperf.benchmarks import registry
from edgeperf.client.connection_args import (
    Connection,
    redacted_command_line,
)
from edgeperf.client.errors import EdgeperfClientError
from edgeperf.client.plan.conf import preset_path
from edgeperf.client.plan.settings import Scenario, TestMode
from edgeperf.client.report.log_format import atomic_write
from edgeperf.client.report.results_table import (
    SCENARIO_ORDER,
    CellResult,
    collect_results,
    parse_summary,
    render_csv,
    render_markdown,
)
from edgeperf.client.report.submission import SubmissionSystem, describe_system, write_submission
from edgeperf.client.report.system_json import (
    describe_target,
    from_description,
    read_systems,
    write_system,
)
from edgeperf.client.run import RunOptions, RunOutcome, run_benchmark

__all__ = [
    "SCENARIO_ORDER",
    "CellResult",
    "SuiteOptions",
    "SuiteTarget",
    "collect_results",
    "parse_summary",
    "render_csv",
    "render_markdown",
    "run_suite_options",
]

Runner = Callable[[RunOptions], Awaitable[RunOutcome]]


@dataclass(frozen=True, slots=True, kw_only=True)
class SuiteTarget:
    """One system under test: a name for the results and the server's `HOST:PORT`."""

    system: str
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SuiteOptions:
    targets: tuple[SuiteTarget, ...]
    benchmarks: tuple[str, ...] = registry.MLPERF_BENCHMARKS
    scenarios: tuple[str, ...] | None = None
    """None: each benchmark's required Edge scenarios from its spec."""
    datasets: dict[str, str] | None = None
    """Benchmark -> dataset source; `*` for the default of every benchmark (default `synthetic`)."""
    models: dict[str, str] | None = None
    """Benchmark -> model name on the server (default: the benchmark name)."""
    out_dir: Path = Path("results")
    user_conf: Path | None = None
    rules: str = "v2.1"
    size: Literal["full", "small"] | None = None
    """None: each model's size as its config on the server records it (else full)."""
    batch_size: int = 1
    modes: tuple[Literal["accuracy", "performance"], ...] = ("accuracy", "performance")
    connection: Connection = field(default_factory=Connection)
    """TLS files and bearer token, the same for every server."""
    submitter: str = "edgeperf"
    """Submitter folder and field of the submission tree (`submission.write_submission`)."""

    system_overrides: dict[str, dict[str, Any]] | None = None
    """System name (or `*` for every system) -> systems/*.json fields that replace what the server says."""


def _scenarios_for(benchmark: str, options: SuiteOptions) -> tuple[str, ...]:
    if options.scenarios is not None:
        return options.scenarios
    return tuple(registry.get(benchmark).spec.edge_scenarios)


def _lookup(mapping: dict[str, str] | None, benchmark: str, default: str) -> str:
    if not mapping:
        return default
    return mapping.get(benchmark, mapping.get("*", default))


async def _run_one(
    runner: Runner, options: RunOptions, log: Callable[[str], None], failed_runs: list[str] | None
) -> bool:
    """One run; True when it finished VALID (and, for accuracy, with accuracy.txt and a PASS)."""
    try:
        outcome = await runner(options)
    except (EdgeperfClientError, OSError, ValueError, KeyError) as exc:
        log(f"  FAILED to run: {type(exc).__name__}: {exc}")
        if failed_runs is not None:
            failed_runs.append(f"{options.out_dir}: {exc}")
        return False
    ok = outcome.validity == "VALID"
    if outcome.accuracy is not None:
        # NOTE: the run wrote accuracy.txt beside its logs (`finish_run`, or the official LoadGen path).
        ok = ok and outcome.accuracy.passed
        log(f"  accuracy: {outcome.accuracy.text.strip().splitlines()[-1]}")
    elif options.mode is TestMode.ACCURACY_ONLY:
        log("  accuracy: no report (the benchmark has no metric for this dataset)")
        ok = False
    log(f"  {outcome.validity}" + ("" if ok else f" {'; '.join(outcome.invalid_reasons)}"))
    return ok


async def run_suite_options(
    options: SuiteOptions,
    *,
    runner: Runner = run_benchmark,
    log: Callable[[str], None] = print,
    failed_runs: list[str] | None = None,
) -> tuple[bool, list[CellResult]]:
    """Run every target x benchmark x scenario x mode in turn; write the layout and the tables.

    Args:
        failed_runs: receives a line for each run that could not run at all (an error, not INVALID).

    Returns:
        `(all runs valid and every accuracy gate passed, the cells of the results table)`.
    """
    all_ok = True
    for target in options.targets:
        await _describe(target, options, log)
        for benchmark in options.benchmarks:
            model = _lookup(options.models, benchmark, benchmark)
            dataset = _lookup(options.datasets, benchmark, "synthetic")
            for scenario in _scenarios_for(benchmark, options):
                base = options.out_dir / target.system / benchmark / scenario
                for mode in options.modes:
                    out_dir = base / "accuracy" if mode == "accuracy" else base / "performance" / "run_1"
                    out_dir.mkdir(parents=True, exist_ok=True)
                    log(f"{target.system} {benchmark} {scenario} {mode} -> {out_dir}")
                    run_options = RunOptions(
                        server=target.address,
                        model=model,
                        scenario=Scenario(scenario),
                        mode=TestMode.ACCURACY_ONLY if mode == "accuracy" else TestMode.PERFORMANCE_ONLY,
                        out_dir=out_dir,
                        rules=options.rules,
                        user_conf=options.user_conf,
                        benchmark=benchmark,
                        benchmark_size=options.size or "full",
                        size_from_server=options.size is None,
                        dataset=dataset,
                        batch_size=options.batch_size,
                        system_name=target.system,
                        connection=options.connection,
                    )
                    all_ok = await _run_one(runner, run_options, log, failed_runs) and all_ok
    cells = collect_results(options.out_dir)
    systems = [
        SubmissionSystem(name=t.system, description=await describe_system(t.address, options.connection))
        for t in options.targets
    ]
    tree = write_submission(
        options.out_dir,
        systems,
        submitter=options.submitter,
        rules=options.rules,
        preset=preset_path(options.rules),
        user_conf=options.user_conf,
        command="edgeperf " + redacted_command_line(sys.argv[1:], options.connection.auth_token)
        if sys.argv[1:2] == ["suite"]
        else "edgeperf suite",
    )
    log(f"submission tree: {tree} (division open, submitter {options.submitter})")
    write_pages(options.out_dir, cells, read_systems(options.out_dir))
    return all_ok, cells


async def _describe(target: SuiteTarget, options: SuiteOptions, log: Callable[[str], None]) -> None:
    """`<out>/systems/<system>.json`: the server's description, then the --system-json fields."""
    description = await describe_target(target.address, options.connection)
    if description is None:
        log(
            f"{target.system}: no edgeperf SystemDescription at {target.address}; describe it with --system-json"
        )
    doc = from_description(description, target.system)
    doc["submitter"] = options.submitter
    overrides = options.system_overrides or {}
    doc.update(overrides.get("*", {}))
    doc.update(overrides.get(target.system, {}))
    write_system(options.out_dir, target.system, doc)


def write_pages(out_dir: Path, cells: Sequence[CellResult], systems: dict[str, dict[str, Any]]) -> list[Path]:
    """results.md, results.csv and report.html in `out_dir`, each written atomically."""
    from edgeperf.client.report.html_page import render_html  # NOTE: late: it imports matplotlib

    out_dir.mkdir(parents=True, exist_ok=True)
    pages = {
        "results.md": render_markdown(cells, systems),
        "results.csv": render_csv(cells, systems),
        "report.html": render_html(cells, systems),
    }
    for name, text in pages.items():
        atomic_write(out_dir / name, [text])
    return [out_dir / name for name in pages]
