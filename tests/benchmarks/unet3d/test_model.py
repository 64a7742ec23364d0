"""The 3D-UNet spec, the stand-in's tensors, the real-model check and the model-repository layout."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from edgeperf.benchmarks import registry
from edgeperf.benchmarks.unet3d import BENCHMARK, SPEC
from edgeperf.benchmarks.unet3d.model import (
    FULL,
    SMALL,
    ModelCheckError,
    PipelineSettings,
    build_standin,
    check_patch_model,
    write_model,
)
from edgeperf.benchmarks.unet3d.spec import PATCH_INPUT, PATCH_OUTPUT


def test_spec_follows_the_v21_rules() -> None:
    assert registry.get("3d-unet") is BENCHMARK
    assert SPEC.mlperf_model == "3d-unet"
    assert SPEC.qsl_size == 42 and SPEC.dataset_size == 43
    assert SPEC.quality.metric == "DICE" and SPEC.quality.reference_value == 0.86170
    assert SPEC.quality.fractions == (0.99, 0.999)
    assert SPEC.edge_scenarios == ("SingleStream", "Offline")
    assert [(t.name, t.datatype, t.shape) for t in SPEC.inputs] == [("image", "FP32", (1, -1, -1, -1))]
    assert [(t.name, t.datatype, t.shape) for t in SPEC.outputs] == [
        ("segmentation", "UINT8", (1, -1, -1, -1))
    ]
    assert (PATCH_INPUT.name, PATCH_INPUT.shape) == ("input", (1, 1, 128, 128, 128))
    assert (PATCH_OUTPUT.name, PATCH_OUTPUT.shape) == ("output", (1, 3, 128, 128, 128))


def test_full_size_is_the_kits19_layout() -> None:
    assert FULL.filters == (32, 64, 128, 256, 320) and FULL.roi == 128
    assert SMALL.roi == 32


def test_small_standin_tensors_match_the_patch_spec() -> None:
    model = build_standin("small")
    onnx.checker.check_model(model)
    assert check_patch_model(model) == 32
    ops = {n.op_type for n in model.graph.node}
    assert {"Conv", "InstanceNormalization", "LeakyRelu", "ConvTranspose", "Concat"} <= ops
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    patch = np.random.default_rng(0).standard_normal((2, 1, 32, 32, 32)).astype(np.float32)
    (out,) = session.run(["output"], {"input": patch})
    assert out.shape == (2, 3, 32, 32, 32) and out.dtype == np.float32
    # deterministic weights: a second build is byte-identical
    assert build_standin("small").SerializeToString() == model.SerializeToString()


def _graph(in_name: str, out_name: str, in_shape: list[int], out_shape: list[int]) -> onnx.ModelProto:
    node = helper.make_node("Identity", [in_name], [out_name])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)],
    )
    return helper.make_model(graph)


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        (_graph("x", "output", [1, 1, 8, 8, 8], [1, 3, 8, 8, 8]), "expected input"),
        (_graph("input", "output", [1, 2, 8, 8, 8], [1, 3, 8, 8, 8]), r"\[N, 1, R, R, R\]"),
        (_graph("input", "output", [1, 1, 8, 8, 4], [1, 3, 8, 8, 4]), "cubic"),
        (_graph("input", "output", [1, 1, 8, 8, 8], [1, 2, 8, 8, 8]), r"\[N, 3, R, R, R\]"),
    ],
)
def test_check_rejects_other_layouts(model: onnx.ModelProto, reason: str) -> None:
    with pytest.raises(ModelCheckError, match=reason):
        check_patch_model(model)


def test_write_model_lays_out_a_pipeline_model(small_model: Path) -> None:
    config = (small_model / "config.pbtxt").read_text()
    assert 'name: "3d-unet"' in config
    assert 'platform: "edgeperf_pipeline"' in config
    assert "max_batch_size: 0" in config
    assert 'string_value: "edgeperf.benchmarks.unet3d.pipeline:build"' in config
    assert 'name: "image" data_type: TYPE_FP32 dims: [ 1, -1, -1, -1 ]' in config
    assert 'name: "segmentation" data_type: TYPE_UINT8 dims: [ 1, -1, -1, -1 ]' in config
    settings = PipelineSettings.from_json((small_model / "1" / "pipeline.json").read_text())
    assert settings == PipelineSettings(roi=32, overlap=0.5, model_file="model.onnx")


def test_write_model_from_file_checks_and_returns_the_checksum(tmp_path: Path, small_model: Path) -> None:
    official = small_model / "1" / "model.onnx"
    digest = write_model(tmp_path / "unet", from_file=official)
    assert digest == hashlib.sha256(official.read_bytes()).hexdigest()
    assert (tmp_path / "unet" / "1" / "model.onnx").read_bytes() == official.read_bytes()
    config = (tmp_path / "unet" / "config.pbtxt").read_text()
    assert f'key: "edgeperf_model_sha256" value: {{ string_value: "{digest}" }}' in config
    assert 'key: "edgeperf_model_source" value: { string_value: "file" }' in config
    assert 'key: "edgeperf_division" value: { string_value: "unverified" }' in config
    wrong = tmp_path / "wrong.onnx"
    wrong.write_bytes(_graph("x", "y", [1, 1, 8, 8, 8], [1, 3, 8, 8, 8]).SerializeToString())
    with pytest.raises(ModelCheckError):
        write_model(tmp_path / "other", from_file=wrong)
