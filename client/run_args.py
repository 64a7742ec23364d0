"""The `edgeperf run` command line: its arguments and the `RunOptions` they give."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from edgeperf.client.connection_args import (
    add_connection_arguments,
    connection_from_args,
    redacted_command_line,
)
from edgeperf.client.errors import EdgeperfClientError
from edgeperf.client.plan.settings import Scenario, TestMode
from edgeperf.client.run_setup import RunOptions

__all__ = ["add_run", "run_options"]

_Choice = TypeVar("_Choice", Scenario, TestMode)


def _any_case(choices: type[_Choice], what: str) -> Callable[[str], _Choice]:
    """An argparse type for the values of `choices` in any letter case; an unknown one names them all."""
    by_text = {c.value.lower(): c for c in choices}

    def parse(text: str) -> _Choice:
        try:
            return by_text[text.lower()]
        except KeyError:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {text!r}; choose from {', '.join(c.value for c in choices)}"
            ) from None

    return parse


_scenario = _any_case(Scenario, "scenario")
_mode = _any_case(TestMode, "mode")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _address(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return text


def add_run(subparsers: Any, handler: Callable[[argparse.Namespace], Awaitable[int]]) -> None:
    """Add the `run` subcommand; `handler` runs it (args.handler)."""
    run = subparsers.add_parser(
        "run",
        help="run one MLPerf scenario against a KServe v2 gRPC server",
        description=(
            "Run one MLPerf LoadGen scenario against a KServe v2 / Triton gRPC server and write "
            "mlperf_log_summary.txt, mlperf_log_detail.txt, mlperf_log_accuracy.json and result.json "
            "under --out. Results from edgeperf are not official MLPerf results."
        ),
    )
    target = run.add_argument_group("what to test")
    target.add_argument("--server", required=True, type=_address, metavar="HOST:PORT", help="the gRPC server")
    target.add_argument(
        "--model", help="model name on the server (default: the --benchmark name; required without it)"
    )
    target.add_argument(
        "--scenario",
        required=True,
        type=_scenario,
        metavar="SCENARIO",
        help="SingleStream, MultiStream, Server or Offline",
    )
    target.add_argument(
        "--mode",
        type=_mode,
        metavar="MODE",
        help="PerformanceOnly (default), AccuracyOnly, SubmissionRun (accuracy then performance) or "
        "FindPeakPerformance (Server: search the highest passing target QPS)",
    )
    target.add_argument(
        "--benchmark",
        metavar="NAME",
        help="an MLPerf benchmark (resnet50, retinanet, 3d-unet, rnnt, bert, tiny): its dataset, "
        "preprocessing, rules and accuracy metric; without it inputs are synthetic, shaped from the "
        "server's model metadata",
    )
    target.add_argument(
        "--dataset",
        default="synthetic",
        metavar="synthetic[:COUNT]|PATH",
        help="generated samples (default; COUNT samples, 64 without --benchmark) or the dataset in its "
        "published format (with --benchmark)",
    )
    target.add_argument(
        "--size",
        choices=("full", "small"),
        help="size of the benchmark stand-in the server runs (small: the scaled-down test model); default: "
        "what the model's config on the server records (edgeperf-server build writes it), else full",
    )
    rules = run.add_argument_group("settings")
    rules.add_argument(
        "--rules",
        choices=("v2.1", "current"),
        default=None,
        help="mlperf.conf preset: v2.1 (the Edge round, default) or current (LoadGen 6.0.17); with "
        "--official-loadgen the default is the rules the installed LoadGen follows, and others are refused",
    )
    rules.add_argument(
        "--user-conf",
        type=Path,
        metavar="FILE",
        help="a user.conf in LoadGen's format, read after the preset (short runs: min_duration, "
        "min_query_count); a line edgeperf cannot use is an error naming file and line",
    )
    rules.add_argument(
        "--mlperf-model",
        metavar="NAME",
        help="model name for conf lookups (default: the benchmark's MLPerf name, else --model)",
    )
    wire = run.add_argument_group("transport")
    wire.add_argument(
        "--streaming",
        action="store_true",
        help="send over one bidirectional ModelStreamInfer stream per channel (default: unary ModelInfer)",
    )
    wire.add_argument(
        "--transport",
        choices=("h2", "grpcio"),
        default="h2",
        help="the timed requests' transport: edgeperf's own HTTP/2 client (default; about a third of "
        "grpc.aio's CPU per request) or grpc.aio; readiness and metadata RPCs always use grpc.aio",
    )
    wire.add_argument(
        "--channels", type=_positive, default=1, metavar="N", help="separate gRPC connections (default 1)"
    )
    wire.add_argument(
        "--workers",
        type=_positive,
        default=None,
        metavar="N",
        help="processes issuing a Server or Offline run, each with its own event loop and channels "
        "(default: Server, enough for the target rate, about 1,000 queries/s each; others 1)",
    )
    wire.add_argument(
        "--server-max-in-flight",
        type=_positive,
        default=1024,
        metavar="N",
        help="Server: requests in flight at once per process; a query over it waits for a slot and is "
        "counted in the client self-check, never dropped (default 1024)",
    )
    wire.add_argument(
        "--batch-size",
        type=_positive,
        default=1,
        metavar="N",
        help="samples per request for multi-sample queries (Offline, MultiStream); capped by the "
        "model's max batch size (default 1)",
    )
    wire.add_argument(
        "--max-in-flight",
        type=_positive,
        default=64,
        metavar="N",
        help="requests in flight at once, the Offline window (default 64); Server stays open-loop",
    )
    wire.add_argument(
        "--deadline-ms",
        type=_positive,
        default=30_000,
        metavar="MS",
        help="per-request deadline; a request past it is recorded as DEADLINE_EXCEEDED (default 30000)",
    )
    wire.add_argument(
        "--abort-after-errors",
        type=_positive,
        default=100,
        metavar="N",
        help="end the run after N failed samples in a row, e.g. a dead server (default 100)",
    )
    wire.add_argument(
        "--no-power",
        action="store_true",
        help="do not measure the server's power, even where it has a source",
    )
    wire.add_argument(
        "--network-pings",
        type=int,
        default=100,
        metavar="N",
        help="round trips timed before the run, empty and with the run's request size (default 100; 0 skips)",
    )
    wire.add_argument(
        "--official-loadgen",
        action="store_true",
        help="let the official MLPerf LoadGen (pip install mlcommons-loadgen) schedule and time the run "
        "through the same gRPC SUT; its own log files are the result",
    )
    add_connection_arguments(wire)
    output = run.add_argument_group("output")
    output.add_argument(
        "--out",
        type=Path,
        default=Path("results"),
        metavar="DIR",
        help="where the logs go (default results/)",
    )
    output.add_argument("--no-progress", action="store_true", help="no live progress display")
    run.set_defaults(handler=handler)


def _rules(args: argparse.Namespace) -> str:
    if args.rules is not None:
        return str(args.rules)
    if args.official_loadgen:
        from edgeperf.client.issue.loadgen_bridge import installed_rules

        return installed_rules()[0]
    return "v2.1"


def _pings(count: int) -> int:
    if count != 0 and count < 100:
        raise EdgeperfClientError(f"--network-pings {count}: 0 (skip) or at least 100, for a stable p99")
    return count


def run_options(args: argparse.Namespace) -> RunOptions:
    """The `RunOptions` an `edgeperf run` command line gives."""
    model = args.model or args.benchmark
    if model is None:
        raise EdgeperfClientError("--model is required without --benchmark")
    connection = connection_from_args(args)
    return RunOptions(
        server=args.server,
        model=model,
        scenario=args.scenario,
        mode=args.mode,
        out_dir=args.out,
        rules=_rules(args),
        user_conf=args.user_conf,
        mlperf_model=args.mlperf_model,
        benchmark=args.benchmark,
        benchmark_size=args.size or "full",
        size_from_server=args.size is None,
        dataset=args.dataset,
        streaming=args.streaming,
        transport=args.transport,
        channels=args.channels,
        workers=args.workers,
        server_max_in_flight=args.server_max_in_flight,
        batch_size=args.batch_size,
        max_in_flight=args.max_in_flight,
        deadline_ms=args.deadline_ms,
        abort_after_errors=args.abort_after_errors,
        power=not args.no_power,
        network_pings=_pings(args.network_pings),
        connection=connection,
        official_loadgen=args.official_loadgen,
        progress=not args.no_progress and sys.stderr.isatty(),
        extra_log_messages=(
            "command line: edgeperf " + redacted_command_line(sys.argv[1:], connection.auth_token),
        ),
    )
