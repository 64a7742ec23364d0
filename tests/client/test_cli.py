"""The `edgeperf` command line: help, argument errors, and errors before a run (no server needed)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from edgeperf.client.cli import EXIT_ERROR, EXIT_USAGE, build_parser, main
from edgeperf.client.plan.settings import Scenario, TestMode


def test_help_explains_every_run_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--server",
        "--model",
        "--scenario",
        "--mode",
        "--user-conf",
        "--rules",
        "--out",
        "--benchmark",
        "--dataset",
        "--streaming",
        "--deadline-ms",
        "--tls-root-cert",
        "--tls-client-cert",
        "--tls-client-key",
        "--batch-size",
        "--channels",
    ):
        assert option in text
    assert "not official MLPerf results" in " ".join(text.split())


def test_top_level_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "run" in text and "suite" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--model", "m", "--scenario", "Server"], "--server"),
        (["run", "--server", "nohost", "--model", "m", "--scenario", "Server"], "HOST:PORT"),
        (["run", "--server", "h:1", "--model", "m", "--scenario", "Sometimes"], "unknown scenario"),
        (
            ["run", "--server", "h:1", "--model", "m", "--scenario", "Server", "--mode", "Fast"],
            "unknown mode",
        ),
        (
            ["run", "--server", "h:1", "--model", "m", "--scenario", "Offline", "--batch-size", "0"],
            "at least 1",
        ),
        (
            ["run", "--server", "h:1", "--model", "m", "--scenario", "Offline", "--rules", "v9"],
            "invalid choice",
        ),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_names_are_case_insensitive() -> None:
    args = build_parser().parse_args(
        ["run", "--server", "h:1", "--model", "m", "--scenario", "singlestream", "--mode", "accuracyonly"]
    )
    assert args.scenario is Scenario.SINGLE_STREAM and args.mode is TestMode.ACCURACY_ONLY


def test_missing_model_without_benchmark_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--server", "h:1", "--scenario", "Offline"]) == EXIT_ERROR
    assert "--model is required" in capsys.readouterr().err


def test_unreachable_server_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgeperf.client.cli",
            "run",
            "--server",
            f"127.0.0.1:{port}",
            "--model",
            "m",
            "--scenario",
            "SingleStream",
            "--deadline-ms",
            "2000",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == EXIT_ERROR, proc.stderr
    assert "edgeperf: error:" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
