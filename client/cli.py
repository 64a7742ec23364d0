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
from typing import Any, cast

from edgeperf.client.errors import EdgeperfClientError
from edgeperf.client.run import run_benchmark
from edgeperf.client.run_args import add_run, run_options

__all__ = ["build_parser", "main"]

EXIT_VALID = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INVALID = 3
EXIT_INTERRUPTED = 130
SECOND_SIGNAL_MIN_S = 0.5
"""A repeated SIGINT/SIGTERM sooner than this after the first is the same request delivered twice."""


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
    add_run(subparsers, _run_command)
    if importlib.util.find_spec("edgeperf.client.suite_cli") is not None:
        from edgeperf.client import suite_cli

        suite_cli.register(subparsers)
    from edgeperf.client.report import plots

    plots.register(subparsers)
    return parser


async def _run_command(args: argparse.Namespace) -> int:
    options = run_options(args)
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
