"""The run most e2e tests make, one model at a test server, as `edgeperf` command-line arguments or as
`RunOptions`; and the installed `edgeperf` entry point in a child process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Final

from edgeperf.client.plan.settings import Scenario
from edgeperf.client.run import RunOptions

EDGEPERF: Final = (sys.executable, "-m", "edgeperf.client.cli")
"""The command a user types, `edgeperf`, without the console-script wrapper."""


def run_args(
    address: str, scenario: str, out: Path, conf: Path | None = None, *, model: str = "tiny"
) -> list[str]:
    """`run` of `model` at `address` in `scenario`, writing to `out`, with `conf` as --user-conf when given."""
    args = ["run", "--server", address, "--model", model, "--scenario", scenario, "--out", str(out)]
    return args if conf is None else [*args, "--user-conf", str(conf)]


def run_options(
    address: str, scenario: Scenario, out: Path, conf: Path | None = None, *, model: str = "tiny", **more: Any
) -> RunOptions:
    """The same run for `run_benchmark`; `more` sets other `RunOptions` fields."""
    return RunOptions(server=address, model=model, scenario=scenario, out_dir=out, user_conf=conf, **more)


def edgeperf(*args: str, timeout_s: float = 120, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """`edgeperf ARGS` to its end, output captured as text; the exit code is the caller's to check."""
    return subprocess.run(
        [*EDGEPERF, *args], capture_output=True, text=True, timeout=timeout_s, check=False, **kwargs
    )


def start(*args: str, until: str = "expected duration") -> subprocess.Popen[str]:
    """`edgeperf ARGS` started, its output on pipes, returned once a line holding `until` was printed (by
    default the explanation's last line: the timed run begins).

    The caller stops it (a signal, a dead server) and reads the rest with `communicate`.
    """
    proc = subprocess.Popen([*EDGEPERF, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if until in line:
            break
    return proc
