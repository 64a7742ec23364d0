"""The bearer token through the real `edgeperf` CLI: never written into the logs; from --auth-token,
--auth-token-file or $EDGEPERF_AUTH_TOKEN, for `run` and `suite` alike."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeperf.client.connection_args import redacted_command_line
from tests.e2e._server import ServerProcess, serve

pytestmark = pytest.mark.e2e

TOKEN = "tok-9f2c81d0e4a7"
# 0 VALID or 3 INVALID both mean the server took the token; validity hangs on the machine's load.
CONF = "*.*.min_duration = 50\n*.Offline.min_query_count = 1\n*.Offline.target_qps = 2000\n"


@pytest.fixture(scope="module")
def token_server(tiny_repo: Path) -> Iterator[ServerProcess]:
    with serve(tiny_repo, "--auth-token", TOKEN) as server:
        yield server


def _edgeperf(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "short.conf"
    conf.write_text(CONF, encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EDGEPERF_")} | (env or {})
    command = [sys.executable, "-m", "edgeperf.client.cli", *args, "--user-conf", str(conf)]
    return subprocess.run(command, capture_output=True, text=True, env=environ, timeout=120, check=False)


def _run_args(server: ServerProcess, out: Path) -> list[str]:
    return ["run", "--server", server.address, "--model", "tiny", "--scenario", "Offline"]


def _files_holding(folder: Path, text: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


@pytest.mark.parametrize("form", ["--auth-token TOKEN", "--auth-token=TOKEN"])
def test_token_never_reaches_the_logs(token_server: ServerProcess, tmp_path: Path, form: str) -> None:
    out = tmp_path / "out"
    option, _, _ = form.replace("=", " ").partition(" ")
    given = [f"{option}={TOKEN}"] if "=" in form else [option, TOKEN]
    proc = _edgeperf(tmp_path, *_run_args(token_server, out), *given, "--out", str(out))
    assert proc.returncode in (0, 3), proc.stdout[-2000:] + proc.stderr[-2000:]
    assert _files_holding(out, TOKEN) == []
    assert TOKEN not in proc.stdout + proc.stderr
    detail = (out / "mlperf_log_detail.txt").read_text()
    assert "command line: edgeperf run" in detail and "REDACTED" in detail


def test_token_file_and_environment(token_server: ServerProcess, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    proc = _edgeperf(
        tmp_path,
        *_run_args(token_server, tmp_path),
        "--auth-token-file",
        str(token_file),
        "--out",
        str(tmp_path / "a"),
    )
    assert proc.returncode in (0, 3), proc.stderr[-2000:]
    proc = _edgeperf(
        tmp_path,
        *_run_args(token_server, tmp_path),
        "--out",
        str(tmp_path / "b"),
        env={"EDGEPERF_AUTH_TOKEN": TOKEN},
    )
    assert proc.returncode in (0, 3), proc.stderr[-2000:]
    proc = _edgeperf(tmp_path, *_run_args(token_server, tmp_path), "--out", str(tmp_path / "c"))
    assert proc.returncode == 1 and "UNAUTHENTICATED" in proc.stderr
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    proc = _edgeperf(
        tmp_path,
        *_run_args(token_server, tmp_path),
        "--auth-token-file",
        str(tmp_path / "empty"),
        "--out",
        str(tmp_path / "d"),
    )
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        f"edgeperf: error: --auth-token-file {tmp_path / 'empty'}: the file holds no token"
    ]


@pytest.mark.parametrize("how", ["file", "environment"])
def test_suite_takes_the_same_token_options(token_server: ServerProcess, tmp_path: Path, how: str) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN, encoding="utf-8")
    suite = ["suite", "--server", token_server.address, "--benchmarks", "tiny", "--scenarios", "Offline"]
    suite += ["--dataset", "synthetic:16", "--modes", "performance", "--out", str(tmp_path / "suite")]
    if how == "file":
        proc = _edgeperf(tmp_path, *suite, "--auth-token-file", str(token_file))
    else:
        proc = _edgeperf(tmp_path, *suite, env={"EDGEPERF_AUTH_TOKEN": TOKEN})
    # NOTE: the token got the run through; its validity depends on how busy the machine is.
    assert "FAILED to run" not in proc.stdout and "UNAUTHENTICATED" not in proc.stdout, proc.stdout[-2000:]
    summary = (
        tmp_path
        / "suite"
        / "edgeperf"
        / "tiny"
        / "Offline"
        / "performance"
        / "run_1"
        / "mlperf_log_summary.txt"
    )
    assert "Result is" in summary.read_text()
    assert _files_holding(tmp_path / "suite", TOKEN) == []


def test_redaction_covers_every_spelling() -> None:
    argv = ["run", "--auth-token", "abc", "--auth-token=abc", "--auth-t", "abc", "--model", "m", "--x=abcd"]
    assert redacted_command_line(argv, "abc") == (
        "run --auth-token REDACTED --auth-token=REDACTED --auth-t REDACTED --model m --x=REDACTEDd"
    )
