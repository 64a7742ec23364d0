"""client.submission: the submission tree from a suite's results folder, checked as the checkers do."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from edgeperf.client.plan.conf import preset_path
from edgeperf.client.report.submission import UNKNOWN, SubmissionSystem, system_json, write_submission
from tests.client.submission_checks import structure_errors


def _results(out: Path, accuracy_log: str) -> None:
    scenario = out / "dev" / "bert" / "SingleStream"
    (scenario / "accuracy").mkdir(parents=True)
    (scenario / "performance" / "run_1").mkdir(parents=True)
    for name in ("mlperf_log_summary.txt", "mlperf_log_detail.txt"):
        (scenario / "accuracy" / name).write_text(f"{name}\n")
        (scenario / "performance" / "run_1" / name).write_text(f"{name}\n")
    (scenario / "accuracy" / "mlperf_log_accuracy.json").write_text(accuracy_log)
    (scenario / "accuracy" / "accuracy.txt").write_text('{"exact_match": 90.0, "f1": 91.0}\nPASS F1 91.000')
    # what edgeperf keeps beside the logs, which the checkers refuse in a submission
    (scenario / "accuracy" / "result.json").write_text("{}")
    (scenario / "performance" / "run_1" / "result.json").write_text("{}")


def _submit(out: Path, accuracy_log: str, rules: str, command: str) -> Path:
    """The submission tree of `_results` for system "dev" of submitter "acme", under `rules` and its preset."""
    _results(out, accuracy_log)
    return write_submission(
        out,
        [SubmissionSystem(name="dev", description=None)],
        submitter="acme",
        rules=rules,
        preset=preset_path(rules),
        user_conf=None,
        command=command,
    )


def test_tree_of_a_large_accuracy_log_passes_the_structure_checks(tmp_path: Path) -> None:
    entries = [{"seq_id": i, "qsl_idx": i, "data": "00" * 64} for i in range(400)]
    log = "[\n" + ",\n".join(json.dumps(e) for e in entries) + "\n]\n"
    assert len(log) > 10 * 1024
    root = _submit(tmp_path, log, "v2.1", "edgeperf suite --server dev=host:8001")
    assert root == tmp_path / "submission"
    assert structure_errors(root, "v2.1") == []
    assert structure_errors(root, "current") == []
    accuracy = root / "open" / "acme" / "results" / "dev" / "bert-99" / "SingleStream" / "accuracy"
    # truncate_accuracy_log.py's result: the first and last 4096 characters, the full log's sha256
    assert (accuracy / "mlperf_log_accuracy.json").read_text() == log[:4096] + "\n\n...\n\n" + log[-4096:]
    text = (accuracy / "accuracy.txt").read_text()
    assert (
        text
        == f'{{"exact_match": 90.0, "f1": 91.0}}\nPASS F1 91.000\nhash={hashlib.sha256(log.encode()).hexdigest()}\n'
    )
    # bert is exempt from TEST04 under v2.1
    compliance = root / "open" / "acme" / "compliance" / "dev" / "bert-99" / "SingleStream"
    assert sorted(p.name for p in compliance.iterdir()) == ["TEST01", "TEST05"]


def test_missing_pieces_are_what_the_checks_name(tmp_path: Path) -> None:
    root = _submit(tmp_path, "[]\n", "current", "edgeperf suite")
    base = root / "open" / "acme"
    (base / "measurements" / "dev" / "bert-99" / "SingleStream" / "user.conf").unlink()
    (base / "results" / "dev" / "bert-99" / "SingleStream" / "accuracy" / "extra.txt").write_text("x")
    errors = structure_errors(root, "current")
    assert len(errors) == 2
    assert errors[0].endswith("SingleStream is missing user.conf")
    assert errors[1].endswith("has file list mismatch (['extra.txt'])")


def test_system_json_without_a_description_has_every_field() -> None:
    system = system_json(SubmissionSystem(name="triton-box", description=None), submitter="acme")
    assert system["framework"] == UNKNOWN and system["accelerator_model_name"] == "N/A"
    assert system["accelerators_per_node"] == "0"
    assert structure_errors(Path("/nonexistent"), "current") == []
    described = system_json(
        SubmissionSystem(
            name="jetson",
            description={
                "cpuModel": "ARMv8 Processor rev 1 (v8l)",
                "cpuCores": 12,
                "memoryBytes": str(64 * 2**30),
                "accelerators": [
                    {"name": "NVIDIA Jetson AGX Orin", "kind": "gpu", "memoryBytes": str(32 * 2**30)}
                ],
                "onnxruntimeVersion": "1.20.0",
                "onnxruntimeProviders": ["CUDAExecutionProvider", "CPUExecutionProvider"],
                "edgeperfVersion": "0.1.0",
                "os": "Linux 5.15.148-tegra",
            },
        ),
        submitter="acme",
    )
    assert described["host_processor_core_count"] == 12 and described["host_memory_capacity"] == "64.0 GB"
    assert described["accelerators_per_node"] == "1"
    assert described["accelerator_model_name"] == "NVIDIA Jetson AGX Orin"
    assert described["accelerator_memory_capacity"] == "32.0 GB"
    assert described["framework"] == (
        "edgeperf 0.1.0, ONNX Runtime 1.20.0 (CUDAExecutionProvider, CPUExecutionProvider)"
    )
