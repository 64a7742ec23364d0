"""client.suite without a network: the submission layout, the tables and --compare, with a scripted runner.

The runner stands in for `run_benchmark` (the suite's documented seam) and writes LoadGen-shaped
summaries; `test_suite.py` drives the same code through a real server.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from edgeperf.benchmarks.base import AccuracyReport
from edgeperf.client import suite, suite_cli
from edgeperf.client.plan.settings import Scenario, TestMode
from edgeperf.client.report.finish import write_accuracy_txt
from edgeperf.client.run import RunOptions, RunOutcome

SUMMARY_HEAD = """================================================
MLPerf Results Summary
================================================
SUT name : edgeperf
Scenario : {scenario}
Mode     : PerformanceOnly
"""
SS_SUMMARY = (
    SUMMARY_HEAD.format(scenario="SingleStream")
    + """90th percentile latency (ns) : 2500000
Result is : {validity}
  Min duration satisfied : Yes
  Min queries satisfied : Yes
  Early stopping satisfied: Yes
Early Stopping Result:
 * Processed at least 64 queries (2074).
 * Would discard 174 highest latency queries.
 * Early stopping 90th percentile estimate: 3250000
 * Early stopping 99th percentile estimate: 9000000
"""
)
OFFLINE_SUMMARY = (
    SUMMARY_HEAD.format(scenario="Offline")
    + """Samples per second: 1234.5
Result is : VALID
"""
)


class ScriptedRunner:
    def __init__(self, *, accuracy_passes: bool = True, ss_validity: str = "VALID") -> None:
        self.calls: list[RunOptions] = []
        self.accuracy_passes = accuracy_passes
        self.ss_validity = ss_validity

    async def __call__(self, options: RunOptions) -> RunOutcome:
        self.calls.append(options)
        report = None
        validity = "VALID"
        if options.mode is TestMode.ACCURACY_ONLY:
            verdict = "PASS" if self.accuracy_passes else "FAIL"
            text = f'{{"exact_match": 90.0, "f1": 95.0}}\n{verdict} F1 95.000 target 89.965\n'
            report = AccuracyReport(
                metric="F1", value=95.0, target=89.965, passed=self.accuracy_passes, text=text
            )
            (options.out_dir / "mlperf_log_accuracy.json").write_text("[]")
            # as a real run does (`finish_run`): accuracy.txt beside the logs
            write_accuracy_txt(options.out_dir / "accuracy.txt", report)
        else:
            if options.scenario is Scenario.SINGLE_STREAM:
                summary = SS_SUMMARY.format(validity=self.ss_validity)
                validity = self.ss_validity
            else:
                summary = OFFLINE_SUMMARY
            (options.out_dir / "mlperf_log_summary.txt").write_text(summary)
        return RunOutcome(
            validity=validity,
            invalid_reasons=() if validity == "VALID" else ("min duration not met",),
            out_dir=options.out_dir,
            files=(),
            summary_text="",
            result_json={},
            accuracy=report,
        )


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="edgeperf")
    suite_cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_parse_summary_reads_the_scenario_metric() -> None:
    assert suite.parse_summary(SS_SUMMARY.format(validity="VALID")) == (
        "SingleStream",
        "latency_ms",
        3.25,
        True,
    )
    assert suite.parse_summary(OFFLINE_SUMMARY) == ("Offline", "samples_per_s", 1234.5, True)
    plain = SS_SUMMARY.format(validity="INVALID").split("Early Stopping Result")[0]
    assert suite.parse_summary(plain) == ("SingleStream", "latency_ms", 2.5, False)
    server = "Scenario : Server\nResult is : VALID\nScheduled samples per second : 99.50\n"
    assert suite.parse_summary(server)[2] == 99.5


async def test_suite_writes_the_submission_layout_and_tables(tmp_path: Path) -> None:
    runner = ScriptedRunner()
    options = suite.SuiteOptions(
        targets=(suite.SuiteTarget(system="jetson", address="127.0.0.1:1"),),
        benchmarks=("bert", "3d-unet"),
        datasets={"bert": "synthetic:8", "*": "synthetic:2"},
        out_dir=tmp_path,
        size="small",
    )
    ok, cells = await suite.run_suite_options(options, runner=runner, log=lambda _: None)
    assert ok
    # Each benchmark's required Edge scenarios, accuracy then performance.
    assert [(c.benchmark, c.scenario.value, c.mode) for c in runner.calls] == [
        ("bert", "SingleStream", TestMode.ACCURACY_ONLY),
        ("bert", "SingleStream", TestMode.PERFORMANCE_ONLY),
        ("bert", "Offline", TestMode.ACCURACY_ONLY),
        ("bert", "Offline", TestMode.PERFORMANCE_ONLY),
        ("3d-unet", "SingleStream", TestMode.ACCURACY_ONLY),
        ("3d-unet", "SingleStream", TestMode.PERFORMANCE_ONLY),
        ("3d-unet", "Offline", TestMode.ACCURACY_ONLY),
        ("3d-unet", "Offline", TestMode.PERFORMANCE_ONLY),
    ]
    assert {c.dataset for c in runner.calls if c.benchmark == "bert"} == {"synthetic:8"}
    assert {c.dataset for c in runner.calls if c.benchmark == "3d-unet"} == {"synthetic:2"}
    assert all(c.benchmark_size == "small" and c.model == c.benchmark for c in runner.calls)
    bert_ss = tmp_path / "jetson" / "bert" / "SingleStream"
    assert (bert_ss / "performance" / "run_1" / "mlperf_log_summary.txt").is_file()
    assert (bert_ss / "accuracy" / "accuracy.txt").read_text().splitlines()[-1].startswith("PASS")
    assert len(cells) == 4
    markdown = (tmp_path / "results.md").read_text()
    assert markdown.splitlines()[0] == (
        "| Submitter | System | Processor | # | Accelerator | # | Software | 3d-unet SingleStream (ms) | 3d-unet Offline (samples/s) "
        "| bert SingleStream (ms) | bert Offline (samples/s) |"
    )
    assert markdown.splitlines()[2] == "| edgeperf | jetson |  |  |  |  |  | 3.25 | 1234 | 3.25 | 1234 |"
    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith(
        "system,Submitter,System,Processor,#,Accelerator,#,Software,3d-unet SingleStream (ms),"
        "3d-unet SingleStream validity,"
    )
    assert csv_lines[1] == "jetson,edgeperf,jetson,,,,," + ",3.25,VALID,PASS,1234.5,VALID,PASS" * 2


async def test_failed_gate_or_invalid_run_fails_the_suite_and_marks_the_cell(tmp_path: Path) -> None:
    options = suite.SuiteOptions(
        targets=(suite.SuiteTarget(system="pi", address="127.0.0.1:1"),),
        benchmarks=("bert",),
        scenarios=("SingleStream",),
        out_dir=tmp_path,
    )
    runner = ScriptedRunner(accuracy_passes=False, ss_validity="INVALID")
    ok, cells = await suite.run_suite_options(options, runner=runner, log=lambda _: None)
    assert not ok
    (cell,) = cells
    assert (cell.valid, cell.accuracy_verdict) == (False, "FAIL")
    assert "| pi |  |  |  |  |  | 3.25 (INVALID) (accuracy FAIL) |" in (tmp_path / "results.md").read_text()


async def test_compare_prints_one_row_per_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for system, validity in (("jetson", "VALID"), ("rpi", "INVALID")):
        options = suite.SuiteOptions(
            targets=(suite.SuiteTarget(system=system, address="127.0.0.1:1"),),
            benchmarks=("bert",),
            scenarios=("SingleStream",),
            out_dir=tmp_path / system,
        )
        await suite.run_suite_options(
            options, runner=ScriptedRunner(ss_validity=validity), log=lambda _: None
        )
    args = _parse(["suite", "--compare", str(tmp_path / "jetson"), str(tmp_path / "rpi" / "rpi")])
    assert await args.handler(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[0]
        == "| Submitter | System | Processor | # | Accelerator | # | Software | bert SingleStream (ms) |"
    )
    assert lines[2:4] == [
        "| edgeperf | jetson |  |  |  |  |  | 3.25 |",
        "| edgeperf | rpi |  |  |  |  |  | 3.25 (INVALID) |",
    ]


def test_official_loadgen_folders_without_a_gate_line_are_read(tmp_path: Path) -> None:
    base = tmp_path / "dgx" / "bert" / "Offline"
    (base / "performance" / "run_1").mkdir(parents=True)
    (base / "accuracy").mkdir()
    (base / "performance" / "run_1" / "mlperf_log_summary.txt").write_text(OFFLINE_SUMMARY)
    (base / "accuracy" / "accuracy.txt").write_text('{"exact_match": 83.7, "f1": 90.9}\n')
    (cell,) = suite.collect_results(tmp_path)
    assert (cell.value, cell.valid, cell.accuracy_verdict, cell.accuracy_present) == (
        1234.5,
        True,
        None,
        True,
    )
    assert (
        suite.render_markdown([cell]).splitlines()[2]
        == "|  | dgx |  |  |  |  |  | 1234 (accuracy not gated) |"
    )


def test_command_line_options() -> None:
    argv = (
        "suite --server a=10.0.0.1:8001 --server b=10.0.0.2:8001 --benchmarks bert rnnt --scenarios Offline"
    )
    argv += " --dataset synthetic:16 --dataset bert=/data/squad --size small"
    args = _parse(argv.split())
    options = suite_cli.options_from_args(args)
    assert options.targets == (
        suite.SuiteTarget(system="a", address="10.0.0.1:8001"),
        suite.SuiteTarget(system="b", address="10.0.0.2:8001"),
    )
    assert options.benchmarks == ("bert", "rnnt") and options.scenarios == ("Offline",)
    assert options.datasets == {"*": "synthetic:16", "bert": "/data/squad"} and options.size == "small"
    single = suite_cli.options_from_args(_parse(["suite", "--server", "127.0.0.1:8001", "--system", "nuc"]))
    assert single.targets == (suite.SuiteTarget(system="nuc", address="127.0.0.1:8001"),)
    assert single.benchmarks == ("resnet50", "retinanet", "3d-unet", "rnnt", "bert")


@pytest.mark.parametrize(
    ("argv", "phrase"),
    [
        ([], "--server HOST:PORT is required"),
        (["--server", "nohost"], "HOST:PORT"),
        (["--server", "a=h:1", "--server", "a=h:2"], "same system name"),
        (["--server", "h:1", "--benchmarks", "gpt"], "unknown benchmark 'gpt'"),
        (["--server", "h:1", "--model", "gpt=x"], "--model 'gpt=x'"),
    ],
)
async def test_bad_options_are_named(
    argv: list[str], phrase: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parse(["suite", *argv])
    assert await args.handler(args) == 2
    assert phrase in capsys.readouterr().err
