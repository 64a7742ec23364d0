"""`edgeperf run --benchmark X` and `edgeperf suite` take the stand-in's size from the served model's config."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e._runs import edgeperf
from tests.e2e._server import ServerProcess

pytestmark = pytest.mark.e2e

CONF = "*.*.min_duration = 50\n*.Offline.min_query_count = 1\n*.Offline.target_qps = 1000\n"


def _edgeperf(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "short.conf"
    conf.write_text(CONF, encoding="utf-8")
    return edgeperf(*args, "--user-conf", str(conf))


def test_run_without_size_uses_the_served_size(small_resnet: ServerProcess, tmp_path: Path) -> None:
    run = ["run", "--server", small_resnet.address, "--benchmark", "resnet50", "--dataset", "synthetic:8"]
    run += ["--scenario", "Offline", "--no-progress"]
    proc = _edgeperf(tmp_path, *run, "--out", str(tmp_path / "derived"))
    # 0 VALID or 3 INVALID: the run happened (its validity hangs on the machine's load)
    assert proc.returncode in (0, 3), proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "--size small: from the config of model resnet50 on the server" in proc.stdout
    # the flag still overrides: full-size samples do not fit the small model
    proc = _edgeperf(tmp_path, *run, "--size", "full", "--out", str(tmp_path / "forced"))
    assert proc.returncode == 1 and "at --size full" in proc.stderr, proc.stderr[-2000:]


def test_suite_without_size_uses_the_served_size(small_resnet: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "suite"
    suite = ["suite", "--server", small_resnet.address, "--benchmarks", "resnet50", "--scenarios", "Offline"]
    proc = _edgeperf(
        tmp_path, *suite, "--dataset", "synthetic:8", "--modes", "performance", "--out", str(out)
    )
    assert "FAILED to run" not in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = out / "edgeperf" / "resnet50" / "Offline" / "performance" / "run_1" / "mlperf_log_summary.txt"
    assert "Result is :" in summary.read_text()
