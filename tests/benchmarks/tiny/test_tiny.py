"""The tiny benchmark package: model writer, synthetic data, accuracy, and the fixed-delay variant."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgeperf.benchmarks import registry
from edgeperf.benchmarks.tiny import BENCHMARK, SPEC
from edgeperf.benchmarks.tiny.dataset import TinyDataset
from edgeperf.benchmarks.tiny.model import write_delay_model
from edgeperf.benchmarks.tiny.pipeline import build


def test_registry_resolves_tiny() -> None:
    assert registry.get("tiny") is BENCHMARK
    assert SPEC.inputs[0].name == "INPUT0" and SPEC.inputs[0].shape == (16,)


def test_written_model_computes_the_formula(tmp_path: Path) -> None:
    BENCHMARK.write_model(tmp_path / "tiny")
    assert 'name: "tiny"' in (tmp_path / "tiny" / "config.pbtxt").read_text()
    session = ort.InferenceSession(
        str(tmp_path / "tiny" / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    dataset = BENCHMARK.open_dataset("synthetic:8")
    assert isinstance(dataset, TinyDataset)
    batch = np.stack([dataset.sample(i)["INPUT0"] for i in range(8)]).astype(np.float32)
    (out,) = session.run(["OUTPUT0"], {"INPUT0": batch})
    np.testing.assert_allclose(out, batch * 2 + 1, rtol=0, atol=1e-6)
    results = [(i, out[i].tobytes()) for i in range(8)]
    report = BENCHMARK.accuracy(dataset, results)
    assert (
        report.passed and report.value == 1.0 and report.text.endswith("PASS match 1.00000 target 0.99000\n")
    )
    wrong = BENCHMARK.accuracy(dataset, [(i, (out[i] + 1).tobytes()) for i in range(8)])
    assert not wrong.passed and wrong.value == 0.0


def test_synthetic_data_is_deterministic_and_bounded() -> None:
    a, b = BENCHMARK.open_dataset("synthetic"), BENCHMARK.open_dataset("synthetic")
    assert len(a) == SPEC.qsl_size
    np.testing.assert_array_equal(a.sample(7)["INPUT0"], b.sample(7)["INPUT0"])
    assert not np.array_equal(a.sample(7)["INPUT0"], a.sample(8)["INPUT0"])
    with pytest.raises(ValueError, match="only has synthetic data"):
        BENCHMARK.open_dataset("/data/imagenet")
    with pytest.raises(IndexError):
        a.sample(len(a))


def test_delay_pipeline_sleeps_its_service_time(tmp_path: Path) -> None:
    write_delay_model(tmp_path / "delay", service_time_us=20_000, max_batch_size=8, per_sample_us=1_000)
    assert 'platform: "edgeperf_pipeline"' in (tmp_path / "delay" / "config.pbtxt").read_text()
    pipeline = build(tmp_path / "delay" / "1", lambda path: None)
    x = np.ones((4, 16), np.float32)
    started = time.perf_counter()
    out = pipeline.run({"INPUT0": x}, ["OUTPUT0"])
    assert time.perf_counter() - started >= 0.024
    np.testing.assert_array_equal(out["OUTPUT0"], 3 * x)
    with pytest.raises(ValueError, match=">= 0"):
        write_delay_model(tmp_path / "bad", service_time_us=-1)
