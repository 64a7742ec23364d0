"""`edgeperf suite` end to end: a real server on loopback with the small BERT stand-in, every required
Edge scenario in accuracy and performance mode, the submission layout, accuracy.txt with the gate verdict,
the results tables and `--compare`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeperf.benchmarks import registry
from edgeperf.benchmarks.bert import BENCHMARK
from edgeperf.client.cli import build_parser
from tests.e2e._server import ServerProcess, serve

# NOTE: the synthetic ground truth of each test goes to its own folder (cache_dir), not ~/.cache.
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("cache_dir")]

# Short runs: SingleStream keeps LoadGen's early-stopping floor of 64 queries. Offline issues
# target_qps x min_duration x 1.1 = 440 samples, which take longer than its 20 ms minimum at any speed
# below 22,000 samples/s (a target QPS under the real one makes the run INVALID: too short).
SUITE_CONF = """\
bert.SingleStream.min_duration = 100
bert.SingleStream.min_query_count = 64
bert.SingleStream.target_latency = 1
bert.Offline.min_duration = 20
bert.Offline.min_query_count = 1
bert.Offline.target_qps = 20000
"""


@pytest.fixture(scope="module")
def bert_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    repo = tmp_path_factory.mktemp("bert-repo")
    registry.get("bert").write_model(repo / "bert", size="small")
    BENCHMARK.write_model(repo / "bert-int8", size="small", precision="int8")
    with serve(repo, "--no-metrics") as server:
        yield server


async def _suite(argv: list[str]) -> int:
    args = build_parser().parse_args(["suite", *argv])
    code: int = await args.handler(args)
    return code


async def test_suite_writes_submission_layout_with_accuracy_gate(
    bert_server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "user.conf"
    conf.write_text(SUITE_CONF, encoding="utf-8")
    out = tmp_path / "results"
    argv = ["--server", f"edge-a={bert_server.address}", "--benchmarks", "bert", "--size", "small"]
    argv += ["--dataset", "synthetic:24", "--user-conf", str(conf), "--out", str(out), "--batch-size", "8"]
    code = await _suite(argv)
    printed = capsys.readouterr().out
    assert code == 0, printed
    for scenario in ("SingleStream", "Offline"):
        base = out / "edge-a" / "bert" / scenario
        summary = (base / "performance" / "run_1" / "mlperf_log_summary.txt").read_text()
        assert f"Scenario : {scenario}" in summary and "Result is : VALID" in summary
        assert (base / "performance" / "run_1" / "mlperf_log_detail.txt").is_file()
        accuracy_log = json.loads((base / "accuracy" / "mlperf_log_accuracy.json").read_text())
        assert sorted({entry["qsl_idx"] for entry in accuracy_log}) == list(range(24))
        accuracy = (base / "accuracy" / "accuracy.txt").read_text().splitlines()
        # The FP32 stand-in served over gRPC reproduces its own in-process answers: F1 100, gate PASS.
        scores = json.loads(accuracy[-3])
        assert scores["f1"] == pytest.approx(100.0) and scores["exact_match"] == pytest.approx(100.0)
        assert accuracy[-1].startswith("PASS F1 100.000 target 99.000")
    table = (out / "results.md").read_text().splitlines()
    assert (
        table[0]
        == "| Submitter | System | Processor | # | Accelerator | # | Software | bert SingleStream (ms) | bert Offline (samples/s) |"
    )
    row = table[2].strip("| ").split(" | ")
    # NOTE: the system columns come from the server's SystemDescription (systems/edge-a.json).
    assert row[:2] == ["edgeperf", "edge-a"] and row[3] == "1", table[2]
    assert all(float(cell) > 0 for cell in row[7:]), table[2]
    assert (
        (out / "results.csv")
        .read_text()
        .splitlines()[0]
        .startswith("system,Submitter,System,Processor,#,Accelerator,#,Software,bert SingleStream (ms)")
    )
    assert (out / "report.html").is_file() and (out / "systems" / "edge-a.json").is_file()
    assert table[2] in printed

    # A second "device" (the same server under another name, Offline performance only), then --compare.
    other = tmp_path / "results-b"
    argv = ["--server", f"edge-b={bert_server.address}", "--benchmarks", "bert", "--scenarios", "Offline"]
    argv += ["--modes", "performance", "--size", "small", "--dataset", "synthetic:24"]
    argv += ["--user-conf", str(conf), "--out", str(other)]
    assert await _suite(argv) == 0  # performance only, as asked: the table marks the missing accuracy
    capsys.readouterr()
    assert await _suite(["--compare", str(out), str(other)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[0]
        == "| Submitter | System | Processor | # | Accelerator | # | Software | bert SingleStream (ms) | bert Offline (samples/s) |"
    )
    assert lines[2].startswith("| edgeperf | edge-a | ") and lines[3].startswith("| edgeperf | edge-b | ")
    assert lines[3].split(" | ")[7] == ""
    assert lines[3].endswith("(no accuracy) |")


async def test_suite_gates_an_int8_variant_served_under_another_name(
    bert_server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    argv = ["--server", f"int8={bert_server.address}", "--benchmarks", "bert", "--model", "bert=bert-int8"]
    argv += [
        "--scenarios",
        "SingleStream",
        "--modes",
        "accuracy",
        "--size",
        "small",
        "--dataset",
        "synthetic:48",
    ]
    code = await _suite([*argv, "--out", str(out)])
    capsys.readouterr()
    lines = (out / "int8" / "bert" / "SingleStream" / "accuracy" / "accuracy.txt").read_text().splitlines()
    f1 = json.loads(lines[-3])["f1"]
    # Scored against the FP32 stand-in's answers: the verdict and the exit status follow the int8 value.
    assert 0.0 < f1 <= 100.0
    passed = f1 >= 99.0
    assert lines[-1].startswith(f"{'PASS' if passed else 'FAIL'} F1 {f1:.3f} target 99.000")
    assert code == (0 if passed else 1)
