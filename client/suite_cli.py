"""The `edgeperf suite` command line: its options, `--compare`, and its exit status.

`register` adds the subcommand to the `edgeperf` CLI; `run_suite` turns the command line into
`SuiteOptions` for `edgeperf.client.suite.run_suite_options`, or tabulates existing results folders.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgeperf.benchmarks import registry
from edgeperf.client.connection_args import add_connection_arguments, connection_from_args
from edgeperf.client.errors import EdgeperfClientError
from edgeperf.client.plan.settings import Scenario
from edgeperf.client.report.results_table import CellResult, collect_results, render_markdown
from edgeperf.client.report.system_json import load_override, read_systems
from edgeperf.client.suite import SuiteOptions, SuiteTarget, run_suite_options, write_pages

__all__ = ["options_from_args", "register", "run_suite"]


def _targets(servers: Sequence[str], system: str | None) -> tuple[SuiteTarget, ...]:
    if not servers:
        raise ValueError("--server HOST:PORT is required (or --compare DIR... to tabulate results)")
    targets: list[SuiteTarget] = []
    for item in servers:
        name, sep, address = item.partition("=")
        if not sep:
            name, address = system or ("edgeperf" if len(servers) == 1 else item.replace(":", "_")), item
        if not name or ":" not in address:
            raise ValueError(f"--server {item!r}: expected HOST:PORT or NAME=HOST:PORT")
        targets.append(SuiteTarget(system=name, address=address))
    if len({t.system for t in targets}) != len(targets):
        raise ValueError("two --server options have the same system name")
    return tuple(targets)


def _pairs(items: Sequence[str] | None, option: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if sep and key in registry.names():
            mapping[key] = value
        elif option == "--dataset" and not sep:
            mapping["*"] = item
        else:
            raise ValueError(f"{option} {item!r}: expected BENCHMARK=VALUE with a known benchmark")
    return mapping


def options_from_args(args: argparse.Namespace) -> SuiteOptions:
    """The suite options an `edgeperf suite` command line gives (ValueError names the bad option)."""
    benchmarks = tuple(args.benchmarks or registry.MLPERF_BENCHMARKS)
    for name in benchmarks:
        if name not in registry.names():
            raise ValueError(
                f"--benchmarks: unknown benchmark {name!r}; known: {', '.join(registry.names())}"
            )
    if args.scenarios:
        for scenario in args.scenarios:
            Scenario(scenario)
    return SuiteOptions(
        targets=_targets(args.server, args.system),
        benchmarks=benchmarks,
        scenarios=tuple(args.scenarios) if args.scenarios else None,
        datasets=_pairs(args.dataset, "--dataset"),
        models=_pairs(args.model, "--model"),
        out_dir=args.out if args.out is not None else Path("results"),
        user_conf=args.user_conf,
        rules=args.rules,
        size=args.size,
        batch_size=args.batch_size,
        modes=tuple(args.modes),
        connection=connection_from_args(args),
        submitter=args.submitter,
        system_overrides=_overrides(args.system_json),
    )


def _overrides(items: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """`--system-json [NAME=]PATH`: PATH for every system, NAME=PATH for one."""
    out: dict[str, dict[str, Any]] = {}
    for item in items or ():
        name, sep, path = item.partition("=")
        key, where = (name, path) if sep else ("*", item)
        try:
            out[key] = load_override(Path(where))
        except EdgeperfClientError as exc:
            raise ValueError(str(exc)) from None
    return out


NOT_RESULTS = (
    "not a results folder: found no <system>/<benchmark>/<scenario>/performance/run_1/mlperf_log_summary.txt "
    "or <system>/<benchmark>/<scenario>/accuracy/accuracy.txt (an `edgeperf suite --out` folder or one system's)"
)


def _compare_problem(folder: Path) -> str | None:
    """Why `folder` cannot be read as a results folder before looking inside it, or None."""
    if not folder.exists():
        return "no such folder"
    if not folder.is_dir():
        return "not a folder"
    return None


async def run_suite(args: argparse.Namespace) -> int:
    """`edgeperf suite`: 0 when every run is VALID and every accuracy gate passes, 3 when every run ran but
    one is INVALID or fails its gate, 1 when a run could not run, 2 on bad options."""
    if args.compare:
        cells: list[CellResult] = []
        systems: dict[str, dict[str, Any]] = {}
        for folder in args.compare:
            problem = _compare_problem(folder)
            found = [] if problem else collect_results(folder)
            if problem or not found:
                print(f"edgeperf: error: --compare {folder}: {problem or NOT_RESULTS}", file=sys.stderr)
                return 2
            cells.extend(found)
            systems.update(read_systems(folder))
        print(render_markdown(cells, systems), end="")
        if args.out is not None:
            written = write_pages(args.out, cells, systems)
            print("written: " + ", ".join(str(p) for p in written))
        return 0
    try:
        options = options_from_args(args)
    except ValueError as exc:
        print(f"edgeperf: error: suite: {exc}", file=sys.stderr)
        return 2
    except EdgeperfClientError as exc:  # NOTE: a token file that cannot be used
        print(f"edgeperf: error: suite: {exc}", file=sys.stderr)
        return 1
    failed: list[str] = []
    ok, cells = await run_suite_options(options, failed_runs=failed)
    print(render_markdown(cells, read_systems(options.out_dir)), end="")
    names = ", ".join(str(options.out_dir / n) for n in ("results.md", "results.csv", "report.html"))
    print(f"written: {names}")
    # NOTE: the same codes as `edgeperf run`: 1 when a run could not run, 3 when all ran but not all pass.
    return 0 if ok else 1 if failed else 3


SUITE_HELP = """\
Run every MLPerf Edge benchmark in its required scenarios against one or more servers, an accuracy run
and a performance run each, and write them in the MLPerf submission layout:

    OUT/SYSTEM/BENCHMARK/SCENARIO/performance/run_1/   mlperf_log_summary.txt, mlperf_log_detail.txt, ...
    OUT/SYSTEM/BENCHMARK/SCENARIO/accuracy/            mlperf_log_accuracy.json, accuracy.txt, ...

then OUT/results.md, OUT/results.csv and OUT/report.html (the results page): a row per system, a column per benchmark and scenario with its
MLPerf metric (SingleStream: early-stopping 90th percentile latency in ms; MultiStream: early-stopping
99th percentile in ms; Server and Offline: samples per second). --compare DIR... prints the same table
from existing results folders (edgeperf's or the official LoadGen's) without running anything.

Exit status: 0 every run VALID and every accuracy gate passed, 3 a run INVALID or a gate failed, 1 a run
could not run, 2 bad options. Results of edgeperf are not official MLPerf results.
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `suite` subcommand to the `edgeperf` CLI; its handler is `run_suite` (args.handler)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "suite",
        help="run the MLPerf Edge benchmarks and required scenarios, write the submission layout",
        description=SUITE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--server",
        action="append",
        default=[],
        metavar="[NAME=]HOST:PORT",
        help="server to test; repeat with NAME=HOST:PORT to compare several devices",
    )
    parser.add_argument("--system", help="system name for a single --server (default: edgeperf)")
    parser.add_argument(
        "--benchmarks",
        nargs="+",
        metavar="NAME",
        help=f"benchmarks to run (default: {' '.join(registry.MLPERF_BENCHMARKS)})",
    )
    parser.add_argument(
        "--scenarios",
        nargs="+",
        metavar="SCENARIO",
        help="scenarios for every benchmark (default: each one's Edge set)",
    )
    parser.add_argument(
        "--dataset",
        action="append",
        metavar="[BENCHMARK=]SOURCE",
        help="synthetic[:COUNT] or a path in the published format; BENCHMARK=SOURCE for one benchmark",
    )
    parser.add_argument(
        "--model", action="append", metavar="BENCHMARK=MODEL", help="model name on the server"
    )
    parser.add_argument(
        "--user-conf",
        type=Path,
        metavar="FILE",
        help="user.conf with overrides (short runs for development)",
    )
    parser.add_argument(
        "--rules", default="v2.1", choices=("v2.1", "current"), help="rule preset (default v2.1)"
    )
    parser.add_argument(
        "--size",
        choices=("full", "small"),
        help="stand-in size the server runs (default: what each model's config on the server records, else full)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=1,
        metavar="N",
        help="samples per request for Offline/MultiStream (default 1)",
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["accuracy", "performance"],
        choices=("accuracy", "performance"),
        metavar="MODE",
        help="accuracy (an AccuracyOnly run, scored) and/or performance (a PerformanceOnly run) for each "
        "benchmark and scenario (default: both)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="results folder (default results/); with --compare, where to write results.md/csv and report.html",
    )
    parser.add_argument(
        "--system-json",
        action="append",
        metavar="[NAME=]PATH",
        help="systems/*.json fields (MLPerf names: submitter, host_processor_model_name, ...) replacing what "
        "the server describes; NAME=PATH for one system",
    )
    add_connection_arguments(parser.add_argument_group("transport (every --server)"))
    parser.add_argument(
        "--submitter",
        default="edgeperf",
        help="submitter name of the submission tree written under OUT/submission/open/ (default edgeperf)",
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="print the table of existing results folders; run nothing",
    )
    parser.set_defaults(handler=run_suite)
    return parser
