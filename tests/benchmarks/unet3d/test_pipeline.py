"""The server-side pipeline through onnxruntime, and the gate on synthetic cases with FP32 ground truth."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import load, save

from edgeperf.benchmarks.unet3d import BENCHMARK
from edgeperf.benchmarks.unet3d.pipeline import build
from tests.benchmarks._checks import answers, check_unknown_output_and_close, small_score


def test_pipeline_segments_a_case(
    small_model: Path, make_session: Callable[[Path], Any], cache_dir: Path
) -> None:
    made: list[Path] = []

    def tracking(path: Path) -> Any:
        made.append(path)
        return make_session(path)

    pipeline = build(small_model / "1", tracking)
    assert made == [small_model / "1" / "model.onnx"]
    pipeline.warmup()
    dataset = BENCHMARK.open_dataset("synthetic:2", size="small")
    image = dataset.sample(0)["image"]
    out = pipeline.run({"image": image}, ["segmentation"])
    assert list(out) == ["segmentation"]
    labels = out["segmentation"]
    assert labels.shape == image.shape and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {0, 1, 2} and len(np.unique(labels)) > 1
    check_unknown_output_and_close(pipeline, {"image": image}, "segmentation", "output")


def test_fp32_standin_passes_and_a_degraded_one_fails(
    small_model: Path, make_session: Callable[[Path], Any], cache_dir: Path
) -> None:
    dataset, outputs = answers(
        BENCHMARK, build(small_model / "1", make_session), "synthetic:1", "segmentation"
    )
    assert (outputs[0] == 2).any()
    fp32 = small_score(BENCHMARK, dataset, outputs)
    assert fp32.passed and fp32.value == pytest.approx(1.0)
    assert fp32.text.splitlines()[-1].startswith("PASS: DICE 1.00000 >= target 0.99000")
    assert any(cache_dir.rglob("case_00000.npy"))  # ground truth cached for the next run
    degraded = [np.where(o == 2, 1, o).astype(np.uint8) for o in outputs]  # tumour lost to kidney
    worse = small_score(BENCHMARK, dataset, degraded)
    assert not worse.passed and worse.value < 0.99


def test_fp16_variant_keeps_99_percent_and_records_its_precision(
    tmp_path: Path, make_session: Callable[[Path], Any], cache_dir: Path
) -> None:
    BENCHMARK.write_model(tmp_path / "3d-unet-fp16", size="small", precision="fp16")
    config = (tmp_path / "3d-unet-fp16" / "config.pbtxt").read_text()
    assert 'key: "edgeperf_precision" value: { string_value: "fp16" }' in config
    assert 'key: "edgeperf_division" value: { string_value: "open" }' in config
    pipeline = build(tmp_path / "3d-unet-fp16" / "1", make_session)
    dataset = BENCHMARK.open_dataset("synthetic:1", size="small")
    labels = pipeline.run(dataset.sample(0), ["segmentation"])["segmentation"]
    result = BENCHMARK.accuracy(dataset, [(0, labels.tobytes())], size="small")
    assert result.passed and 0.99 < result.value <= 1.0


def test_patch_batches_need_a_graph_that_takes_them(
    tmp_path: Path, small_model: Path, make_session: Callable[[Path], Any]
) -> None:
    version = tmp_path / "1"
    shutil.copytree(small_model / "1", version)
    settings = json.loads((version / "pipeline.json").read_text())
    (version / "pipeline.json").write_text(json.dumps({**settings, "patch_batch": 2}))
    build(version, make_session)  # the stand-in's batch dimension is dynamic
    model = load(str(version / "model.onnx"))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1  # as the official fixed-batch file
    save(model, str(version / "model.onnx"))
    with pytest.raises(ValueError, match="patch_batch"):
        build(version, make_session)
