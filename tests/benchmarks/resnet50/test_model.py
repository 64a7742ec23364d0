from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgeperf.benchmarks._onnx import GraphBuilder
from edgeperf.benchmarks.resnet50 import BENCHMARK, SPEC
from edgeperf.benchmarks.resnet50.model import ModelMismatch, standin_bytes
from edgeperf.benchmarks.resnet50.spec import tensors
from edgeperf.benchmarks.resnet50.standin import SyntheticImagenet


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_small_standin_tensors_match_the_spec(tmp_path: Path):
    model_dir = tmp_path / "resnet50"
    BENCHMARK.write_model(model_dir, size="small")
    session = _session(model_dir / "1" / "model.onnx")
    inputs, _ = tensors("small")
    assert [i.name for i in session.get_inputs()] == [t.name for t in SPEC.inputs]
    assert [o.name for o in session.get_outputs()] == [t.name for t in SPEC.outputs]
    assert session.get_inputs()[0].shape[1:] == list(inputs[0].shape)
    assert session.get_outputs()[1].shape[1:] == [1001]
    assert session.get_inputs()[0].type == "tensor(float)"
    assert session.get_outputs()[0].type == "tensor(int64)"
    batch = SyntheticImagenet(3, size="small").batch([0, 1, 2])
    argmax, softmax = session.run(None, {"input_tensor:0": batch})
    assert argmax.shape == (3,) and argmax.dtype == np.int64
    assert softmax.shape == (3, 1001)
    np.testing.assert_allclose(softmax.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(argmax, softmax.argmax(axis=1))


def test_config_batches_and_records_provenance(tmp_path: Path):
    model_dir = tmp_path / "resnet50"
    BENCHMARK.write_model(model_dir, size="small")
    text = (model_dir / "config.pbtxt").read_text()
    assert 'name: "resnet50"' in text and "max_batch_size: 8" in text
    assert "dynamic_batching" in text and "max_queue_delay_microseconds" in text
    assert 'name: "input_tensor:0"' in text and "dims: [ 3, 64, 64 ]" in text
    assert '"edgeperf_model_source" value: { string_value: "stand-in" }' in text
    assert '"edgeperf_division" value: { string_value: "open" }' in text


def test_standin_is_deterministic_and_architecture_faithful():
    model = onnx.load_from_string(standin_bytes("small"))
    assert standin_bytes("small") == onnx.load_from_string(standin_bytes("small")).SerializeToString()
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    # stem + 4 stages x 1 block x (3 convs + projection) = 17 convs; full has 1 + 16*3 + 4 = 53.
    assert len(convs) == 17
    # v1.5: the stride-2 conv of a bottleneck is its 3x3, never its 1x1.
    strided = [n for n in convs if next(a for a in n.attribute if a.name == "strides").ints[0] == 2]
    kernels = {tuple(next(a for a in n.attribute if a.name == "kernel_shape").ints) for n in strided}
    assert kernels == {(7, 7), (3, 3), (1, 1)}  # stem, 3x3 in blocks, projection shortcuts


def _official_like(
    path: Path, *, argmax_name: str = "ArgMax:0", side: int = 224, shaped: bool = True
) -> Path:
    """A cheap model with the official file's signature (the real one is 100 MB and not shipped)."""
    g = GraphBuilder("official_like", seed=1)
    x = g.input("input_tensor:0", "FP32", ["N", 3, side, side])
    logits = g.gemm(g.flatten(g.global_avg_pool(x)), 3, 1001)
    g.op("ArgMax", logits, out=argmax_name, axis=-1, keepdims=0)
    g.op("Softmax", logits, out="softmax_tensor:0", axis=-1)
    g.output(argmax_name, "INT64", ["N"])
    g.output("softmax_tensor:0", "FP32", ["N", 1001] if shaped else None)
    onnx.save(g.build(), str(path))
    return path


def test_from_file_checks_tensors_and_records_checksum(tmp_path: Path):
    official = _official_like(tmp_path / "resnet50_v1.onnx")
    model_dir = tmp_path / "resnet50"
    BENCHMARK.write_model(model_dir, from_file=official)
    assert (model_dir / "1" / "model.onnx").read_bytes() == official.read_bytes()
    text = (model_dir / "config.pbtxt").read_text()
    digest = hashlib.sha256(official.read_bytes()).hexdigest()
    assert f'"edgeperf_model_sha256" value: {{ string_value: "{digest}" }}' in text
    assert '"edgeperf_model_source" value: { string_value: "file" }' in text
    assert "max_batch_size: 32" in text and "dims: [ 3, 224, 224 ]" in text
    # Not the published checksum, so the run is open division.
    assert '"edgeperf_division" value: { string_value: "open" }' in text

    with pytest.raises(ModelMismatch, match="outputs"):
        BENCHMARK.write_model(
            tmp_path / "m2", from_file=_official_like(tmp_path / "b.onnx", argmax_name="argmax")
        )
    with pytest.raises(ModelMismatch, match="input_tensor:0"):
        BENCHMARK.write_model(tmp_path / "m3", from_file=_official_like(tmp_path / "c.onnx", side=64))


def test_int8_variant_is_scored_against_fp32_and_gated_honestly(tmp_path: Path):
    model_dir = tmp_path / "resnet50"
    BENCHMARK.write_model(model_dir, size="small", precision="int8")
    session = _session(model_dir / "1" / "model.onnx")
    assert any(
        n.op_type == "QuantizeLinear" for n in onnx.load(str(model_dir / "1" / "model.onnx")).graph.node
    )
    ds = BENCHMARK.open_dataset("synthetic:48", size="small")
    assert isinstance(ds, SyntheticImagenet)
    argmax = session.run(["ArgMax:0"], {"input_tensor:0": ds.batch(range(48))})[0]
    results = [(i, BENCHMARK.log_payload(np.array([a], "<i8").tobytes(), i)) for i, a in enumerate(argmax)]
    report = BENCHMARK.accuracy(ds, results, size="small")
    agree = float((argmax - 1 == ds.labels(range(48))).mean()) * 100
    assert report.value == pytest.approx(agree)
    assert report.target == pytest.approx(99.0)
    assert report.passed is (agree >= 99.0)
    assert report.text.splitlines()[-1].split(":")[0] == ("PASS" if report.passed else "FAIL")
    # The FP32 stand-in scores 100% on its own ground truth.
    fp32 = _session_bytes(standin_bytes("small"))
    fp32_argmax = fp32.run(["ArgMax:0"], {"input_tensor:0": ds.batch(range(48))})[0]
    fp32_report = BENCHMARK.accuracy(
        ds, [(i, BENCHMARK.log_payload(np.array([a], "<i8").tobytes(), i)) for i, a in enumerate(fp32_argmax)]
    )
    assert fp32_report.value == 100.0 and fp32_report.passed


def test_fp16_variant_keeps_fp32_io_and_is_gated(tmp_path: Path):
    model_dir = tmp_path / "resnet50_fp16"
    BENCHMARK.write_model(model_dir, size="small", precision="fp16")
    session = _session(model_dir / "1" / "model.onnx")
    assert session.get_inputs()[0].type == "tensor(float)"
    assert [o.type for o in session.get_outputs()] == ["tensor(int64)", "tensor(float)"]
    ds = BENCHMARK.open_dataset("synthetic:48", size="small")
    assert isinstance(ds, SyntheticImagenet)
    argmax = session.run(["ArgMax:0"], {"input_tensor:0": ds.batch(range(48))})[0]
    report = BENCHMARK.accuracy(
        ds, [(i, BENCHMARK.log_payload(np.array([a], "<i8").tobytes(), i)) for i, a in enumerate(argmax)]
    )
    assert report.value == pytest.approx(float((argmax - 1 == ds.labels(range(48))).mean()) * 100)
    assert report.passed is (report.value >= 99.0)


def _session_bytes(data: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])
