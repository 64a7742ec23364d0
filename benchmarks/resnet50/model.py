"""ResNet50-v1.5 for the server: the stand-in builder, its int8 variant, and the official-model check.

The stand-in follows the MLPerf model (TF official ResNet50 v1.5, the graph behind resnet50_v1.onnx):
7x7/2 stem conv, 3x3/2 max pool, bottleneck stages [3, 4, 6, 3] of widths 64/128/256/512 (x4 out),
stride on the 3x3 conv of each stage's first block (the "v1.5" change), projection shortcuts where the
shape changes, global average pool, dense layer to 1001 classes, softmax and argmax. `small` keeps the
topology with width / 8, one block per stage and a 64x64 input.

Weights come from a numpy generator with a fixed seed. The dense layer's bias is calibrated once on a
few synthetic images so that the mean feature maps to zero logits: with random weights the common part
of the ReLU features otherwise decides every argmax, and the stand-in would name one class for all images.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from edgeperf.benchmarks._common import ModelMismatch, Precision
from edgeperf.benchmarks._model_files import OnnxModelWriter
from edgeperf.benchmarks._onnx import GraphBuilder, drop_outputs, ort_session, quantize_int8, to_fp16
from edgeperf.benchmarks.base import Size
from edgeperf.benchmarks.resnet50.dataset import SyntheticPixels
from edgeperf.benchmarks.resnet50.spec import (
    ARGMAX_NAME,
    IMAGE_SIZE,
    INPUT_NAME,
    NUM_CLASSES,
    REFERENCE_SHA256,
    SOFTMAX_NAME,
    tensors,
)

__all__ = [
    "ARCH",
    "MAX_BATCH_SIZE",
    "Arch",
    "ModelMismatch",
    "Precision",
    "build_standin",
    "int8_variant",
    "standin_bytes",
    "write_model",
]

SEED = 50_050
"""Seed of the stand-in's weights."""
CALIBRATION_SEED = 50_051
"""Seed of the synthetic images used to calibrate the dense bias and the int8 ranges (not the eval set)."""
MAX_BATCH_SIZE: dict[Size, int] = {"full": 32, "small": 8}
MAX_QUEUE_DELAY_US = 500
"""Short batching window: enough to merge concurrent Offline/MultiStream requests, small next to a run."""
_FEATURES = "edgeperf_features"


@dataclass(frozen=True, slots=True, kw_only=True)
class Arch:
    """Shape of a ResNet50-v1.5 stand-in."""

    stem: int
    widths: tuple[int, int, int, int]
    blocks: tuple[int, int, int, int]
    image: int
    classes: int = NUM_CLASSES
    calibration_images: int


ARCH: dict[Size, Arch] = {
    "full": Arch(stem=64, widths=(64, 128, 256, 512), blocks=(3, 4, 6, 3), image=IMAGE_SIZE["full"],
                 calibration_images=8),
    "small": Arch(stem=8, widths=(8, 16, 32, 64), blocks=(1, 1, 1, 1), image=IMAGE_SIZE["small"],
                  calibration_images=32),
}  # fmt: skip


def _bottleneck(g: GraphBuilder, x: str, c_in: int, width: int, stride: int) -> str:
    c_out = width * 4
    y = g.conv_relu(x, c_in, width, 1)
    y = g.conv_relu(y, width, width, 3, stride=stride)  # v1.5: the stride sits on the 3x3 conv
    # NOTE: a small gain on the branch's last conv (zero-gamma-like) keeps the residual sum's variance
    # from doubling at every block.
    y = g.conv(y, width, c_out, 1, gain=0.5)
    shortcut = x if (stride == 1 and c_in == c_out) else g.conv(x, c_in, c_out, 1, stride=stride, gain=1.0)
    return g.relu(g.add(y, shortcut))


def _graph(arch: Arch) -> tuple[onnx.ModelProto, str, str]:
    """The stand-in with an extra features output; returns (model, dense weight name, dense bias name)."""
    g = GraphBuilder("resnet50_v1.5_standin", seed=SEED)
    x = g.input(INPUT_NAME, "FP32", ["N", 3, arch.image, arch.image])
    # inputs are mean-subtracted pixels of standard deviation about 64, not unit-variance activations
    y = g.conv_relu(x, 3, arch.stem, 7, stride=2, gain=2.0 / 64.0**2)
    y = g.maxpool(y, 3, 2)
    c_in = arch.stem
    for stage, (width, blocks) in enumerate(zip(arch.widths, arch.blocks, strict=True)):
        for block in range(blocks):
            stride = 2 if (block == 0 and stage > 0) else 1
            y = _bottleneck(g, y, c_in, width, stride)
            c_in = width * 4
    features = g.op("Flatten", g.global_avg_pool(y), out=_FEATURES, axis=1)
    logits = g.gemm(features, c_in, arch.classes)
    g.op("Softmax", logits, out=SOFTMAX_NAME, axis=-1)
    g.op("ArgMax", logits, out=ARGMAX_NAME, axis=-1, keepdims=0)
    g.output(ARGMAX_NAME, "INT64", ["N"])
    g.output(SOFTMAX_NAME, "FP32", ["N", arch.classes])
    g.output(_FEATURES, "FP32", ["N", c_in])
    model = g.build()
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    return model, gemm.input[1], gemm.input[2]


def build_standin(size: Size = "full") -> onnx.ModelProto:
    """The FP32 stand-in at `size`, dense bias calibrated (deterministic: same size, same bytes)."""
    arch = ARCH[size]
    model, w_name, b_name = _graph(arch)
    calib = SyntheticPixels(arch.calibration_images, size=size, seed=CALIBRATION_SEED)
    session = ort_session(model.SerializeToString())
    feats = np.concatenate(
        [session.run([_FEATURES], {INPUT_NAME: calib.batch([i])})[0] for i in range(len(calib))]
    )
    inits = {t.name: t for t in model.graph.initializer}
    weight = numpy_helper.to_array(inits[w_name])
    bias = -(feats.mean(axis=0, dtype=np.float64) @ weight.astype(np.float64)).astype(np.float32)
    inits[b_name].CopyFrom(numpy_helper.from_array(bias, b_name))
    return drop_outputs(model, (_FEATURES,))


@functools.lru_cache(maxsize=6)
def standin_bytes(size: Size = "full", precision: Precision = "fp32") -> bytes:
    """Serialized stand-in, built once per process, size and precision."""
    if precision == "int8":
        return int8_variant(standin_bytes(size, "fp32"), size)
    if precision == "fp16":
        return to_fp16(standin_bytes(size, "fp32"))
    return build_standin(size).SerializeToString()


def int8_variant(fp32_model: bytes, size: Size) -> bytes:
    """Static int8 quantisation (QDQ, per-channel weights) by ONNX Runtime, calibrated on synthetic images."""
    calib = SyntheticPixels(ARCH[size].calibration_images, size=size, seed=CALIBRATION_SEED)
    feeds = [{INPUT_NAME: calib.batch([i])} for i in range(len(calib))]
    return quantize_int8(fp32_model, feeds, ["Conv", "Gemm", "Add", "MaxPool", "GlobalAveragePool", "Relu"])


write_model = OnnxModelWriter(
    benchmark="resnet50",
    label="ResNet50",
    tensors=tensors,
    standin=standin_bytes,
    reference_sha256=REFERENCE_SHA256,
    max_batch_size=MAX_BATCH_SIZE,
    max_queue_delay_us=MAX_QUEUE_DELAY_US,
)
"""Write `<model_dir>/config.pbtxt` and `<model_dir>/1/model.onnx` (stand-in or the official file),
batching per sample (see `OnnxModelWriter`)."""
