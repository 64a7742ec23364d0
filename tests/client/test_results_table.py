"""The results page table: MLPerf's system columns, power columns only where measured, the CSV beside it,
and the systems/*.json description with its --system-json override."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeperf.client.errors import EdgeperfClientError
from edgeperf.client.report.results_table import CellResult, collect_results, render_csv, render_markdown
from edgeperf.client.report.system_json import from_description, load_override, read_systems, write_system
from edgeperf.protos import edgeperf_service_pb2 as epb

SYSTEMS = {
    "jetson": {
        "submitter": "Lab",
        "system_name": "Jetson Orin NX",
        "host_processor_model_name": "Cortex-A78AE",
        "host_processors_per_node": 1,
        "accelerator_model_name": "Orin GPU",
        "accelerators_per_node": 1,
        "framework": "ONNX Runtime 1.20",
    }
}


def _cell(
    system: str,
    scenario: str,
    value: float,
    *,
    valid: bool = True,
    power_w: float | None = None,
    energy_mj_per_query: float | None = None,
) -> CellResult:
    """A resnet50 cell with a passing accuracy."""
    metric = "latency_ms" if scenario == "SingleStream" else "samples_per_s"
    return CellResult(
        system=system,
        benchmark="resnet50",
        scenario=scenario,
        metric=metric,
        value=value,
        valid=valid,
        accuracy_verdict="PASS",
        power_w=power_w,
        energy_mj_per_query=energy_mj_per_query,
    )


def _cells() -> list[CellResult]:
    return [
        _cell("jetson", "SingleStream", 2.5, power_w=9.5, energy_mj_per_query=23.75),
        _cell("jetson", "Offline", 400.0, power_w=11.0),
        _cell("rpi", "SingleStream", 40.0),
        _cell("rpi", "Offline", 25.0, valid=False),
    ]


def test_markdown_has_the_mlperf_columns_and_power_where_measured() -> None:
    lines = render_markdown(_cells(), SYSTEMS).splitlines()
    assert lines[0] == (
        "| Submitter | System | Processor | # | Accelerator | # | Software "
        "| resnet50 SingleStream (ms) | resnet50 SingleStream Energy per stream (mJ) "
        "| resnet50 Offline (samples/s) | resnet50 Offline System power (W) |"
    )
    assert lines[2] == (
        "| Lab | Jetson Orin NX | Cortex-A78AE | 1 | Orin GPU | 1 | ONNX Runtime 1.20 "
        "| 2.5 | 23.75 | 400 | 11 |"
    )
    assert lines[3] == "|  | rpi |  |  |  |  |  | 40 |  | 25 (INVALID) |  |"


def test_no_power_anywhere_means_no_power_columns() -> None:
    cells = [c for c in _cells() if c.system == "rpi"]
    assert "Energy per stream" not in render_markdown(cells) and "System power" not in render_csv(cells)


def test_csv_keeps_raw_values_and_the_power_column() -> None:
    rows = render_csv(_cells(), SYSTEMS).splitlines()
    assert rows[0].startswith(
        "system,Submitter,System,Processor,#,Accelerator,#,Software,resnet50 SingleStream (ms),"
    )
    assert "resnet50 Offline System power (W)" in rows[0]
    assert rows[1].endswith(",400.0,VALID,PASS,11.0")
    assert rows[2].startswith("rpi,,rpi,")


def test_power_is_read_back_from_result_json(tmp_path: Path) -> None:
    run = tmp_path / "a" / "resnet50" / "SingleStream" / "performance" / "run_1"
    run.mkdir(parents=True)
    (run / "mlperf_log_summary.txt").write_text(
        "Scenario : SingleStream\nResult is : VALID\nEarly stopping 90th percentile estimate: 2500000\n"
    )
    (run / "result.json").write_text(
        json.dumps({"power": {"measured": True, "average_w": 9.0, "mj_per_query": 22.5}})
    )
    [cell] = collect_results(tmp_path)
    assert (cell.power_w, cell.energy_mj_per_query, cell.performance_dir) == (9.0, 22.5, run)
    (run / "result.json").write_text(json.dumps({"power": {"measured": False, "reason": "none"}}))
    [cell] = collect_results(tmp_path)
    assert cell.power_w is None and cell.energy_mj_per_query is None


def test_system_json_from_the_device_and_overrides(tmp_path: Path) -> None:
    desc = epb.SystemDescriptionResponse(
        host_name="orin",
        os="Linux 5.15",
        cpu_model="ARMv8 Cortex-A78AE",
        cpu_cores=8,
        memory_bytes=16 * 2**30,
        accelerators=[
            epb.Accelerator(name="CUDA", kind="execution-provider"),
            epb.Accelerator(name="Orin", kind="gpu", memory_bytes=16 * 2**30),
        ],
        onnxruntime_version="1.20.1",
        onnxruntime_providers=["CUDAExecutionProvider", "CPUExecutionProvider"],
        edgeperf_version="0.1.0",
        python_version="3.11.9",
        machine="aarch64",
        power_sources=[epb.PowerSourceInfo(name="jetson:VDD_IN", covers="whole board (VDD_IN input rail)")],
    )
    doc = from_description(desc, "orin")
    assert doc["host_processor_model_name"] == "ARMv8 Cortex-A78AE" and doc["host_processor_core_count"] == 8
    assert doc["accelerator_model_name"] == "Orin" and doc["accelerators_per_node"] == 1
    assert doc["host_memory_capacity"] == "16 GB" and doc["framework"] == "ONNX Runtime 1.20.1"
    assert doc["sw_notes"] == "power: jetson:VDD_IN (whole board (VDD_IN input rail))"
    override = tmp_path / "orin.json"
    override.write_text(json.dumps({"submitter": "Lab", "host_processors_per_node": 2}))
    doc.update(load_override(override))
    write_system(tmp_path / "out", "orin", doc)
    assert read_systems(tmp_path / "out")["orin"]["submitter"] == "Lab"
    assert read_systems(tmp_path / "out" / "orin")["orin"]["host_processors_per_node"] == 2
    for text, message in (("[1]", "expected an object"), ("{", "not JSON"), ('{"a": true}', "'a' must be")):
        override.write_text(text)
        with pytest.raises(EdgeperfClientError, match=message):
            load_override(override)
    with pytest.raises(EdgeperfClientError, match="cannot read"):
        load_override(tmp_path / "missing.json")
