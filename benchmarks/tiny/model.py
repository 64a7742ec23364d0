"""Writers for the tiny model: the ONNX graph (Mul + Add) and a fixed-service-time pipeline variant."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeperf.benchmarks._common import Precision, PrecisionError
from edgeperf.benchmarks.base import Size
from edgeperf.benchmarks.tiny.spec import FEATURES, INPUT_NAME, MAX_BATCH_SIZE, OFFSET, OUTPUT_NAME, SCALE

__all__ = ["DELAY_FILE", "build_graph", "config_text", "write_delay_model", "write_model"]

DELAY_FILE = "delay.json"
"""In the delay model's version folder: {"service_time_us": N, "per_sample_us": M}."""


def build_graph(features: int = FEATURES) -> onnx.ModelProto:
    """OUTPUT0 = INPUT0 * 2 + 1 over FP32 [batch, features]."""
    graph = helper.make_graph(
        [
            helper.make_node("Mul", [INPUT_NAME, "scale"], ["scaled"]),
            helper.make_node("Add", ["scaled", "offset"], [OUTPUT_NAME]),
        ],
        "tiny",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", features])],
        initializer=[
            numpy_helper.from_array(np.array(SCALE, dtype=np.float32), "scale"),
            numpy_helper.from_array(np.array(OFFSET, dtype=np.float32), "offset"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def config_text(
    name: str,
    *,
    max_batch_size: int = MAX_BATCH_SIZE,
    max_queue_delay_us: int = 0,
    instance_count: int = 1,
    platform: str = "onnxruntime_onnx",
    parameters: dict[str, str] | None = None,
) -> str:
    """config.pbtxt for the tiny model (or its delay variant).

    No batching window by default (Triton's default too): the tiny model measures the server's own cost
    per request, and a window only makes a lone request wait (on this server, on the idle instance
    thread: one more thread round trip per execution); under load the pull model still batches whatever
    queued while the instance was busy.
    """
    # NOTE: without batching the graph's leading dimension becomes an ordinary variable dimension.
    dims = f"[ {FEATURES} ]" if max_batch_size > 0 else f"[ -1, {FEATURES} ]"
    lines = [
        f'name: "{name}"',
        f'platform: "{platform}"',
        f"max_batch_size: {max_batch_size}",
        f'input [ {{ name: "{INPUT_NAME}" data_type: TYPE_FP32 dims: {dims} }} ]',
        f'output [ {{ name: "{OUTPUT_NAME}" data_type: TYPE_FP32 dims: {dims} }} ]',
    ]
    if max_batch_size > 0:
        lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {max_queue_delay_us} }}")
    lines.append(f"instance_group [ {{ count: {instance_count} kind: KIND_CPU }} ]")
    for key, value in (parameters or {}).items():
        lines.append(f'parameters {{ key: "{key}" value: {{ string_value: "{value}" }} }}')
    return "\n".join(lines) + "\n"


def write_model(
    model_dir: Path, *, size: Size = "full", from_file: Path | None = None, precision: Precision = "fp32"
) -> None:
    """Write `<model_dir>/config.pbtxt` and `<model_dir>/1/model.onnx` (both sizes are the same graph).

    Raises:
        ValueError: `from_file` is given (the tiny model is always built).
        PrecisionError: `precision` is not fp32 (the tiny model measures overhead; it has no variants).
    """
    if from_file is not None:
        raise ValueError("the tiny model has no official file; it is always built")
    if precision != "fp32":
        raise PrecisionError(f"the tiny model is FP32 only (it measures serving overhead), not {precision}")
    version_dir = model_dir / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    onnx.save(build_graph(), str(version_dir / "model.onnx"))
    (model_dir / "config.pbtxt").write_text(config_text(model_dir.name), encoding="utf-8")


def write_delay_model(
    model_dir: Path,
    service_time_us: int,
    max_batch_size: int = MAX_BATCH_SIZE,
    *,
    per_sample_us: int = 0,
    max_queue_delay_us: int = 0,
    instance_count: int = 1,
) -> None:
    """A tiny-model stand-in with a known service time, served by `edgeperf.benchmarks.tiny.pipeline:build`.

    Each execution sleeps `service_time_us + per_sample_us * batch` microseconds (the sleep releases the
    GIL, like ONNX Runtime) and answers OUTPUT0 = INPUT0 * 2 + 1, so accuracy checks still hold.
    """
    if service_time_us < 0 or per_sample_us < 0:
        raise ValueError("service times must be >= 0")
    version_dir = model_dir / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    delay = {"service_time_us": service_time_us, "per_sample_us": per_sample_us}
    (version_dir / DELAY_FILE).write_text(json.dumps(delay), encoding="utf-8")
    text = config_text(
        model_dir.name,
        max_batch_size=max_batch_size,
        max_queue_delay_us=max_queue_delay_us,
        instance_count=instance_count,
        platform="edgeperf_pipeline",
        parameters={"pipeline": "edgeperf.benchmarks.tiny.pipeline:build"},
    )
    (model_dir / "config.pbtxt").write_text(text, encoding="utf-8")
