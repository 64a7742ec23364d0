"""`edgeperf`: the load generator's command line (`run`, and `suite` when edgeperf.client.suite exists).

Signal handlers are installed here and nowhere else: the first Ctrl-C (or SIGTERM) stops the run
cleanly, the samples in flight are drained and complete logs are written, marked INVALID; a second
Ctrl-C abandons the run.

Exit status: 0 VALID, 3 INVALID (the run finished but does not pass), 130 interrupted, 1 an error
before or during the run (unreachable server, bad conf file), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib.util
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar, cast

from edgeperf.client.connection_args import (
    add_connection_arguments,
    connection_from_args,
    redacted_command_line,
)
from edgeperf.client.errors import EdgeperfClientError
from edgeperf.client.plan.settings import Scenario, TestMode
from edgeperf.client.run import RunOptions, run_benchmark

__all__ = ["build_parser", "main"]

EXIT_VALID = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INVALID = 3
EXIT_INTERRUPTED = 130
SECOND_SIGNAL_MIN_S = 0.5
"""A repeated SIGINT/SIGTERM sooner than this after the first is the same request delivered twice."""

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


def _add_run(subparsers: Any) -> None:
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
    run.set_defaults(handler=_run_command)


def _version() -> str:
    try:
        return metadata.version("edgeperf")
    except metadata.PackageNotFoundError:  # NOTE: run from a checkout that was never installed
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    """The `edgeperf` argument parser, with the `suite` subcommand when `edgeperf.client.suite` exists."""
    parser = argparse.ArgumentParser(
        prog="edgeperf",
        description="MLPerf-style load generator for inference servers over KServe v2 gRPC. "
        "Its results are not official MLPerf results (MLPerf is a trademark of MLCommons).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_run(subparsers)
    if importlib.util.find_spec("edgeperf.client.suite") is not None:
        from edgeperf.client import suite

        suite.register(subparsers)
    from edgeperf.client.report import plots

    plots.register(subparsers)
    return parser


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


def _options(args: argparse.Namespace) -> RunOptions:
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
        channels=args.channels,
        workers=args.workers,
        server_max_in_flight=args.server_max_in_flight,
        batch_size=args.batch_size,
        max_in_flight=args.max_in_flight,
        deadline_ms=args.deadline_ms,
        abort_after_errors=args.abort_after_errors,
        power=not args.no_power,
        network_pings=_pings(args.network_pings),
        tls_root_cert=connection.tls_root_cert,
        tls_client_cert=connection.tls_client_cert,
        tls_client_key=connection.tls_client_key,
        auth_token=connection.auth_token,
        official_loadgen=args.official_loadgen,
        progress=not args.no_progress and sys.stderr.isatty(),
        extra_log_messages=(
            "command line: edgeperf " + redacted_command_line(sys.argv[1:], connection.auth_token),
        ),
    )


async def _run_command(args: argparse.Namespace) -> int:
    options = _options(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()

    first_signal_s: list[float] = []

    def on_signal() -> None:
        now_s = time.monotonic()
        if stop.is_set() and main_task is not None:
            # NOTE: `timeout`, systemd and container runtimes signal the process and then its process group,
            # so one stop request can arrive twice at once; only a later repeat abandons the run.
            if now_s - first_signal_s[0] >= SECOND_SIGNAL_MIN_S:
                main_task.cancel()  # NOTE: the second Ctrl-C abandons the run
            return
        first_signal_s.append(now_s)
        print("\nstopping: draining the requests in flight, then writing the logs", file=sys.stderr)
        stop.set()

    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # NOTE: not the main thread, or Windows
            pass
    try:
        outcome = await run_benchmark(options, stop=stop, announce=lambda text: print(text, flush=True))
    except OSError as exc:
        raise EdgeperfClientError(_write_failure(exc, options.out_dir)) from None
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
            if stop.is_set():
                # NOTE: the stop is done and its logs written; a repeated Ctrl-C arriving while the process
                # exits would otherwise end it by the signal (rc -2) instead of the documented 130.
                signal.signal(sig, signal.SIG_IGN)
    print(outcome.summary_text, flush=True)
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_VALID if outcome.validity == "VALID" else EXIT_INVALID


def _write_failure(exc: OSError, out_dir: Path) -> str:
    """One line for a file error during a run (after the setup checks: writing its logs)."""
    where = exc.filename or out_dir
    if exc.errno == errno.ENOSPC:
        return (
            f"no space left on the device while writing {where}: the log files written before it are "
            "complete (each is written whole or not at all); free some space and run again"
        )
    return f"cannot write {where}: {exc.strerror or exc}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `edgeperf` console script."""
    code = _main(argv)
    from edgeperf.client.issue.loadgen_bridge import loadgen_still_running

    if loadgen_still_running():
        # NOTE: an interrupted official LoadGen test cannot be stopped and calls into Python from its own
        # threads; a normal interpreter exit under it can crash. Its logs were already rewritten complete.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = cast(Callable[[argparse.Namespace], Awaitable[int]], args.handler)
    try:
        return run_loop(_call(handler, args))
    except EdgeperfClientError as exc:
        print(f"edgeperf: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("edgeperf: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run `main` on uvloop: the client's own per-request loop cost is about half of asyncio's."""
    try:
        import uvloop
    except ImportError:  # NOTE: uvloop does not exist on Windows; asyncio's loop works, only slower
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


async def _call(handler: Callable[[argparse.Namespace], Awaitable[int]], args: argparse.Namespace) -> int:
    return await handler(args)


if __name__ == "__main__":
    sys.exit(main())
