"""A short user.conf as `edgeperf run --help` suggests (min_duration, min_query_count) against a fast model
meets min_duration: the expected latency / QPS it leaves to the preset comes from a warm-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e._runs import edgeperf, run_args
from tests.e2e._server import ServerProcess

pytestmark = pytest.mark.e2e


def _run(server: ServerProcess, tmp_path: Path, scenario: str, conf_text: str) -> tuple[str, str]:
    conf = tmp_path / f"{scenario}.conf"
    conf.write_text(conf_text, encoding="utf-8")
    out = tmp_path / scenario
    proc = edgeperf(*run_args(server.address, scenario, out, conf), "--no-progress")
    assert proc.returncode in (0, 3), proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout, (out / "mlperf_log_summary.txt").read_text()


@pytest.mark.parametrize(("scenario", "key"), [("SingleStream", "target_latency"), ("Offline", "target_qps")])
def test_short_conf_meets_min_duration_with_a_measured_expectation(
    tiny_server: ServerProcess, tmp_path: Path, scenario: str, key: str
) -> None:
    short = f"*.*.min_duration = 1000\n*.{scenario}.min_query_count = 100\n"
    stdout, summary = _run(tiny_server, tmp_path, scenario, short)
    assert f"{key} from a warm-up" in stdout
    # the preset's 10 ms / 1 QPS would have ended the run long before min_duration (INVALID)
    assert "Min duration satisfied : Yes" in summary, summary
    assert "pre-generates" not in stdout


def test_a_value_the_user_wrote_is_kept_with_a_warning(tiny_server: ServerProcess, tmp_path: Path) -> None:
    conf = "*.*.min_duration = 500\n*.SingleStream.min_query_count = 10\n*.SingleStream.target_latency = 50\n"
    stdout, summary = _run(tiny_server, tmp_path, "SingleStream", conf)
    assert "warning: warm-up" in stdout and "will run out of queries before min_duration" in stdout
    assert "\ntarget_qps : 20\n" in summary  # 1 / 50 ms: the value written, not the warm-up's
