"""The RNN-T stand-in's joint network: structured weights derived from its own encoder and prediction graphs."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper

from edgeperf.benchmarks.base import Size
from edgeperf.benchmarks.rnnt.dataset import synthetic_waveform
from edgeperf.benchmarks.rnnt.features import log_mel_features
from edgeperf.benchmarks.rnnt.layers import SEED, GraphBuilder, RnntConfig, config_for

__all__ = ["build_joint"]

# The joint network's structure (see build_joint): width of a vote's ramp and of the dead zone at each bin
# edge (in standard deviations of the projection), logit scales.
_BIN_RAMP = 0.02
_DEAD_ZONE = 0.05
_VOTE_GAIN = 2.0
_BLANK_BIAS = 3.0
"""A label needs both of its votes (up to 2 x _VOTE_GAIN) to beat blank."""
_MATCH_THRESHOLD = 0.5
_REPEAT_PENALTY = 16.0


def _grid(labels: int, audio_units: int) -> tuple[int, int]:
    """Bins per projection: the squarest grid with a cell per label that fits 4 ReLUs per bin."""
    rows = int(np.ceil(np.sqrt(labels)))
    cols = int(np.ceil(labels / rows))
    if 4 * (rows + cols) > audio_units:
        raise ValueError(
            f"joint_hidden leaves {audio_units} audio units, a {rows}x{cols} grid needs {4 * (rows + cols)}"
        )
    return rows, cols


def _last_label_templates(
    prediction: onnx.ModelProto, config: RnntConfig, seed: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Mean prediction output after each label minus the overall mean, and that mean, over random labels."""
    import onnxruntime as ort  # the stand-in builder runs the prediction graph once to shape the joint

    session = ort.InferenceSession(prediction.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    labels = config.num_classes - 1
    sequence = rng.permutation(np.repeat(np.arange(labels), 8))
    h = np.zeros((config.pred_layers, 1, config.pred_hidden), dtype=np.float32)
    c = np.zeros_like(h)
    outputs = np.zeros((len(sequence), config.pred_hidden), dtype=np.float64)
    for i, token in enumerate(sequence):
        g, h, c = session.run(None, {"token": np.array([[token]], dtype=np.int64), "h_in": h, "c_in": c})
        outputs[i] = g[0]
    mean = outputs.mean(axis=0)
    templates = np.stack([(outputs[sequence == k] - mean).mean(axis=0) for k in range(labels)])
    # NOTE: rounded so that last-bit differences between CPUs do not change the built weights
    return np.round(templates, 4).astype(np.float32), np.round(mean, 4).astype(np.float32)


def _encoder_outputs(encoder: onnx.ModelProto) -> npt.NDArray[np.float32]:
    """Encoder output frames [T, H] for a few synthetic utterances (where the joint's bins are cut)."""
    import onnxruntime as ort

    session = ort.InferenceSession(encoder.SerializeToString(), providers=["CPUExecutionProvider"])
    frames = []
    for index in range(4):
        features = log_mel_features(synthetic_waveform(10_000 + index, "small"))
        frames.append(session.run(None, {"features": features[:, np.newaxis, :]})[0][:, 0, :])
    return np.concatenate(frames).astype(np.float32)


def build_joint(size: Size, prediction: onnx.ModelProto, encoder: onnx.ModelProto) -> onnx.ModelProto:
    """ "f" FP32 [1, H], "g" FP32 [1, P] -> "logits" FP32 [1, 29].

    Random weights alone make greedy decoding repeat labels up to 30 times a step, so the stand-in's
    joint weights get the structure a trained model learns, built from its own encoder and prediction
    graphs: audio hidden units place the encoder output in a cell of a grid (two projections, a few bins
    each, thresholds from calibration audio) and vote for that cell's label; label hidden units fire when
    the prediction output says that label was just emitted (a template of the prediction network's output
    after it) and veto that label, so greedy decoding moves on to blank until the audio moves to another
    cell: about one label every three encoder steps.
    """
    c = config_for(size)
    g = GraphBuilder(SEED + 2)
    labels = c.num_classes - 1
    audio_units = c.joint_hidden - labels
    w1 = np.zeros((c.joint_hidden, c.encoder_hidden + c.pred_hidden), dtype=np.float32)
    b1 = np.zeros(c.joint_hidden, dtype=np.float32)
    w2 = np.zeros((c.num_classes, c.joint_hidden), dtype=np.float32)
    b2 = np.zeros(c.num_classes, dtype=np.float32)
    # label units: cosine match of the centred prediction output with each label's template, ~0.5 on a match
    templates, mean = _last_label_templates(prediction, c, SEED + 3)
    norms = np.maximum(np.linalg.norm(templates, axis=1, keepdims=True), 1e-6)
    w1[:labels, c.encoder_hidden :] = templates / norms**2
    b1[:labels] = -(templates / norms**2) @ mean - _MATCH_THRESHOLD
    w2[np.arange(labels), np.arange(labels)] = -_REPEAT_PENALTY
    # audio units: two standardised random projections (z1, z2) of the encoder output are each cut into a
    # few wide bins of equal share on calibration frames; the grid of bin pairs is a grid of cells, one
    # label per cell. Each bin is a vote of four ReLUs, relu(z-a) - relu(z-a-r) - relu(z-b) + relu(z-b-r)
    # (1 inside the bin, 0 outside), and a label's logit is the sum of its row's and its column's votes, so
    # only the label of the current cell (2 votes) beats blank; a move to another cell emits its label.
    # Dead zones at the bin edges keep decisions clear of rounding errors (FP16, int8).
    frames = _encoder_outputs(encoder).astype(np.float64)
    offset = labels
    grid = _grid(labels, audio_units)
    cells = g.permutation(grid[0] * grid[1])
    for axis, count in enumerate(grid):
        projection = g.normal((c.encoder_hidden,), 1.0).astype(np.float64)
        z = frames @ projection
        mu, sd = round(float(z.mean()), 3), round(float(z.std()), 3) + 1e-3
        cuts = np.round(np.quantile((z - mu) / sd, np.linspace(0.0, 1.0, count + 1)[1:-1]), 3)
        edges = list(itertools.pairwise([-np.inf, *cuts.tolist(), np.inf]))
        for index, (low, high) in enumerate(edges):
            members = [
                int(cell) for k, cell in enumerate(cells) if (k // grid[1], k % grid[1])[axis] == index
            ]
            members = [m for m in members if m < labels]  # spare cells vote for nothing
            ramps: list[tuple[float, float]] = []
            if np.isfinite(low):
                ramps += [(low + _DEAD_ZONE, 1.0), (low + _DEAD_ZONE + _BIN_RAMP, -1.0)]
            else:  # open below: the vote is 1 - ramp(high); its constant goes into the output bias
                b2[members] += _VOTE_GAIN
            if np.isfinite(high):
                ramps += [(high - _DEAD_ZONE - _BIN_RAMP, -1.0), (high - _DEAD_ZONE, 1.0)]
            for shift, sign in ramps:
                w1[offset, : c.encoder_hidden] = projection / sd / _BIN_RAMP
                b1[offset] = -(mu / sd + shift) / _BIN_RAMP
                w2[members, offset] = sign * _VOTE_GAIN
                offset += 1
    b2[c.blank_index] = _BLANK_BIAS
    (x,) = g.node("Concat", ["f", "g"], axis=1)
    (x,) = g.node("Gemm", [x, g.const("W", w1), g.const("b", b1)], transB=1)
    (x,) = g.node("Relu", [x])
    g.nodes.append(helper.make_node("Gemm", [x, g.const("W", w2), g.const("b", b2)], ["logits"], transB=1))
    return g.model(
        f"rnnt_joint_{size}",
        [
            helper.make_tensor_value_info("f", TensorProto.FLOAT, [1, c.encoder_hidden]),
            helper.make_tensor_value_info("g", TensorProto.FLOAT, [1, c.pred_hidden]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, c.num_classes])],
    )
