"""The driving machine with only the `client` extra: `edgeperf run --benchmark` and `edgeperf suite` work
without onnx and onnxruntime, and an accuracy run that needs them says so in one line before the run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeperf.benchmarks import registry
from tests.e2e._server import ServerProcess, serve

pytestmark = pytest.mark.e2e

# A meta-path finder placed first refuses the server extra's modules, as if they were not installed.
BLOCKER = """\
import importlib.abc, sys

class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("onnx", "onnxruntime"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
"""
CONF = "*.*.min_duration = 50\n*.Offline.min_query_count = 1\n*.Offline.target_qps = 1000\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    repo = tmp_path_factory.mktemp("repo")
    registry.get("resnet50").write_model(repo / "resnet50", size="small")
    registry.get("tiny").write_model(repo / "tiny")
    with serve(repo) as process:
        yield process


def _client_only(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    blocker = tmp_path / "blocker"
    blocker.mkdir(exist_ok=True)
    (blocker / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    conf = tmp_path / "short.conf"
    conf.write_text(CONF, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    command = [sys.executable, "-m", "edgeperf.client.cli", *args, "--user-conf", str(conf)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_the_blocker_really_hides_onnx(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", "import onnx"], capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "No module named 'onnx'" in proc.stderr


def test_benchmark_performance_run_needs_no_server_extra(server: ServerProcess, tmp_path: Path) -> None:
    run = ["run", "--server", server.address, "--benchmark", "resnet50", "--size", "small"]
    run += ["--dataset", "synthetic:8", "--scenario", "Offline", "--no-progress"]
    proc = _client_only(tmp_path, *run, "--out", str(tmp_path / "perf"))
    # NOTE: 0 VALID or 3 INVALID: the run happened; its validity hangs on how busy the machine is.
    assert proc.returncode in (0, 3), proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Result is :" in (tmp_path / "perf" / "mlperf_log_summary.txt").read_text()

    proc = _client_only(tmp_path, *run, "--mode", "AccuracyOnly", "--out", str(tmp_path / "acc"))
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "FP32 stand-in's outputs" in lines[0] and "onnxruntime" in lines[0], lines
    assert not (tmp_path / "acc" / "mlperf_log_accuracy.json").exists()  # refused before the run


def test_suite_needs_no_server_extra(server: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "suite"
    proc = _client_only(
        tmp_path,
        "suite",
        "--server",
        server.address,
        "--benchmarks",
        "tiny",
        "--scenarios",
        "Offline",
        "--dataset",
        "synthetic:16",
        "--out",
        str(out),
    )
    assert "FAILED to run" not in proc.stdout and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    cell = out / "edgeperf" / "tiny" / "Offline"
    assert (cell / "accuracy" / "accuracy.txt").read_text().rstrip().splitlines()[-1].startswith("PASS")
    assert "Result is :" in (cell / "performance" / "run_1" / "mlperf_log_summary.txt").read_text()
