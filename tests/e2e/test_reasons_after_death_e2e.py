"""After the server dies (or Ctrl-C), the reasons give the cause, not LoadGen's contradictory tuning advice."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e._runs import run_args, start
from tests.e2e._server import serve

pytestmark = pytest.mark.e2e


def test_server_death_reasons_do_not_say_both_reduce_and_increase_the_qps(
    tiny_repo: Path, tmp_path: Path
) -> None:
    conf = tmp_path / "long.conf"
    conf.write_text("*.*.min_duration = 600000\n*.Server.target_qps = 200\n", encoding="utf-8")
    with serve(tiny_repo) as server:
        proc = start(*run_args(server.address, "Server", tmp_path / "out", conf), "--no-progress")
        time.sleep(1.5)
        server.kill()
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 3, stdout[-3000:] + stderr[-3000:]
    assert "ended early" in stdout and "UNAVAILABLE" in stdout
    for text in (stdout, (tmp_path / "out" / "mlperf_log_summary.txt").read_text()):
        assert not ("Reduce target QPS" in text and "Increase the target QPS" in text), text[-3000:]
