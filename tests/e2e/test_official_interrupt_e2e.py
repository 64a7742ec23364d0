"""Ctrl-C / SIGTERM during `edgeperf run --official-loadgen`: it stops, INVALID, exit 130, every log parseable."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.e2e._runs import start
from tests.e2e._server import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.oracle]


@pytest.mark.parametrize(
    "signals",
    [(signal.SIGTERM,), (signal.SIGINT, signal.SIGINT)],
    ids=["sigterm", "ctrl-c-twice"],
)
def test_official_loadgen_run_stops_on_a_signal_with_intact_invalid_logs(
    tiny_server: ServerProcess, tmp_path: Path, signals: tuple[signal.Signals, ...]
) -> None:
    out = tmp_path / "official"
    # The v2.1 preset's SingleStream runs for 600 s: only a working stop ends it within the test.
    args = ["run", "--server", tiny_server.address, "--benchmark", "tiny", "--dataset", "synthetic:32"]
    args += ["--scenario", "SingleStream", "--out", str(out), "--official-loadgen", "--no-progress"]
    # the explanation's "performance samples" line is printed just before LoadGen starts
    proc = start(*args, until="performance samples")
    time.sleep(1.5)
    for i, sig in enumerate(signals):
        if i:
            time.sleep(0.7)  # a repeat sooner than 0.5 s counts as the same request
        os.kill(proc.pid, sig)
    started_s = time.monotonic()
    try:
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stdout[-2000:] + stderr[-2000:]
    assert time.monotonic() - started_s < 15
    assert "stopping" in stderr and "Traceback" not in stderr, stderr[-3000:]
    summary = (out / "mlperf_log_summary.txt").read_text()
    assert "Result is : INVALID" in summary and "interrupted" in summary
    detail = [
        json.loads(line.removeprefix(":::MLLOG "))
        for line in (out / "mlperf_log_detail.txt").read_text().splitlines()
    ]
    keys = {entry["key"] for entry in detail}
    assert "loadgen_version" in keys and "edgeperf_interrupted" in keys
    entries = json.loads((out / "mlperf_log_accuracy.json").read_text())
    assert isinstance(entries, list)
