"""`edgeperf plot`: latency CDFs and throughput against latency from results folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgeperf.client.cli import main
from edgeperf.client.latency_dump import write_latencies
from edgeperf.client.plots import load_run
from edgeperf.client.results import RunRecorder


def _run_folder(folder: Path, latencies_ns: list[int], scenario: str = "Server") -> Path:
    rec = RunRecorder.for_schedule(np.arange(len(latencies_ns)).reshape(-1, 1))
    rec.mark_start(0)
    for q, latency in enumerate(latencies_ns):
        rec.record_issue(q, q * 1_000_000, q * 1_000_000)
        rec.record_sample_complete(q, 0, q * 1_000_000, q * 1_000_000 + latency)
    write_latencies(folder, rec.finish(len(latencies_ns) * 1_000_000))
    metrics = {"completed_samples_per_sec": 500.0, "samples_per_second": 0.0}
    (folder / "result.json").write_text(json.dumps({"scenario": scenario, "metrics": metrics}))
    return folder


def test_load_run_reads_sorted_latencies_and_throughput(tmp_path: Path) -> None:
    run = load_run(_run_folder(tmp_path, [3_000_000, 1_000_000, 2_000_000]))
    assert run.latencies_ms.tolist() == [1.0, 2.0, 3.0]
    assert run.throughput == 500.0 and 2.9 < run.p99_ms <= 3.0


def test_plot_command_writes_a_png(tmp_path: Path, capsys) -> None:
    a = _run_folder(tmp_path / "a", [1_000_000 * (i % 7 + 1) for i in range(50)])
    b = _run_folder(tmp_path / "b", [2_000_000 * (i % 5 + 1) for i in range(50)])
    out = tmp_path / "plot.png"
    assert main(["plot", str(a), str(b), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().out


def test_a_folder_without_a_performance_run_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["plot", str(tmp_path)]) == 1
    assert "no latencies.npz and result.json here" in capsys.readouterr().err
