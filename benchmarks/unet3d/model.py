"""The KiTS19 3D U-Net as ONNX: the stand-in builder, the real-model check, and the model-repository writer.

The stand-in follows the MLPerf training reference the inference model was trained with
(mlcommons/training `image_segmentation/pytorch/model/unet3d.py` and `layers.py`): filters
32, 64, 128, 256, 320; an input block of two conv blocks; four stride-2 downsample blocks and a stride-2
bottleneck (each a strided conv block then a conv block); five upsample blocks (transposed conv k=2 s=2
with bias, concatenation with the skip, two conv blocks); a 1x1x1 output conv with bias to 3 classes.
A conv block is Conv3d(k=3, pad=1, no bias) + InstanceNorm3d(affine) + LeakyReLU(0.01). Weights are
deterministic synthetic values (He-scaled normal), so outputs are reproducible everywhere.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper

from edgeperf.benchmarks._common import ModelMismatch, pipeline_config_text
from edgeperf.benchmarks._model_files import provenance_parameters
from edgeperf.benchmarks._onnx import GraphParts, Precision, quantize_int8, to_fp16
from edgeperf.benchmarks.base import Size
from edgeperf.benchmarks.unet3d.config import FULL, SMALL, UnetConfig, config_for
from edgeperf.benchmarks.unet3d.dataset import synthetic_image
from edgeperf.benchmarks.unet3d.spec import NUM_CLASSES, OVERLAP, PATCH_INPUT, PATCH_OUTPUT, SPEC

__all__ = [
    "FULL",
    "MODEL_FILENAME",
    "PIPELINE_FACTORY",
    "PIPELINE_FILENAME",
    "SMALL",
    "ModelCheckError",
    "PipelineSettings",
    "UnetConfig",
    "build_standin",
    "check_patch_model",
    "config_for",
    "standin_bytes",
    "write_model",
]

MODEL_FILENAME = "model.onnx"
PIPELINE_FILENAME = "pipeline.json"
PIPELINE_FACTORY = "edgeperf.benchmarks.unet3d.pipeline:build"
_OPSET = 17
_SEED = 20190601  # KiTS19; any fixed value would do


class ModelCheckError(ModelMismatch):
    """An ONNX file is not a 3D-UNet patch model of the expected layout; the message says what differs."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineSettings:
    """What the server-side pipeline reads from `<version>/pipeline.json`."""

    roi: int
    overlap: float = OVERLAP
    model_file: str = MODEL_FILENAME
    patch_batch: int = 1
    """Patches per network run: 1 as the reference; raise it (for accelerators) when the graph's batch
    dimension is dynamic, as the stand-in's and the official `_dynbatch` file's are."""

    def to_json(self) -> str:
        fields = {"roi": self.roi, "overlap": self.overlap, "model_file": self.model_file}
        return json.dumps({**fields, "patch_batch": self.patch_batch}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> PipelineSettings:
        raw = json.loads(text)
        return cls(
            roi=int(raw["roi"]),
            overlap=float(raw["overlap"]),
            model_file=str(raw["model_file"]),
            patch_batch=int(raw.get("patch_batch", 1)),
        )


class _Graph(GraphParts):
    """Accumulates nodes and deterministic initializers."""

    def normal(self, stem: str, shape: tuple[int, ...], std: float, mean: float = 0.0) -> str:
        value = (mean + std * self.rng.standard_normal(shape)).astype(np.float32)
        return self.initializer(stem, value)

    def node(self, op: str, inputs: list[str], **attrs: Any) -> str:
        out = self.fresh(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv_block(self, x: str, cin: int, cout: int, *, stride: int = 1) -> str:
        w = self.normal("conv_w", (cout, cin, 3, 3, 3), std=float(np.sqrt(2.0 / (cin * 27))))
        y = self.node("Conv", [x, w], kernel_shape=[3, 3, 3], pads=[1] * 6, strides=[stride] * 3)
        scale = self.normal("in_scale", (cout,), std=0.1, mean=1.0)
        bias = self.normal("in_bias", (cout,), std=0.1)
        y = self.node("InstanceNormalization", [y, scale, bias], epsilon=1e-5)
        return self.node("LeakyRelu", [y], alpha=0.01)

    def upsample_block(self, x: str, skip: str, cin: int, cout: int) -> str:
        w = self.normal("up_w", (cin, cout, 2, 2, 2), std=float(np.sqrt(1.0 / (cin * 8))))
        b = self.normal("up_b", (cout,), std=0.05)
        y = self.node("ConvTranspose", [x, w, b], kernel_shape=[2, 2, 2], strides=[2, 2, 2])
        y = self.node("Concat", [y, skip], axis=1)
        y = self.conv_block(y, 2 * cout, cout)
        return self.conv_block(y, cout, cout)


def build_standin(size: Size = "full") -> onnx.ModelProto:
    """The stand-in patch network: "input" FP32 [N, 1, R, R, R] -> "output" FP32 [N, 3, R, R, R]."""
    config = config_for(size)
    filters = config.filters
    if config.roi % (2 ** len(filters)) != 0:
        raise ValueError(f"roi {config.roi} is not divisible by 2**{len(filters)}")
    g = _Graph(_SEED)
    x = g.conv_block(PATCH_INPUT.name, 1, filters[0])
    x = g.conv_block(x, filters[0], filters[0])
    skips = [x]
    for cin, cout in itertools.pairwise(filters):
        x = g.conv_block(x, cin, cout, stride=2)
        x = g.conv_block(x, cout, cout)
        skips.append(x)
    x = g.conv_block(x, filters[-1], filters[-1], stride=2)  # bottleneck
    x = g.conv_block(x, filters[-1], filters[-1])
    ups = [(filters[-1], filters[-1]), *zip(reversed(filters[1:]), reversed(filters[:-1]), strict=True)]
    for (cin, cout), skip in zip(ups, reversed(skips), strict=True):
        x = g.upsample_block(x, skip, cin, cout)
    w = g.normal("out_w", (NUM_CLASSES, filters[0], 1, 1, 1), std=float(np.sqrt(1.0 / filters[0])))
    b = g.normal("out_b", (NUM_CLASSES,), std=0.05)
    g.nodes.append(
        helper.make_node("Conv", [x, w, b], [PATCH_OUTPUT.name], kernel_shape=[1, 1, 1], name="output")
    )
    r = config.roi
    graph = helper.make_graph(
        g.nodes,
        f"unet3d_kits19_{size}",
        [helper.make_tensor_value_info(PATCH_INPUT.name, TensorProto.FLOAT, ["N", 1, r, r, r])],
        [helper.make_tensor_value_info(PATCH_OUTPUT.name, TensorProto.FLOAT, ["N", NUM_CLASSES, r, r, r])],
        g.initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", _OPSET)], producer_name="edgeperf"
    )
    model.ir_version = 8
    return model


def _dims(value_info: onnx.ValueInfoProto) -> list[int | str]:
    return [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
        for d in value_info.type.tensor_type.shape.dim
    ]


def check_patch_model(model: onnx.ModelProto) -> int:
    """Check `model` against the official patch layout and return its cubic patch edge.

    Accepts the official [1, 1, 128, 128, 128] file, its dynamic-batch variant, and stand-ins of any
    cubic patch size.

    Raises:
        ModelCheckError: input or output name, element type, rank or channel count differ.
    """
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if [i.name for i in inputs] != [PATCH_INPUT.name] or [o.name for o in model.graph.output] != [
        PATCH_OUTPUT.name
    ]:
        raise ModelCheckError(
            f"expected input {PATCH_INPUT.name!r} and output {PATCH_OUTPUT.name!r}, found inputs "
            f"{[i.name for i in inputs]} and outputs {[o.name for o in model.graph.output]}"
        )
    for value in (inputs[0], model.graph.output[0]):
        if value.type.tensor_type.elem_type != TensorProto.FLOAT:
            raise ModelCheckError(f"{value.name!r} is not FP32")
    in_dims, out_dims = _dims(inputs[0]), _dims(model.graph.output[0])
    if len(in_dims) != 5 or in_dims[1] != 1:
        raise ModelCheckError(f"input {PATCH_INPUT.name!r} must be [N, 1, R, R, R], not {in_dims}")
    spatial = in_dims[2:]
    if not all(isinstance(d, int) and d > 0 for d in spatial) or len(set(spatial)) != 1:
        raise ModelCheckError(f"input {PATCH_INPUT.name!r} needs a fixed cubic patch, not {spatial}")
    if len(out_dims) != 5 or out_dims[1] != NUM_CLASSES or out_dims[2:] != spatial:
        raise ModelCheckError(f"output {PATCH_OUTPUT.name!r} must be [N, 3, R, R, R], not {out_dims}")
    first = spatial[0]
    assert isinstance(first, int)
    return first


def _calibration_patches(size: Size, count: int = 4) -> list[dict[str, npt.NDArray[Any]]]:
    """Patches of synthetic cases, for int8 activation ranges."""
    roi = config_for(size).roi
    feeds = []
    for index in range(count):
        image = synthetic_image(index, size)
        feeds.append({PATCH_INPUT.name: np.ascontiguousarray(image[np.newaxis, :, :roi, :roi, :roi])})
    return feeds


def standin_bytes(size: Size = "full", precision: Precision = "fp32") -> bytes:
    """The serialized stand-in patch network in `precision` (FP16 and int8 are made from the FP32 one)."""
    fp32 = build_standin(size).SerializeToString()
    if precision == "fp16":
        return to_fp16(fp32)
    if precision == "int8":
        return quantize_int8(fp32, _calibration_patches(size), ("Conv", "ConvTranspose"))
    return fp32


def write_model(
    model_dir: Path, *, size: Size = "full", from_file: Path | None = None, precision: Precision = "fp32"
) -> str:
    """Write the pipeline model: config.pbtxt, 1/model.onnx and 1/pipeline.json.

    The config's parameters record the model's provenance (`provenance_parameters`); the division is
    `closed` for the official file, `open` for anything else, and `unverified` for a file while no
    official checksum is recorded in the spec.

    Returns:
        The SHA-256 of the written model.onnx.

    Raises:
        ModelCheckError: `from_file` is not a 3D-UNet patch model.
    """
    version_dir = model_dir / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    if from_file is not None:
        data = from_file.read_bytes()
        roi = check_patch_model(onnx.load_from_string(data))
        digest = hashlib.sha256(data).hexdigest()
        if SPEC.reference_model_sha256 is None:
            division = "unverified"
        else:
            division = "closed" if digest == SPEC.reference_model_sha256 else "open"
    else:
        data = standin_bytes(size, precision)
        roi = check_patch_model(onnx.load_from_string(data))
        digest, division = hashlib.sha256(data).hexdigest(), "open"
    provenance = provenance_parameters(
        from_file=from_file is not None, size=size, precision=precision, sha256=digest, division=division
    )
    (version_dir / MODEL_FILENAME).write_bytes(data)
    (version_dir / PIPELINE_FILENAME).write_text(PipelineSettings(roi=roi).to_json() + "\n")
    (model_dir / "config.pbtxt").write_text(
        pipeline_config_text(model_dir.name, SPEC, PIPELINE_FACTORY, provenance)
    )
    return digest
