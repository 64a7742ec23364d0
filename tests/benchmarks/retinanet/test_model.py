from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgeperf.benchmarks._onnx import GraphBuilder
from edgeperf.benchmarks.base import AccuracyReport, Dataset
from edgeperf.benchmarks.retinanet import BENCHMARK, SPEC
from edgeperf.benchmarks.retinanet.model import ARCH, ModelMismatch, anchors, standin_bytes
from edgeperf.benchmarks.retinanet.standin import SyntheticOpenImages


def test_small_standin_tensors_match_the_spec(tmp_path: Path):
    model_dir = tmp_path / "retinanet"
    BENCHMARK.write_model(model_dir, size="small")
    session = ort.InferenceSession(str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    assert session.get_inputs()[0].shape == [1, 3, 128, 128]
    assert (
        [o.name for o in session.get_outputs()]
        == [t.name for t in SPEC.outputs]
        == ["boxes", "scores", "labels"]
    )
    assert [o.type for o in session.get_outputs()] == ["tensor(float)", "tensor(float)", "tensor(int64)"]
    boxes, scores, labels = session.run(None, SyntheticOpenImages(1, size="small").sample(0))
    n = len(scores)
    assert 0 < n <= 300 and boxes.shape == (n, 4) and labels.shape == (n,)
    assert np.all(np.diff(scores) <= 0) and scores.min() > 0.05  # NMS keeps score order; threshold 0.05
    assert boxes.min() >= 0 and boxes.max() <= 128  # clipped to the image
    assert np.all(boxes[:, 2] >= boxes[:, 0]) and np.all(boxes[:, 3] >= boxes[:, 1])
    assert labels.min() >= 0 and labels.max() < 264
    text = (model_dir / "config.pbtxt").read_text()
    assert "max_batch_size: 0" in text and "dims: [ 1, 3, 128, 128 ]" in text and "dims: [ -1, 4 ]" in text


def test_standin_architecture():
    model = onnx.load_from_string(standin_bytes("small"))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("NonMaxSuppression") == 1 and ops.count("TopK") == 5  # one per FPN level P3..P7
    grouped = [
        n
        for n in model.graph.node
        if n.op_type == "Conv" and any(a.name == "group" and a.i == 4 for a in n.attribute)
    ]
    assert len(grouped) == 4  # one grouped 3x3 per bottleneck (ResNeXt), one block per stage in `small`


def test_anchors_follow_torchvision():
    full = anchors(ARCH["full"])
    # grids 100, 50, 25, 13, 7 with 9 anchors each
    assert [len(a) for a in full] == [9 * g * g for g in (100, 50, 25, 13, 7)]
    # first anchor of P3: size 32, ratio 0.5 -> w = round(45.25 / 2) * 2 = 46, h = round(11.31) * 2 = 22
    np.testing.assert_array_equal(full[0][0], [0.0, 0.0, 46.0, 22.0])
    # P6's stride is 800 // 13 = 61: the second cell's centre
    np.testing.assert_array_equal(full[3][9][:2], [61.0, 0.0])


def _official_like(path: Path, *, names: tuple[str, str, str] = ("boxes", "scores", "labels")) -> Path:
    g = GraphBuilder("official_like", seed=1)
    x = g.input("images", "FP32", [1, 3, 800, 800])
    flat = g.op("Reshape", x, g.const(np.array([-1, 4], np.int64)))
    g.op("Identity", flat, out=names[0])
    score = g.op("ReduceMax", flat, axes=[1], keepdims=0)
    g.op("Identity", score, out=names[1])
    g.op("Cast", score, out=names[2], to=onnx.TensorProto.INT64)
    g.output(names[0], "FP32", ["n", 4])
    g.output(names[1], "FP32", ["n"])
    g.output(names[2], "INT64", ["n"])
    onnx.save(g.build(), str(path))
    return path


def test_from_file_checks_and_records(tmp_path: Path):
    official = _official_like(tmp_path / "resnext50_32x4d_fpn.onnx")
    BENCHMARK.write_model(tmp_path / "retinanet", from_file=official)
    text = (tmp_path / "retinanet" / "config.pbtxt").read_text()
    assert hashlib.sha256(official.read_bytes()).hexdigest() in text
    assert (
        "dims: [ 1, 3, 800, 800 ]" in text and '"edgeperf_division" value: { string_value: "open" }' in text
    )
    with pytest.raises(ModelMismatch, match="outputs"):
        BENCHMARK.write_model(
            tmp_path / "m2", from_file=_official_like(tmp_path / "x.onnx", names=("b", "s", "l"))
        )


def _score(session: ort.InferenceSession, ds: Dataset) -> AccuracyReport:
    """The accuracy of `session`'s answers on every sample of `ds`, logged as the client logs them."""
    results = []
    for i in range(len(ds)):
        raw = b"".join(np.ascontiguousarray(o).tobytes() for o in session.run(None, ds.sample(i)))
        results.append((i, BENCHMARK.log_payload(raw, i, size="small")))
    return BENCHMARK.accuracy(ds, results, size="small")


def test_fp32_standin_scores_100_on_its_own_synthetic_ground_truth():
    ds = BENCHMARK.open_dataset("synthetic:2", size="small")
    session = ort.InferenceSession(standin_bytes("small"), providers=["CPUExecutionProvider"])
    report = _score(session, ds)
    # the FP32 stand-in is its own reference: at (about) 100%, boxes clipped to zero area match nothing
    assert report.value > 99.9 and report.passed
    assert report.target == pytest.approx(report.value * 0.99)
    # Boxes off by two pixels fail the gate: mAP averages IoU thresholds up to 0.95.
    jittered = []
    for i in range(2):
        boxes, scores, labels = session.run(None, ds.sample(i))
        raw = (boxes + np.float32(2.0)).tobytes() + scores.tobytes() + labels.tobytes()
        jittered.append((i, BENCHMARK.log_payload(raw, i, size="small")))
    worse = BENCHMARK.accuracy(ds, jittered, size="small")
    assert worse.value < 99.0 and not worse.passed
    assert worse.text.splitlines()[-1].startswith("FAIL")


def test_fp16_variant_is_gated_on_its_own_score(tmp_path: Path):
    model_dir = tmp_path / "retinanet_fp16"
    BENCHMARK.write_model(model_dir, size="small", precision="fp16")
    assert '"edgeperf_precision" value: { string_value: "fp16" }' in (model_dir / "config.pbtxt").read_text()
    model = onnx.load(str(model_dir / "1" / "model.onnx"))
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)
    session = ort.InferenceSession(str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    ds = BENCHMARK.open_dataset("synthetic:2", size="small")
    report = _score(session, ds)
    assert 0.0 < report.value <= 100.0
    assert report.passed is (report.value >= report.target)
    assert report.text.splitlines()[-1].startswith("PASS" if report.passed else "FAIL")
