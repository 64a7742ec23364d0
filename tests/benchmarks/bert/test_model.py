"""bert.model: the stand-in's tensors match the spec, the mask works, weights are deterministic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from edgeperf.benchmarks import registry
from edgeperf.benchmarks.bert.model import FULL, SMALL, ModelCheckError, build_model, check_model
from edgeperf.benchmarks.bert.spec import INPUT_NAMES, OUTPUT_NAMES, SPEC


def test_spec_matches_the_reference_model() -> None:
    assert [(t.name, t.datatype, t.shape) for t in SPEC.inputs] == [
        ("input_ids", "INT64", (384,)),
        ("input_mask", "INT64", (384,)),
        ("segment_ids", "INT64", (384,)),
    ]
    assert [(t.name, t.datatype, t.shape) for t in SPEC.outputs] == [
        ("output_start_logits", "FP32", (384,)),
        ("output_end_logits", "FP32", (384,)),
    ]
    assert SPEC.qsl_size == 10833 and SPEC.quality.reference_value == 90.874
    assert SPEC.quality.fractions == (0.99, 0.999) and SPEC.edge_scenarios == ("SingleStream", "Offline")
    assert registry.get("bert").spec is SPEC


def test_full_config_is_bert_large() -> None:
    assert (FULL.layers, FULL.hidden, FULL.heads, FULL.intermediate) == (24, 1024, 16, 4096)
    assert (FULL.max_seq_length, FULL.vocab_size, FULL.doc_stride, FULL.max_query_length) == (
        384,
        30522,
        128,
        64,
    )


@pytest.fixture(scope="module")
def small_session() -> ort.InferenceSession:
    return ort.InferenceSession(build_model(SMALL).SerializeToString(), providers=["CPUExecutionProvider"])


def test_small_standin_has_the_spec_tensors(small_session: ort.InferenceSession) -> None:
    seq = SMALL.max_seq_length
    assert [(i.name, i.type, i.shape[1]) for i in small_session.get_inputs()] == [
        (n, "tensor(int64)", seq) for n in INPUT_NAMES
    ]
    assert [(o.name, o.type, o.shape[1]) for o in small_session.get_outputs()] == [
        (n, "tensor(float)", seq) for n in OUTPUT_NAMES
    ]
    check_model(build_model(SMALL), source="small", max_seq_length=seq)
    rng = np.random.default_rng(0)
    feed = {n: rng.integers(0, 2, (3, seq), dtype=np.int64) for n in INPUT_NAMES}
    start, end = small_session.run(list(OUTPUT_NAMES), feed)
    assert start.shape == end.shape == (3, seq) and start.dtype == np.float32
    assert not np.allclose(start, end)


def test_padding_is_masked_out(small_session: ort.InferenceSession) -> None:
    seq = SMALL.max_seq_length
    ids = np.zeros((2, seq), dtype=np.int64)
    ids[:, :20] = np.arange(100, 120)
    ids[1, 20:] = 777  # different tokens where the mask is 0
    mask = np.zeros((2, seq), dtype=np.int64)
    mask[:, :20] = 1
    segments = np.zeros((2, seq), dtype=np.int64)
    start, _ = small_session.run(
        list(OUTPUT_NAMES), {"input_ids": ids, "input_mask": mask, "segment_ids": segments}
    )
    np.testing.assert_allclose(start[0, :20], start[1, :20], rtol=1e-4, atol=1e-4)
    mask[1, :20] = 0
    mask[1, :21] = 1
    start2, _ = small_session.run(
        list(OUTPUT_NAMES), {"input_ids": ids, "input_mask": mask, "segment_ids": segments}
    )
    assert not np.allclose(start2[1, :20], start[1, :20], atol=1e-4)  # unmasking one token changes the rest


def test_weights_are_deterministic() -> None:
    first, second = build_model(SMALL), build_model(SMALL)
    assert first.graph.initializer[0].raw_data == second.graph.initializer[0].raw_data
    assert first.SerializeToString() == second.SerializeToString()


def test_write_model_triton_layout(tmp_path: Path) -> None:
    registry.get("bert").write_model(tmp_path / "bert-small", size="small")
    config = (tmp_path / "bert-small" / "config.pbtxt").read_text()
    assert 'name: "bert-small"' in config and 'platform: "onnxruntime_onnx"' in config
    assert 'name: "input_mask" data_type: TYPE_INT64 dims: [ 64 ]' in config
    assert "max_batch_size: 32" in config and "dynamic_batching" in config
    assert 'key: "edgeperf_model_source" value: { string_value: "stand-in" }' in config
    assert 'key: "edgeperf_size" value: { string_value: "small" }' in config
    onnx.checker.check_model(str(tmp_path / "bert-small" / "1" / "model.onnx"))


def _fake_reference(path: Path, input_names: tuple[str, ...], seq: int = 384) -> Path:
    # An identity-shaped graph with the reference model's interface, a few hundred bytes.
    nodes = [
        helper.make_node("Cast", [input_names[0]], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Identity", ["f"], [OUTPUT_NAMES[0]]),
        helper.make_node("Identity", ["f"], [OUTPUT_NAMES[1]]),
    ]
    graph = helper.make_graph(
        nodes,
        "ref",
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", seq]) for n in input_names],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", seq]) for n in OUTPUT_NAMES],
    )
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_from_file_checks_renames_and_records_checksum(tmp_path: Path) -> None:
    quantized = _fake_reference(
        tmp_path / "fake_quant.onnx", ("input_ids", "attention_mask", "token_type_ids")
    )
    registry.get("bert").write_model(tmp_path / "bert", from_file=quantized)
    written = onnx.load(str(tmp_path / "bert" / "1" / "model.onnx"))
    assert [i.name for i in written.graph.input] == list(INPUT_NAMES)
    config = (tmp_path / "bert" / "config.pbtxt").read_text()
    assert "edgeperf_model_sha256" in config and "dims: [ 384 ]" in config
    assert 'key: "edgeperf_model_source" value: { string_value: "file" }' in config
    assert 'key: "edgeperf_division" value: { string_value: "open" }' in config  # not the official checksum
    wrong = _fake_reference(tmp_path / "short.onnx", INPUT_NAMES, seq=128)
    with pytest.raises(ModelCheckError, match=r"short\.onnx.*\[batch, 384\]"):
        registry.get("bert").write_model(tmp_path / "bert2", from_file=wrong)
