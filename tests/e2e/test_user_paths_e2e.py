"""What a new user meets first, through the installed CLI: result files they can read, and `suite --compare`
on folders that hold no results (a clear error naming the folder, exit 2, no traceback)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.e2e._runs import edgeperf, run_args, start
from tests.e2e._server import ServerProcess

pytestmark = pytest.mark.e2e


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return edgeperf(*args, preexec_fn=lambda: os.umask(0o022))


def _in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The same `edgeperf` entry point, in this process (for commands that need no server)."""
    from edgeperf.client.cli import main

    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_run_writes_result_files_with_the_umask_mode_and_compare_reads_them(
    tiny_server: ServerProcess, short_conf: Path, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    run_dir = out / "dev" / "tiny" / "SingleStream" / "performance" / "run_1"
    proc = _cli(*run_args(tiny_server.address, "SingleStream", run_dir, short_conf), "--no-progress")
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    names = {"mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_accuracy.json", "result.json"}
    assert names <= {p.name for p in run_dir.iterdir()}
    for path in (run_dir / name for name in sorted(names)):
        # mkstemp makes 0o600 files; a results file must be readable like any other new file (0o644 here).
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]

    table = _cli("suite", "--compare", str(out))
    assert table.returncode == 0, table.stderr
    assert (
        table.stdout.splitlines()[0]
        == "| Submitter | System | Processor | # | Accelerator | # | Software | tiny SingleStream (ms) |"
    )
    assert table.stdout.splitlines()[2].startswith("|  | dev |  |  |  |  |  | ")

    not_results = tmp_path / "models"
    (not_results / "tiny" / "1").mkdir(parents=True)
    mixed = _cli("suite", "--compare", str(out), str(not_results))
    assert mixed.returncode == 2
    assert mixed.stdout == ""
    assert f"edgeperf: error: --compare {not_results}: not a results folder" in mixed.stderr


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.mkdir(), "not a results folder"),
        (lambda p: p.write_text("x = 1\n"), "not a folder"),
        (lambda p: None, "no such folder"),
    ],
    ids=["empty-folder", "a-file", "missing"],
)
def test_compare_on_a_non_results_path_is_a_clear_error(
    tmp_path: Path, make: object, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "target"
    make(target)  # type: ignore[operator]
    code, out, err = _in_process(capsys, "suite", "--compare", str(target))
    assert code == 2
    assert out == ""
    assert err.strip().startswith(f"edgeperf: error: --compare {target}: {reason}")


def test_suite_option_error_goes_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _in_process(capsys, "suite", "--server", "nonsense", "--out", str(tmp_path / "out"))
    assert code == 2
    assert out == ""
    assert "edgeperf: error: suite: --server 'nonsense'" in err


def test_out_that_is_a_file_is_refused_before_the_run(
    tiny_server: ServerProcess, short_conf: Path, tmp_path: Path
) -> None:
    a_file = tmp_path / "results"
    a_file.write_text("not a folder\n")
    for out, reason in ((a_file, "not a folder"), (a_file / "ss", f"not a folder ({a_file} is a file)")):
        proc = _cli(*run_args(tiny_server.address, "SingleStream", out, short_conf), "--no-progress")
        assert proc.returncode == 1
        assert proc.stderr.strip() == f"edgeperf: error: --out {out}: {reason}"
        assert "SingleStream / PerformanceOnly" not in proc.stdout  # refused before the run, not after it


def test_compare_marks_a_summary_that_is_not_loadgens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "out" / "dev" / "tiny" / "SingleStream" / "performance" / "run_1"
    run_dir.mkdir(parents=True)
    (run_dir / "mlperf_log_summary.txt").write_text("garbage\n")
    code, out, err = _in_process(capsys, "suite", "--compare", str(tmp_path / "out"))
    assert code == 0, err
    assert "|  | dev |  |  |  |  |  | - (unreadable summary) (no accuracy) |" in out.splitlines()


async def test_benchmark_at_the_other_size_is_refused_before_the_run_with_a_hint(tmp_path: Path) -> None:
    from edgeperf.benchmarks import registry
    from edgeperf.client.errors import RunSetupError
    from edgeperf.client.plan.settings import Scenario
    from edgeperf.client.run import RunOptions, run_benchmark
    from tests.e2e._server import serve

    repo = tmp_path / "repo"
    registry.get("resnet50").write_model(repo / "resnet50", size="small")
    out = tmp_path / "out"
    with serve(repo) as server:
        options = RunOptions(
            server=server.address,
            model="resnet50",
            scenario=Scenario.OFFLINE,
            benchmark="resnet50",
            out_dir=out,
        )
        with pytest.raises(RunSetupError) as refused:
            await run_benchmark(
                options
            )  # benchmark_size defaults to "full"; the server runs the small stand-in
    assert "if the server was built with --size small, pass --size small" in str(refused.value)
    assert not out.exists()


def test_an_address_that_never_answers_ends_quickly_with_a_clear_error(tmp_path: Path) -> None:
    import socket
    import time

    with socket.socket() as listener:  # accepts TCP connections (the kernel's backlog) and never speaks gRPC
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        proc = _cli(
            *run_args(address, "SingleStream", tmp_path / "out"), "--deadline-ms", "1000", "--no-progress"
        )
        took_s = time.monotonic() - started
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"edgeperf: error: no answer from {address} within 1 s: is it an edgeperf or Triton gRPC server, "
        "and is it running?"
    )
    assert took_s < 8, "not gRPC's 20 s connection timeout"
    assert not (tmp_path / "out").exists()


def test_a_signal_delivered_twice_at_once_still_writes_complete_logs(
    tiny_server: ServerProcess, tmp_path: Path
) -> None:
    """`timeout`, systemd and container runtimes signal the process and then its group: one request, twice."""
    import signal
    import time

    conf = tmp_path / "long.conf"
    conf.write_text("*.SingleStream.min_duration = 600000\n*.SingleStream.target_latency = 1\n")
    out = tmp_path / "out"
    proc = start(*run_args(tiny_server.address, "SingleStream", out, conf), "--no-progress")
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr and "never retrieved" not in stderr
    names = ("mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_accuracy.json", "result.json")
    assert "Run interrupted by the user after" in stdout
    assert all((out / name).is_file() for name in names)
    assert json.loads((out / "result.json").read_text())["run"]["interrupted"] is True
