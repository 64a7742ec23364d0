"""`edgeperf run` as a user runs it: a short run, a benchmark accuracy run, and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.e2e._runs import edgeperf, run_args, start
from tests.e2e._server import ServerProcess

pytestmark = pytest.mark.e2e


def test_short_run_prints_the_explanation_and_the_summary(
    tiny_server: ServerProcess, short_conf: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = edgeperf(*run_args(tiny_server.address, "SingleStream", out, short_conf))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "early-stopping floor: 64 queries" in proc.stdout
    assert "expected duration" in proc.stdout
    assert "== edgeperf SingleStream / PerformanceOnly: VALID ==" in proc.stdout
    assert "Official metric (early_stopping_latency_ss)" in proc.stdout
    detail = (out / "mlperf_log_detail.txt").read_text()
    assert "command line: edgeperf run --server" in detail


def test_benchmark_accuracy_run_writes_accuracy_txt(
    tiny_server: ServerProcess, short_conf: Path, tmp_path: Path
) -> None:
    out = tmp_path / "acc"
    args = ["run", "--server", tiny_server.address, "--benchmark", "tiny", "--scenario", "Offline"]
    args += ["--mode", "AccuracyOnly", "--dataset", "synthetic:40", "--batch-size", "8"]
    proc = edgeperf(*args, "--user-conf", str(short_conf), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (out / "accuracy.txt").read_text()
    assert "PASS" in text.splitlines()[-1]
    assert "Accuracy: match" in proc.stdout
    entries = json.loads((out / "mlperf_log_accuracy.json").read_text())
    assert sorted(e["qsl_idx"] for e in entries) == list(range(40))


def test_ctrl_c_stops_cleanly_with_complete_invalid_logs(tiny_server: ServerProcess, tmp_path: Path) -> None:
    conf = tmp_path / "long.conf"
    conf.write_text("*.*.min_duration = 600000\n*.Server.target_qps = 200\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = start(*run_args(tiny_server.address, "Server", out, conf))
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    assert "stopping" in stderr
    assert "INVALID" in stdout and "Run interrupted by the user after" in stdout
    assert "Result is : INVALID" in (out / "mlperf_log_summary.txt").read_text()
    doc = json.loads((out / "result.json").read_text())
    assert doc["run"]["interrupted"] is True
    for line in (out / "mlperf_log_detail.txt").read_text().splitlines():
        json.loads(line.removeprefix(":::MLLOG "))


def test_benchmark_that_does_not_fit_the_model_is_refused_before_the_run(
    tiny_server: ServerProcess, tmp_path: Path
) -> None:
    proc = edgeperf(*run_args(tiny_server.address, "Offline", tmp_path / "out"), "--benchmark", "resnet50")
    assert proc.returncode == 1
    assert "is --model the right model?" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_same_index_outside_the_loaded_set_is_a_file_and_line_error(
    tiny_server: ServerProcess, short_conf: Path, tmp_path: Path
) -> None:
    conf = tmp_path / "same.conf"
    conf.write_text(
        short_conf.read_text() + "*.*.performance_issue_same = 1\n*.*.performance_issue_same_index = 64\n",
        encoding="utf-8",
    )
    line_no = len(conf.read_text().splitlines())
    out = tmp_path / "same"
    proc = edgeperf(*run_args(tiny_server.address, "Offline", out, conf), "--dataset", "synthetic:64")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # an error, before any run
    assert not out.exists() or not any(out.iterdir())
    assert "Traceback" not in proc.stderr
    assert (
        f"{conf}:{line_no}: *.*.performance_issue_same_index: 64: the repeated sample must be in the loaded "
        in (proc.stderr)
    )
    assert "set of 64 samples (indices 0 to 63)" in proc.stderr
