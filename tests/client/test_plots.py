"""`edgeperf plot`: latency CDFs and throughput against latency from results folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgeperf.client.cli import main
from edgeperf.client.issue.recorder import RunRecorder
from edgeperf.client.report.latency_dump import write_latencies
from edgeperf.client.report.plots import load_run


def _run_folder(folder: Path, latencies_ns: list[int], scenario: str = "Server") -> Path:
    rec = RunRecorder(
        samples_per_query=1, n_queries=len(latencies_ns), sample_indices=np.arange(len(latencies_ns))
    )
    rec.mark_start(0)
    for q, latency in enumerate(latencies_ns):
        rec.record_issue(q, q * 1_000_000, q * 1_000_000)
        rec.record_sample_complete(rec.slot(q, 0), q * 1_000_000, q * 1_000_000 + latency)
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


def test_legends_name_the_model_and_scenario_or_the_suite_cell(tmp_path: Path) -> None:
    run = _run_folder(tmp_path / "results", [1_000_000] * 20, scenario="Offline")
    doc = json.loads((run / "result.json").read_text())
    doc["sut_name"] = "edgeperf gRPC SUT (10.0.0.2:8001, resnet50, unary)"
    (run / "result.json").write_text(json.dumps(doc))
    cell = tmp_path / "suite" / "jetson" / "bert" / "Offline" / "performance" / "run_1"
    cell.mkdir(parents=True)
    _run_folder(cell, [1_000_000] * 20, scenario="Offline")
    out = tmp_path / "plot.svg"
    assert main(["plot", str(run), str(cell), "--out", str(out)]) == 0
    svg = out.read_text()
    # matplotlib's SVG keeps each text as a comment before its glyphs
    assert "<!-- resnet50/Offline -->" in svg and "<!-- jetson/bert/Offline -->" in svg
    assert "run_1" not in svg


def test_an_image_format_matplotlib_cannot_write_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    run = _run_folder(tmp_path / "a", [1_000_000] * 20)
    assert main(["plot", str(run), "--out", str(tmp_path / "x.bmpx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot draw a .bmpx image; use one of" in err[0] and ".png" in err[0]
    assert not (tmp_path / "x.bmpx").exists()


def test_an_unwritable_target_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    run = _run_folder(tmp_path / "a", [1_000_000] * 20)
    (tmp_path / "file").write_text("")
    # a path under a regular file cannot be written, whoever runs the test (root ignores permissions)
    assert main(["plot", str(run), "--out", str(tmp_path / "file" / "plot.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"edgeperf: error: --out {tmp_path / 'file' / 'plot.png'}: cannot write"
    )
