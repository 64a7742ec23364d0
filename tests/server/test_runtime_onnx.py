"""ONNX Runtime sessions: options, provider fallback, and the check against the config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeperf.server.errors import ModelConfigError
from edgeperf.server.model_config import load_model_config, parse_model_config
from edgeperf.server.ort_options import OrtOptions
from edgeperf.server.runtime.onnx import OnnxRuntime, make_session
from tests.server.core_support import write_tiny


def test_session_runs_and_applies_thread_options(tmp_path: Path) -> None:
    model_dir = write_tiny(tmp_path)
    options = OrtOptions(intra_op_threads=1, inter_op_threads=1, graph_optimization_level="basic")
    session = make_session(model_dir / "1" / "model.onnx", options)
    applied = session.get_session_options()
    assert applied.intra_op_num_threads == 1
    assert applied.inter_op_num_threads == 1
    assert session.get_providers() == ["CPUExecutionProvider"]
    runtime = OnnxRuntime(session)
    x = np.arange(32, dtype=np.float32).reshape(2, 16)
    out = runtime.run({"INPUT0": x}, ["OUTPUT0"])
    np.testing.assert_array_equal(out["OUTPUT0"], x * 2 + 1)
    runtime.close()


@pytest.mark.parametrize("spinning", [False, True])
def test_allow_spinning_reaches_both_thread_pools(tmp_path: Path, spinning: bool) -> None:
    model_dir = write_tiny(tmp_path)
    session = make_session(model_dir / "1" / "model.onnx", OrtOptions(allow_spinning=spinning))
    applied = session.get_session_options()
    for pool in ("intra_op", "inter_op"):
        assert applied.get_session_config_entry(f"session.{pool}.allow_spinning") == str(int(spinning))


def test_load_checks_the_config_against_the_graph(tmp_path: Path) -> None:
    model_dir = write_tiny(tmp_path, max_batch_size=8)
    config = load_model_config(model_dir)
    runtime = OnnxRuntime.load(model_dir / "1" / "model.onnx", config)
    assert runtime.run({"INPUT0": np.zeros((1, 16), np.float32)}, ["OUTPUT0"])["OUTPUT0"].shape == (1, 16)


GRAPH_IO = "max_batch_size: 8\n"


@pytest.mark.parametrize(
    ("io", "field", "reason"),
    [
        (
            'input { name: "IN" data_type: TYPE_FP32 dims: [16] } output { name: "OUTPUT0" data_type: TYPE_FP32 '
            "dims: [16] }",
            "input",
            "has input 'INPUT0' the config lacks",
        ),
        (
            'input { name: "INPUT0" data_type: TYPE_FP32 dims: [16] } output { name: "OUT" data_type: TYPE_FP32 '
            "dims: [16] }",
            "output[OUT]",
            "no output of this name",
        ),
        (
            'input { name: "INPUT0" data_type: TYPE_FP16 dims: [16] } output { name: "OUTPUT0" data_type: TYPE_FP32 '
            "dims: [16] }",
            "input[INPUT0].data_type",
            "config says FP16, the ONNX model FP32",
        ),
        (
            'input { name: "INPUT0" data_type: TYPE_FP32 dims: [4, 4] } output { name: "OUTPUT0" '
            "data_type: TYPE_FP32 dims: [16] }",
            "input[INPUT0].dims",
            "rank 2 plus the batch dimension",
        ),
        (
            'input { name: "INPUT0" data_type: TYPE_FP32 dims: [16] } output { name: "OUTPUT0" data_type: TYPE_FP32 '
            "dims: [8] }",
            "output[OUTPUT0].dims",
            "do not match",
        ),
    ],
)
def test_config_graph_mismatch_is_a_config_error(tmp_path: Path, io: str, field: str, reason: str) -> None:
    model_dir = write_tiny(tmp_path)
    path = model_dir / "config.pbtxt"
    config = parse_model_config(GRAPH_IO + io, path=path, model_name="tiny")
    with pytest.raises(ModelConfigError) as info:
        OnnxRuntime.load(model_dir / "1" / "model.onnx", config)
    assert info.value.field == field
    assert reason in str(info.value)


def test_without_batching_the_rank_includes_every_dim(tmp_path: Path) -> None:
    model_dir = write_tiny(tmp_path)
    text = (
        'input { name: "INPUT0" data_type: TYPE_FP32 dims: [-1, 16] } output { name: "OUTPUT0" '
        "data_type: TYPE_FP32 dims: [-1, 16] }"
    )
    config = parse_model_config(text, path=model_dir / "config.pbtxt", model_name="tiny")
    runtime = OnnxRuntime.load(model_dir / "1" / "model.onnx", config)
    assert runtime.run({"INPUT0": np.zeros((3, 16), np.float32)}, ["OUTPUT0"])["OUTPUT0"].shape == (3, 16)


def test_unreadable_model_file_is_a_config_error(tmp_path: Path) -> None:
    model_dir = write_tiny(tmp_path)
    (model_dir / "1" / "model.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelConfigError, match="ONNX Runtime cannot load"):
        OnnxRuntime.load(model_dir / "1" / "model.onnx", load_model_config(model_dir))
