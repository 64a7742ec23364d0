"""The CPU-side logic of the GPU device check (tests/bench/bench_gpu.py): preflight, configs, table."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeperf.benchmarks._common import pipeline_config_text
from edgeperf.benchmarks.rnnt.model import PIPELINE_FACTORY as RNNT_PIPELINE
from edgeperf.benchmarks.rnnt.spec import SPEC as RNNT_SPEC
from edgeperf.server.gpu.nvml import GpuInfo
from edgeperf.server.model_config import load_model_config, parse_model_config
from tests.bench import bench_gpu
from tests.bench.bench_gpu import NoGpu, Row, gpu_config_text, preflight, table, write_gpu_repo
from tests.server.core_support import write_tiny

H200 = (GpuInfo(index=0, name="NVIDIA H200", uuid="GPU-x", memory_total_bytes=141 * 2**30), "570.86.15")
GPU_ORT = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_preflight_names_what_is_missing() -> None:
    with pytest.raises(NoGpu, match="no CUDAExecutionProvider"):
        preflight(["cuda"], ["CPUExecutionProvider"], [H200])
    with pytest.raises(NoGpu, match="no TensorrtExecutionProvider"):
        preflight(["cuda", "tensorrt"], GPU_ORT[1:], [H200])
    with pytest.raises(NoGpu, match="NVML sees no GPU"):
        preflight(["cuda"], GPU_ORT, [])
    assert preflight(["cuda", "tensorrt"], GPU_ORT, [H200]) == "1 x NVIDIA H200 (141 GiB), driver 570.86.15"


def test_without_a_gpu_the_script_stops_at_once_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    # This machine's onnxruntime is the CPU build: the real preflight refuses before building anything.
    assert bench_gpu.main(["--benchmarks", "resnet50", "--build-dir", "/nonexistent"]) == 2
    assert "no usable GPU here" in capsys.readouterr().err


def test_gpu_configs_parse_with_the_providers_asked_for(tmp_path: Path) -> None:
    model_dir = write_tiny(tmp_path / "src", max_batch_size=8)
    text = (model_dir / "config.pbtxt").read_text(encoding="utf-8")
    cache = tmp_path / "cache"
    trt = parse_model_config(
        gpu_config_text(text, "tensorrt", instances=2, cache_dir=cache),
        path=model_dir / "config.pbtxt",
        model_name="tiny",
    )
    assert trt.instance_devices == (0, 0)
    first = trt.ort.providers.for_device(0)[0]
    assert first.name == "TensorrtExecutionProvider"
    assert first.option_dict() == {
        "trt_fp16_enable": "True",
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache),
        "device_id": "0",
    }
    pipeline = pipeline_config_text("rnnt", RNNT_SPEC, RNNT_PIPELINE, {})
    cuda = parse_model_config(
        gpu_config_text(pipeline, "cuda", instances=1, cache_dir=cache),
        path=Path("/r/rnnt/config.pbtxt"),
        model_name="rnnt",
    )
    assert cuda.instance_devices == (0,)
    assert [p.name for p in cuda.ort.providers.for_device(0)] == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    with pytest.raises(ValueError, match="optimization block"):
        gpu_config_text(text + "optimization { graph { level: 1 } }\n", "cuda", instances=1, cache_dir=cache)


def test_write_gpu_repo_leaves_the_source_config_alone(tmp_path: Path) -> None:
    source = tmp_path / "src"
    model_dir = write_tiny(source, max_batch_size=8)
    before = (model_dir / "config.pbtxt").read_text(encoding="utf-8")
    repo = write_gpu_repo(source, "tiny", "cuda", tmp_path / "gpu", instances=2, cache_dir=tmp_path / "c")
    assert (model_dir / "config.pbtxt").read_text(encoding="utf-8") == before
    assert load_model_config(repo / "tiny").instance_devices == (0, 0)
    assert (repo / "tiny" / "1" / "model.onnx").stat().st_size == (
        model_dir / "1" / "model.onnx"
    ).stat().st_size


def test_table_gives_ratio_added_latency_and_verdicts() -> None:
    rows = [
        Row("resnet50", "tensorrt", 1000.0, 960.0, 32, 0.50, 0.70),
        Row("bert", "cuda", 400.0, 300.0, 16, 2.0, 2.6),
    ]
    lines = table(rows, ["- 3d-unet cuda: FAILED X"]).splitlines()
    assert (
        lines[2]
        == "| resnet50 | TensorRT FP16 | 1000.0 | 960.0 | 32 | 0.960 MET | 0.500 | 0.700 | 0.200 MET |"
    )
    assert lines[3] == "| bert | CUDA | 400.0 | 300.0 | 16 | 0.750 MISSED | 2.000 | 2.600 | 0.600 MISSED |"
    assert lines[4] == "- 3d-unet cuda: FAILED X"


def test_cpu_dry_run_goes_through_the_whole_procedure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The tiny model, both providers, with cpu_fallback: builds, writes the GPU configs, measures
    # in-process and through a served subprocess, prints the table. Only the GPU itself is missing.
    argv = ["--benchmarks", "tiny", "--seconds", "0.6", "--cpu-dry-run", "--build-dir", str(tmp_path)]
    assert bench_gpu.main(argv) == 0
    out = capsys.readouterr().out
    assert "--cpu-dry-run" in out
    assert "| tiny | CUDA |" in out and "| tiny | TensorRT FP16 |" in out
    assert "FAILED" not in out
