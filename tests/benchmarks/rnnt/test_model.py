"""The RNN-T spec, the three stand-in graphs' tensors, and the model-repository layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgeperf.benchmarks import registry
from edgeperf.benchmarks.rnnt import BENCHMARK, SPEC
from edgeperf.benchmarks.rnnt.model import (
    FULL,
    ModelCheckError,
    RnntConfig,
    build_encoder,
    build_prediction,
    write_model,
)
from edgeperf.benchmarks.rnnt.spec import BLANK_INDEX, LABELS


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_spec_follows_the_v21_rules() -> None:
    assert registry.get("rnnt") is BENCHMARK
    assert SPEC.qsl_size == 2513 and SPEC.dataset_size == 2513
    assert SPEC.quality.metric == "WER" and SPEC.quality.reference_value == 0.07452
    assert SPEC.quality.fractions == (0.99,) and not SPEC.quality.higher_is_better
    assert SPEC.edge_scenarios == ("SingleStream", "Offline")
    assert [(t.name, t.datatype, t.shape) for t in SPEC.inputs] == [("audio", "FP32", (-1,))]
    assert [(t.name, t.datatype, t.shape) for t in SPEC.outputs] == [("tokens", "INT64", (-1,))]
    assert LABELS[0] == " " and LABELS[-1] == "'" and len(LABELS) == 28 and BLANK_INDEX == 28


def test_full_size_is_the_reference_layout() -> None:
    assert (FULL.encoder_hidden, FULL.pre_layers, FULL.post_layers, FULL.stack_time) == (1024, 2, 3, 2)
    assert (FULL.pred_hidden, FULL.pred_layers, FULL.joint_hidden) == (320, 2, 512)
    assert (FULL.feature_size, FULL.num_classes, FULL.max_symbols_per_step) == (240, 29, 30)


@pytest.mark.parametrize(("frames", "steps"), [(7, 4), (8, 4), (1, 1)])
def test_encoder_stacks_time_by_two(frames: int, steps: int) -> None:
    model = build_encoder("small")
    onnx.checker.check_model(model)
    assert sum(n.op_type == "LSTM" for n in model.graph.node) == 5
    features = np.random.default_rng(0).standard_normal((frames, 1, 240)).astype(np.float32)
    (encoded,) = _session(model).run(["encoded"], {"features": features})
    assert encoded.shape == (steps, 1, 64) and encoded.dtype == np.float32


def test_prediction_starts_from_a_zero_embedding() -> None:
    session = _session(build_prediction("small"))
    zeros = np.zeros((2, 1, 32), np.float32)
    g, h, c = session.run(None, {"token": np.array([[BLANK_INDEX]]), "h_in": zeros, "c_in": zeros})
    assert g.shape == (1, 32) and h.shape == (2, 1, 32) and c.shape == (2, 1, 32)
    g_a, _, _ = session.run(None, {"token": np.array([[1]]), "h_in": zeros, "c_in": zeros})
    assert not np.allclose(g, g_a)  # labels change the prediction; the start symbol is its own input


def test_write_model_lays_out_a_pipeline_model(small_model: Path) -> None:
    config = (small_model / "config.pbtxt").read_text()
    assert 'platform: "edgeperf_pipeline"' in config and "max_batch_size: 0" in config
    assert 'string_value: "edgeperf.benchmarks.rnnt.pipeline:build"' in config
    assert 'name: "audio" data_type: TYPE_FP32 dims: [ -1 ]' in config
    assert 'name: "tokens" data_type: TYPE_INT64 dims: [ -1 ]' in config
    for name in ("encoder.onnx", "prediction.onnx", "joint.onnx"):
        onnx.checker.check_model(onnx.load(str(small_model / "1" / name)))
    config_json = json.loads((small_model / "1" / "pipeline.json").read_text())
    assert RnntConfig(**config_json).blank_index == 28
    joint = _session(onnx.load(str(small_model / "1" / "joint.onnx")))
    (logits,) = joint.run(None, {"f": np.zeros((1, 64), np.float32), "g": np.zeros((1, 32), np.float32)})
    assert logits.shape == (1, 29)


def test_write_model_from_a_folder_of_graphs(tmp_path: Path, small_model: Path) -> None:
    digest = write_model(tmp_path / "copy", from_file=small_model / "1")
    assert (
        'key: "edgeperf_division" value: { string_value: "unverified" }'
        in (tmp_path / "copy" / "config.pbtxt").read_text()
    )
    assert digest == write_model(tmp_path / "again", size="small")  # deterministic stand-in
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(small_model / "1" / "encoder.onnx", partial)
    with pytest.raises(ModelCheckError, match=r"prediction\.onnx: missing"):
        write_model(tmp_path / "bad", from_file=partial)


def test_precision_variants_are_recorded(tmp_path: Path) -> None:
    write_model(tmp_path / "fp16", size="small", precision="fp16")
    config = (tmp_path / "fp16" / "config.pbtxt").read_text()
    assert 'key: "edgeperf_precision" value: { string_value: "fp16" }' in config
    encoder = onnx.load(str(tmp_path / "fp16" / "1" / "encoder.onnx"))
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in encoder.graph.initializer)
    write_model(tmp_path / "int8", size="small", precision="int8")
    ops = {n.op_type for n in onnx.load(str(tmp_path / "int8" / "1" / "encoder.onnx")).graph.node}
    assert "DynamicQuantizeLSTM" in ops
    assert 'string_value: "stand-in"' in (tmp_path / "int8" / "config.pbtxt").read_text()
