"""The official LoadGen driving edgeperf's gRPC SUT against a real server (in a fresh process)."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.client.oracle_run import run_code
from tests.e2e._runs import edgeperf
from tests.e2e._server import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.oracle]

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from edgeperf.client.issue.loadgen_bridge import run_official
    from edgeperf.client.plan.qsl import RequestEncoder, SerializedQsl, SyntheticSource
    from edgeperf.client.plan.settings import Scenario, TestMode, TestSettings
    from edgeperf.client.issue.sut_grpc import GrpcSut, GrpcSutConfig

    async def main():
        address, out, scenario, mode = sys.argv[1], Path(sys.argv[2]), Scenario(sys.argv[3]), TestMode(sys.argv[4])
        async with GrpcSut(GrpcSutConfig(address=address, model="tiny", batch_size=16)) as sut:
            await sut.check_ready()
            signature = await sut.model_signature()
            qsl = SerializedQsl(SyntheticSource(signature, 32), RequestEncoder(signature))
            sut.use_qsl(qsl)
            settings = TestSettings(scenario=scenario, mode=mode, min_duration_ms=200, min_query_count=64,
                                    single_stream_expected_latency_ns=1_000_000.0, offline_expected_qps=20000.0)
            run = await run_official(sut, qsl, settings, out)
        print(json.dumps({"detail": run.detail, "failed": run.failed_samples}))

    asyncio.run(main())
    """
)


@pytest.mark.parametrize(
    ("scenario", "mode"), [("SingleStream", "PerformanceOnly"), ("Offline", "AccuracyOnly")]
)
def test_official_loadgen_through_the_grpc_sut(
    tiny_server: ServerProcess, tmp_path: Path, scenario: str, mode: str
) -> None:
    doc = run_code(CHILD, tiny_server.address, str(tmp_path), scenario, mode)
    assert doc["failed"] == 0
    if mode == "PerformanceOnly":
        assert doc["detail"]["result_validity"] == "VALID"
    else:
        entries = json.loads((tmp_path / "mlperf_log_accuracy.json").read_text())
        assert sorted(e["qsl_idx"] for e in entries) == list(range(32))
        # the tiny model answers 16 float32 values per sample: 64 bytes, 128 hex digits
        assert all(len(e["data"]) == 128 for e in entries)


def _official_run(address: str, conf: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`edgeperf run --official-loadgen` of the tiny benchmark in SingleStream on 32 synthetic samples."""
    args = ["run", "--server", address, "--benchmark", "tiny", "--dataset", "synthetic:32"]
    args += ["--scenario", "SingleStream", "--user-conf", str(conf), "--out", str(out), "--official-loadgen"]
    return edgeperf(*args, *extra)


@pytest.mark.parametrize("mode", ["PerformanceOnly", "AccuracyOnly"])
def test_edgeperf_run_official_loadgen_flag(
    tiny_server: ServerProcess, short_conf: Path, tmp_path: Path, mode: str
) -> None:
    out = tmp_path / "official"
    proc = _official_run(tiny_server.address, short_conf, out, "--mode", mode, "--no-progress")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    detail = (out / "mlperf_log_detail.txt").read_text()
    # LoadGen's own log, not edgeperf's: its version keys and its SUT name.
    assert '"key": "loadgen_version"' in detail and "PyFastSUT" in detail
    if mode == "AccuracyOnly":
        assert (out / "accuracy.txt").read_text().rstrip().splitlines()[-1].startswith("PASS")
    else:
        assert "Result is : VALID" in (out / "mlperf_log_summary.txt").read_text()
    wanted = {"mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_accuracy.json"}
    if mode == "AccuracyOnly":
        wanted.add("accuracy.txt")
    assert wanted <= {p.name for p in out.iterdir()}


def test_official_loadgen_refuses_rules_it_does_not_follow(
    tiny_server: ServerProcess, short_conf: Path, tmp_path: Path
) -> None:
    out = tmp_path / "refused"
    proc = _official_run(tiny_server.address, short_conf, out, "--rules", "v2.1")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert (
        "--official-loadgen runs the installed mlperf_loadgen 6.0.17, which follows the current rules, not "
        "--rules v2.1" in proc.stderr
    )
    assert "pass --rules current, or drop --official-loadgen" in proc.stderr
    assert not out.exists() or not any(out.iterdir())
