"""RetinaNet for the server: the stand-in builder (backbone, FPN, heads, box decoding, NMS) and the file check.

The stand-in follows MLPerf's model (torchvision-style RetinaNet, `retinanet_from_backbone`):
- ImageNet mean/std normalisation inside the graph (GeneralizedRCNNTransform; input is RGB in [0, 1]);
- ResNeXt50-32x4d: 7x7/2 stem, max pool, bottlenecks [3, 4, 6, 3] with 32-group 3x3 convs of widths
  128/256/512/1024 and outputs 256/512/1024/2048, stride on the 3x3 conv;
- FPN on C3..C5 (returned_layers [2, 3, 4]) with 256 channels, nearest 2x top-down, and P6/P7 from P5
  (LastLevelP6P7(256, 256)): strides 8..128, five levels;
- heads shared across levels: four 3x3 conv + ReLU then 9 anchors x 264 class logits (sigmoid) and
  9 x 4 box deltas; anchors of sizes (x, int(x * 2^(1/3)), int(x * 2^(2/3))) for x in 32..512 and
  ratios 0.5, 1, 2, laid out (y, x, anchor) with stride image_size // feature_size;
- post-processing as torchvision's postprocess_detections: per level the top 1000 scores, box
  decoding (weights 1, dw/dh clamped at log(1000/16)), clipping to the image, class-wise NMS at IoU
  0.5 (boxes offset per class, ONNX NonMaxSuppression), scores above 0.05, at most 300 detections.
`small` keeps the topology: 8-channel stem, widths / 8, 4 groups, one block per stage, 32-channel FPN,
128x128 input and anchors scaled by 128/800.

Random heads would score every anchor alike, and a random backbone gives every image its own logit
scale. The stand-in therefore standardises each level's class logits per image (a stand-in device, not
part of RetinaNet) and calibrates once on synthetic images: the class-conv bias (each channel centred),
one logit shift (so that even the weakest calibration image has a few dozen candidates above 0.3), and
the scale of the box-delta conv (deltas of standard deviation 0.2, boxes near their anchors).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import onnx
from onnx import numpy_helper

from edgeperf.benchmarks._common import ModelMismatch, Precision
from edgeperf.benchmarks._model_files import OnnxModelWriter
from edgeperf.benchmarks._onnx import GraphBuilder, drop_outputs, ort_session, quantize_int8, to_fp16
from edgeperf.benchmarks.base import Size
from edgeperf.benchmarks.retinanet.dataset import SyntheticPixels
from edgeperf.benchmarks.retinanet.spec import (
    DETECTIONS_PER_IMAGE,
    IMAGE_SIZE,
    INPUT_NAME,
    NMS_IOU,
    NUM_CLASSES,
    REFERENCE_SHA256,
    SCORE_THRESHOLD,
    TOPK_CANDIDATES,
    tensors,
)

__all__ = [
    "ARCH",
    "Arch",
    "ModelMismatch",
    "anchors",
    "build_standin",
    "standin_bytes",
    "write_model",
]

SEED = 26_400
CALIBRATION_SEED = 26_401
ANCHORS_PER_CELL = 9
CALIBRATION_SCORE = 0.3
DELTA_STD = 0.2
_BBOX_CLIP = float(np.log(1000.0 / 16))
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
_CLS, _REG = "edgeperf_cls_logits", "edgeperf_box_deltas"


@dataclass(frozen=True, slots=True, kw_only=True)
class Arch:
    """Shape of a RetinaNet stand-in."""

    stem: int
    widths: tuple[int, int, int, int]
    outs: tuple[int, int, int, int]
    blocks: tuple[int, int, int, int]
    groups: int
    fpn: int
    image: int
    anchor_base: tuple[int, ...]
    calibration_images: int
    calibration_candidates: int
    """Candidates of the weakest calibration image that the logit shift puts above CALIBRATION_SCORE."""
    classes: int = NUM_CLASSES


ARCH: dict[Size, Arch] = {
    "full": Arch(stem=64, widths=(128, 256, 512, 1024), outs=(256, 512, 1024, 2048), blocks=(3, 4, 6, 3),
                 groups=32, fpn=256, image=IMAGE_SIZE["full"], anchor_base=(32, 64, 128, 256, 512),
                 calibration_images=3, calibration_candidates=300),
    "small": Arch(stem=8, widths=(16, 32, 64, 128), outs=(32, 64, 128, 256), blocks=(1, 1, 1, 1),
                  groups=4, fpn=32, image=IMAGE_SIZE["small"], anchor_base=(5, 10, 20, 41, 82),
                  calibration_images=4, calibration_candidates=40),
}  # fmt: skip


def _grid_sizes(image: int) -> list[int]:
    """Side of P3..P7: every stride-2 layer (padded convs and pool) maps n to ceil(n / 2)."""
    side, out = image, []
    for level in range(7):
        side = (side + 1) // 2
        if level >= 2:  # stem conv, max pool -> stride 4; then C3 (stride 8) ... P7 (stride 128)
            out.append(side)
    return out


def anchors(arch: Arch) -> list[npt.NDArray[np.float32]]:
    """Per level, anchors as [cx, cy, w, h] rows in (y, x, anchor) order (torchvision AnchorGenerator)."""
    ratios = np.array([0.5, 1.0, 2.0])
    out = []
    for base, grid in zip(arch.anchor_base, _grid_sizes(arch.image), strict=True):
        scales = np.array([base, int(base * 2 ** (1.0 / 3)), int(base * 2 ** (2.0 / 3))], np.float64)
        h_ratios = np.sqrt(ratios)
        ws = (1.0 / h_ratios[:, None] * scales[None, :]).reshape(-1)
        hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
        cell = np.round(np.stack([-ws, -hs, ws, hs], axis=1) / 2)
        stride = arch.image // grid
        shift = np.arange(grid, dtype=np.float64) * stride
        sy, sx = np.meshgrid(shift, shift, indexing="ij")
        shifts = np.stack([sx.ravel(), sy.ravel(), sx.ravel(), sy.ravel()], axis=1)
        xyxy = (shifts[:, None, :] + cell[None, :, :]).reshape(-1, 4)
        wh = xyxy[:, 2:] - xyxy[:, :2]
        out.append(np.concatenate([xyxy[:, :2] + 0.5 * wh, wh], axis=1).astype(np.float32))
    return out


def _bottleneck(g: GraphBuilder, x: str, c_in: int, width: int, c_out: int, stride: int, groups: int) -> str:
    y = g.conv_relu(x, c_in, width, 1)
    y = g.conv_relu(y, width, width, 3, stride=stride, group=groups)
    y = g.conv(y, width, c_out, 1, gain=0.5)
    shortcut = x if (stride == 1 and c_in == c_out) else g.conv(x, c_in, c_out, 1, stride=stride, gain=1.0)
    return g.relu(g.add(y, shortcut))


def _i64(g: GraphBuilder, values: list[int]) -> str:
    return g.const(np.array(values, np.int64), "i64")


def _slice(g: GraphBuilder, x: str, start: int, end: int, axis: int) -> str:
    return g.op("Slice", x, _i64(g, [start]), _i64(g, [end]), _i64(g, [axis]))


def _level(
    g: GraphBuilder, arch: Arch, shift: str, feature: str, grid: int, cls_head: list[tuple[str, str]],
    reg_head: list[tuple[str, str]], level_anchors: npt.NDArray[np.float32],
) -> tuple[str, str, str, str, str]:  # fmt: skip
    """Head outputs of one level, its top candidates decoded: (boxes, scores, labels, raw logits, deltas)."""
    a, k = ANCHORS_PER_CELL, arch.classes
    cls, reg = feature, feature
    for params in cls_head[:-1]:
        cls = g.relu(g.conv_apply(cls, params, 3))
    for params in reg_head[:-1]:
        reg = g.relu(g.conv_apply(reg, params, 3))
    cls = g.conv_apply(cls, cls_head[-1], 3)  # [1, A*K, H, W]
    reg = g.conv_apply(reg, reg_head[-1], 3)  # [1, A*4, H, W]
    # torchvision: view(N, A, K, H, W).permute(0, 3, 4, 1, 2).reshape(N, -1, K): rows in (y, x, anchor) order
    cls = g.op("Transpose", g.op("Reshape", cls, _i64(g, [1, a, k, grid, grid])), perm=[0, 3, 4, 1, 2])
    raw = g.op("Reshape", cls, _i64(g, [-1]))
    # NOTE: stand-in calibration, not part of RetinaNet: the level's logits are standardised per image
    # (random backbones give each image its own logit scale) and shifted by a calibrated constant.
    centred = g.op("Sub", raw, g.op("ReduceMean", raw, axes=[0], keepdims=1))
    spread = g.op("Sqrt", g.op("ReduceMean", g.op("Mul", centred, centred), axes=[0], keepdims=1))
    eps = g.const(np.array(1e-6, np.float32), "eps")
    logits = g.add(g.op("Div", centred, g.add(spread, eps)), shift)
    reg = g.op("Transpose", g.op("Reshape", reg, _i64(g, [1, a, 4, grid, grid])), perm=[0, 3, 4, 1, 2])
    deltas = g.op("Reshape", reg, _i64(g, [-1, 4]))
    topk = min(TOPK_CANDIDATES, grid * grid * a * k)
    scores, idx = g.node("TopK", [g.op("Sigmoid", logits), _i64(g, [topk])], outputs=2, axis=0)
    n_classes = _i64(g, [k])
    anchor_idx = g.op("Div", idx, n_classes)
    labels = g.op("Mod", idx, n_classes)
    d = g.op("Gather", deltas, anchor_idx, axis=0)
    anc = g.op("Gather", g.const(level_anchors, "anchors"), anchor_idx, axis=0)
    anc_ctr, anc_wh = _slice(g, anc, 0, 2, 1), _slice(g, anc, 2, 4, 1)
    ctr = g.add(g.op("Mul", _slice(g, d, 0, 2, 1), anc_wh), anc_ctr)
    dwh = g.op("Min", _slice(g, d, 2, 4, 1), g.const(np.array(_BBOX_CLIP, np.float32), "clip"))
    half = g.op("Mul", g.op("Mul", g.op("Exp", dwh), anc_wh), g.const(np.array(0.5, np.float32), "half"))
    boxes = g.op("Concat", g.op("Sub", ctr, half), g.add(ctr, half), axis=1)
    zero, side = g.const(np.array(0.0, np.float32), "zero"), g.const(np.array(arch.image, np.float32), "side")
    boxes = g.op("Clip", boxes, zero, side)
    return boxes, scores, labels, raw, deltas


def _graph(arch: Arch) -> tuple[onnx.ModelProto, tuple[str, str], str]:
    """The stand-in with two calibration outputs; returns (model, (class bias, logit shift), box-delta weight)."""
    g = GraphBuilder("retinanet_resnext50_32x4d_fpn_standin", seed=SEED)
    x = g.input(INPUT_NAME, "FP32", [1, 3, arch.image, arch.image])
    mean = g.const(np.array(_MEAN, np.float32).reshape(1, 3, 1, 1), "mean")
    std = g.const(np.array(_STD, np.float32).reshape(1, 3, 1, 1), "std")
    y = g.maxpool(g.conv_relu(g.op("Div", g.op("Sub", x, mean), std), 3, arch.stem, 7, stride=2), 3, 2)
    c_in, features = arch.stem, []
    for stage in range(4):
        for block in range(arch.blocks[stage]):
            stride = 2 if (block == 0 and stage > 0) else 1
            y = _bottleneck(g, y, c_in, arch.widths[stage], arch.outs[stage], stride, arch.groups)
            c_in = arch.outs[stage]
        if stage > 0:
            features.append((y, c_in))
    # FPN (torchvision FeaturePyramidNetwork + LastLevelP6P7 on P5)
    inner = [g.conv(f, c, arch.fpn, 1, gain=1.0) for f, c in features]
    last = inner[-1]
    pyramid = [g.conv(last, arch.fpn, arch.fpn, 3, gain=1.0)]
    for lateral in reversed(inner[:-1]):
        last = g.add(lateral, g.upsample2x(last))
        pyramid.insert(0, g.conv(last, arch.fpn, arch.fpn, 3, gain=1.0))
    p6 = g.conv(pyramid[-1], arch.fpn, arch.fpn, 3, stride=2, gain=1.0)
    p7 = g.conv(g.relu(p6), arch.fpn, arch.fpn, 3, stride=2, gain=1.0)
    pyramid += [p6, p7]
    cls_head = [g.conv_params(arch.fpn, arch.fpn, 3) for _ in range(4)]
    cls_head.append(g.conv_params(arch.fpn, ANCHORS_PER_CELL * arch.classes, 3, gain=1.0))
    reg_head = [g.conv_params(arch.fpn, arch.fpn, 3) for _ in range(4)]
    reg_head.append(g.conv_params(arch.fpn, ANCHORS_PER_CELL * 4, 3, gain=1.0))
    shift = g.const(np.array(0.0, np.float32), "cls_shift")
    levels = [
        _level(g, arch, shift, feature, grid, cls_head, reg_head, level_anchors)
        for feature, grid, level_anchors in zip(pyramid, _grid_sizes(arch.image), anchors(arch), strict=True)
    ]
    boxes = g.op("Concat", *(lv[0] for lv in levels), axis=0)
    scores = g.op("Concat", *(lv[1] for lv in levels), axis=0)
    labels = g.op("Concat", *(lv[2] for lv in levels), axis=0)
    g.op("Concat", *(lv[3] for lv in levels), out=_CLS, axis=0)
    g.op("Concat", *(lv[4] for lv in levels), out=_REG, axis=0)
    # class-wise NMS as torchvision's batched_nms: offset each class's boxes so classes never overlap
    offset = g.op("Mul", g.op("Cast", labels, to=onnx.TensorProto.FLOAT),
                  g.const(np.array(arch.image + 1, np.float32), "class_offset"))  # fmt: skip
    shifted = g.add(boxes, g.op("Unsqueeze", offset, _i64(g, [1])))
    selected = g.op(
        "NonMaxSuppression",
        g.op("Unsqueeze", shifted, _i64(g, [0])),
        g.op("Unsqueeze", scores, _i64(g, [0, 1])),
        _i64(g, [DETECTIONS_PER_IMAGE]),
        g.const(np.array([NMS_IOU], np.float32), "iou"),
        g.const(np.array([SCORE_THRESHOLD], np.float32), "score_threshold"),
    )
    keep = g.op("Squeeze", _slice(g, selected, 2, 3, 1), _i64(g, [1]))
    g.op("Gather", boxes, keep, out="boxes", axis=0)
    g.op("Gather", scores, keep, out="scores", axis=0)
    g.op("Gather", labels, keep, out="labels", axis=0)
    g.output("boxes", "FP32", ["detections", 4])
    g.output("scores", "FP32", ["detections"])
    g.output("labels", "INT64", ["detections"])
    g.output(_CLS, "FP32", ["candidates"])
    g.output(_REG, "FP32", ["anchors", 4])
    return g.build(), (cls_head[-1][1], shift), reg_head[-1][0]


def build_standin(size: Size = "full") -> onnx.ModelProto:
    """The FP32 stand-in at `size` with its class bias and delta scale calibrated (deterministic)."""
    arch = ARCH[size]
    model, (bias_name, shift_name), reg_w_name = _graph(arch)
    calib = SyntheticPixels(arch.calibration_images, size=size, seed=CALIBRATION_SEED)
    sess = ort_session(model.SerializeToString())
    logits, deltas = [], []
    for i in range(len(calib)):
        cls, reg = sess.run([_CLS, _REG], {INPUT_NAME: calib.sample(i)[INPUT_NAME]})
        logits.append(cls)
        deltas.append(reg)
    # NOTE: each class-conv channel (anchor, class) is centred on its calibration mean, else the common
    # part of the features picks the same few classes everywhere. The graph then standardises each
    # level's logits per image; the shift puts `calibration_candidates` candidates of the weakest
    # calibration image above CALIBRATION_SCORE.
    channels = ANCHORS_PER_CELL * arch.classes
    channel_mean = np.concatenate([c.reshape(-1, channels) for c in logits]).mean(axis=0)
    sizes = [grid * grid * channels for grid in _grid_sizes(arch.image)]
    kth = arch.calibration_candidates
    tops = []
    for raw in logits:
        z = []
        for level in np.split(raw, np.cumsum(sizes)[:-1]):
            centred = level.reshape(-1, channels) - channel_mean
            centred -= centred.mean()
            z.append(centred.ravel() / (centred.std() + 1e-6))
        flat = np.concatenate(z)
        tops.append(float(np.partition(flat, flat.size - 1 - kth)[flat.size - 1 - kth]))
    shift = np.float32(np.log(CALIBRATION_SCORE / (1 - CALIBRATION_SCORE)) - min(tops))
    delta_scale = DELTA_STD / float(np.concatenate(deltas).std())
    inits = {t.name: t for t in model.graph.initializer}
    w = numpy_helper.to_array(inits[reg_w_name])
    inits[reg_w_name].CopyFrom(
        numpy_helper.from_array((w * np.float32(delta_scale)).astype(np.float32), reg_w_name)
    )
    inits[bias_name].CopyFrom(numpy_helper.from_array((-channel_mean).astype(np.float32), bias_name))
    inits[shift_name].CopyFrom(numpy_helper.from_array(np.array(shift, np.float32), shift_name))
    return drop_outputs(model, (_CLS, _REG))


@functools.lru_cache(maxsize=4)
def standin_bytes(size: Size = "full", precision: Precision = "fp32") -> bytes:
    """Serialized stand-in, built once per process, size and precision."""
    if precision == "fp16":
        return to_fp16(standin_bytes(size, "fp32"))
    if precision == "int8":
        calib = SyntheticPixels(ARCH[size].calibration_images, size=size, seed=CALIBRATION_SEED)
        feeds = [calib.sample(i) for i in range(len(calib))]
        # NOTE: the backbone, FPN and heads are quantised; decoding and NMS stay FP32 as on real int8 SUTs.
        return quantize_int8(standin_bytes(size, "fp32"), feeds, ["Conv", "Add", "MaxPool", "Relu"])
    return build_standin(size).SerializeToString()


write_model = OnnxModelWriter(
    benchmark="retinanet",
    label="RetinaNet",
    tensors=tensors,
    standin=standin_bytes,
    reference_sha256=REFERENCE_SHA256,
)
"""Write `<model_dir>/config.pbtxt` (max_batch_size 0, as the official batch-1 model) and `1/model.onnx`
(see `OnnxModelWriter`)."""
