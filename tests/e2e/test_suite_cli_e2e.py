"""`edgeperf --version`, `edgeperf suite --help` and `suite`'s exit codes, through the real entry point."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from edgeperf.client.cli import main
from tests.e2e._server import ServerProcess

pytestmark = pytest.mark.e2e


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"edgeperf {metadata.version('edgeperf')}"


def test_suite_help_names_no_internals_and_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["suite", "--help"])
    text = capsys.readouterr().out
    for internal in ("run_benchmark", "run.", "USER_CONF", "BATCH_SIZE", " OUT ", "`"):
        assert internal not in text, internal
    options = text[text.index("options:") :]
    # every option line is followed by its help (argparse prints an option without help alone on its line)
    assert "--modes MODE [MODE ...]\n                        accuracy" in options
    assert "Exit status: 0" in text


def test_suite_exits_3_when_a_run_is_invalid(tiny_server: ServerProcess, tmp_path: Path) -> None:
    conf = tmp_path / "invalid.conf"
    # Offline at an expected 1 QPS for 1 s issues one sample, done in about a millisecond: INVALID (too short)
    conf.write_text("*.*.min_duration = 1000\n*.Offline.target_qps = 1\n*.Offline.min_query_count = 1\n")
    command = [sys.executable, "-m", "edgeperf.client.cli", "suite", "--server", tiny_server.address]
    command += ["--benchmarks", "tiny", "--scenarios", "Offline", "--dataset", "synthetic:16"]
    command += ["--user-conf", str(conf), "--out", str(tmp_path / "out")]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "(INVALID)" in (tmp_path / "out" / "results.md").read_text()
