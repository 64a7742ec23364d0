"""RNN-T as three ONNX graphs (encoder, prediction network, joint network) and the model-repository writer.

Layout of mlcommons/inference v2.1 `speech_recognition/rnnt/pytorch/model_separable_rnnt.py` and
`rnn.py`: the encoder is 2 LSTM layers (240 -> 1024), StackTime(2) (zero-pad time to even, concatenate
frame pairs into 2048 features, lengths ceil(T / 2)), 3 LSTM layers (2048 -> 1024); the prediction
network embeds the previous label (28 rows, no blank; the start symbol is an all-zero input with zero
state) into 320 and runs 2 LSTM layers of 320; the joint network is Linear(1024 + 320 -> 512) on the
concatenation [encoder, prediction], ReLU, Linear(512 -> 29). LSTM forget-gate biases start at 1.0.

The MLPerf reference model is PyTorch only, so there is no official ONNX file: `from_file` takes a folder
holding our three graphs exported from the real checkpoint, checked for the tensor names below.
The stand-in's weights are deterministic: seeded normal LSTM and embedding weights scaled so states
follow their input, and a joint network whose weights are derived from the stand-in's own encoder and
prediction graphs (see `build_joint`) so greedy decoding emits about one label every other encoder step,
as the trained model does on speech, instead of the 30-label bursts random weights give. Building it
runs those two graphs once with onnxruntime.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeperf.benchmarks._onnx import Precision, to_fp16
from edgeperf.benchmarks.base import Size
from edgeperf.benchmarks.rnnt.features import FEATURES
from edgeperf.benchmarks.rnnt.spec import BLANK_INDEX, MAX_SYMBOLS_PER_STEP, NUM_CLASSES

__all__ = [
    "ENCODER_FILE",
    "FULL",
    "GRAPH_FILES",
    "JOINT_FILE",
    "PIPELINE_FACTORY",
    "PIPELINE_FILE",
    "PREDICTION_FILE",
    "ModelCheckError",
    "RnntConfig",
    "build_encoder",
    "build_joint",
    "build_prediction",
    "config_for",
    "standin_graphs",
    "write_model",
]

ENCODER_FILE = "encoder.onnx"
PREDICTION_FILE = "prediction.onnx"
JOINT_FILE = "joint.onnx"
GRAPH_FILES = (ENCODER_FILE, PREDICTION_FILE, JOINT_FILE)
PIPELINE_FILE = "pipeline.json"
PIPELINE_FACTORY = "edgeperf.benchmarks.rnnt.pipeline:build"
_OPSET = 17
_SEED = 7452


class ModelCheckError(ValueError):
    """A graph is not an RNN-T part of the expected layout; the message names the file and tensor."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RnntConfig:
    """Sizes of the network; also written to pipeline.json for the server-side decoder."""

    encoder_hidden: int
    pre_layers: int = 2
    post_layers: int = 3
    stack_time: int = 2
    pred_hidden: int
    pred_layers: int = 2
    joint_hidden: int
    feature_size: int = FEATURES.feature_size
    num_classes: int = NUM_CLASSES
    blank_index: int = BLANK_INDEX
    max_symbols_per_step: int = MAX_SYMBOLS_PER_STEP

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> RnntConfig:
        raw = json.loads(text)
        return cls(**{k: int(v) for k, v in raw.items()})


FULL = RnntConfig(encoder_hidden=1024, pred_hidden=320, joint_hidden=512)
SMALL = RnntConfig(encoder_hidden=64, pred_hidden=32, joint_hidden=96)

# Stand-in weight scales: LSTM outputs of a random network have about this standard deviation; the
# encoder's recurrent weights are halved so that rounding errors fade instead of growing over time; the
# prediction network's LSTMs forget fast so its output says which label came last (see build_joint).
_HIDDEN_STD = 0.3
_ENCODER_RECURRENT_GAIN = 0.5
_PRED_RECURRENT_GAIN = 0.2
_PRED_FORGET_BIAS = -2.0
# The joint network's structure (see build_joint): width of a vote's ramp and of the dead zone at each bin
# edge (in standard deviations of the projection), logit scales.
_BIN_RAMP = 0.02
_DEAD_ZONE = 0.05
_VOTE_GAIN = 2.0
_BLANK_BIAS = 3.0
"""A label needs both of its votes (up to 2 x _VOTE_GAIN) to beat blank."""
_MATCH_THRESHOLD = 0.5
_REPEAT_PENALTY = 16.0


def config_for(size: Size) -> RnntConfig:
    return FULL if size == "full" else SMALL


class _Graph:
    def __init__(self, seed: int) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._rng = np.random.default_rng(seed)
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, value: npt.NDArray[Any]) -> str:
        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> list[str]:
        outs = [self.name(f"{op.lower()}_out") for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=self.name(op.lower()), **attrs))
        return outs

    def permutation(self, n: int) -> npt.NDArray[np.int64]:
        return self._rng.permutation(n).astype(np.int64)

    def normal(self, shape: tuple[int, ...], std: float) -> npt.NDArray[np.float32]:
        return (std * self._rng.standard_normal(shape)).astype(np.float32)

    def lstm(
        self,
        x: str,
        input_size: int,
        hidden: int,
        h0: str = "",
        c0: str = "",
        *,
        input_std: float = _HIDDEN_STD,
        recurrent_gain: float = 1.0,
        forget_bias: float = 1.0,
    ) -> tuple[str, str, str]:
        """One LSTM layer on time-major [T, 1, input]; returns (Y [T, 1, H], Y_h, Y_c).

        Input weights are scaled so gate pre-activations have about unit variance for inputs of
        `input_std`, which keeps the random network's states moving with its input.
        """
        w = self.normal((1, 4 * hidden, input_size), 1.0 / (input_std * float(np.sqrt(input_size))))
        r = self.normal((1, 4 * hidden, hidden), recurrent_gain / (_HIDDEN_STD * float(np.sqrt(hidden))))
        b = self.normal((1, 8 * hidden), 0.1)
        b[0, 2 * hidden : 3 * hidden] += forget_bias  # ONNX gate order i, o, f, c
        inputs = [x, self.const("W", w), self.const("R", r), self.const("B", b), "", h0, c0]
        while inputs and inputs[-1] == "":
            inputs.pop()
        y, y_h, y_c = self.node("LSTM", inputs, n_out=3, hidden_size=hidden)
        (y,) = self.node("Squeeze", [y, self.const("axis1", np.array([1], dtype=np.int64))])
        return y, y_h, y_c

    def model(
        self, name: str, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto]
    ) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", _OPSET)], producer_name="edgeperf"
        )
        model.ir_version = 8
        return model


def _rename_last(g: _Graph, name: str) -> None:
    node = g.nodes[-1]
    node.output[0] = name


def build_encoder(size: Size = "full") -> onnx.ModelProto:
    """ "features" FP32 [T, 1, 240] -> "encoded" FP32 [ceil(T / 2), 1, H]."""
    c = config_for(size)
    g = _Graph(_SEED)
    x, width, std = "features", c.feature_size, 1.0  # features are normalised per feature
    for _ in range(c.pre_layers):
        x, _, _ = g.lstm(x, width, c.encoder_hidden, input_std=std, recurrent_gain=_ENCODER_RECURRENT_GAIN)
        width, std = c.encoder_hidden, _HIDDEN_STD
    # StackTime: pad T with zero frames to a multiple of the factor, then fold frames into features.
    (shape,) = g.node("Shape", [x])
    (t,) = g.node("Gather", [shape, g.const("zero", np.array([0], dtype=np.int64))], axis=0)
    factor = g.const("factor", np.array([c.stack_time], dtype=np.int64))
    (rem,) = g.node("Mod", [t, factor])
    (extra,) = g.node("Mod", [g.node("Sub", [factor, rem])[0], factor])
    zeros2 = g.const("zeros2", np.zeros(2, dtype=np.int64))
    zeros3 = g.const("zeros3", np.zeros(3, dtype=np.int64))
    (pads,) = g.node("Concat", [zeros3, extra, zeros2], axis=0)
    (x,) = g.node("Pad", [x, pads], mode="constant")
    stacked = c.stack_time * c.encoder_hidden
    (x,) = g.node("Reshape", [x, g.const("shape", np.array([-1, 1, stacked], dtype=np.int64))])
    width = stacked
    for _ in range(c.post_layers):
        x, _, _ = g.lstm(x, width, c.encoder_hidden, recurrent_gain=_ENCODER_RECURRENT_GAIN)
        width = c.encoder_hidden
    _rename_last(g, "encoded")
    return g.model(
        f"rnnt_encoder_{size}",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["T", 1, c.feature_size])],
        [helper.make_tensor_value_info("encoded", TensorProto.FLOAT, ["T_out", 1, c.encoder_hidden])],
    )


def build_prediction(size: Size = "full") -> onnx.ModelProto:
    """ "token" INT64 [1, 1], "h_in"/"c_in" FP32 [L, 1, P] -> "g" FP32 [1, P], "h_out", "c_out".

    Token `blank_index` is the start symbol: its embedding row is all zeros, which with zero state is the
    reference's `prediction(None, None)`.
    """
    c = config_for(size)
    g = _Graph(_SEED + 1)
    table = g.normal((c.num_classes, c.pred_hidden), 1.0)
    table[c.blank_index] = 0.0
    (x,) = g.node("Gather", [g.const("embed", table), "token"], axis=0)  # [1, 1, P] = [T=1, B=1, P]
    split = g.const("split", np.ones(c.pred_layers, dtype=np.int64))
    hs = g.node("Split", ["h_in", split], n_out=c.pred_layers, axis=0)
    cs = g.node("Split", ["c_in", split], n_out=c.pred_layers, axis=0)
    h_outs, c_outs = [], []
    for layer in range(c.pred_layers):
        x, y_h, y_c = g.lstm(
            x,
            c.pred_hidden,
            c.pred_hidden,
            hs[layer],
            cs[layer],
            input_std=1.0 if layer == 0 else _HIDDEN_STD,
            recurrent_gain=_PRED_RECURRENT_GAIN,
            forget_bias=_PRED_FORGET_BIAS,
        )
        h_outs.append(y_h)
        c_outs.append(y_c)
    g.nodes.append(
        helper.make_node(
            "Reshape", [x, g.const("shape", np.array([1, c.pred_hidden], dtype=np.int64))], ["g"]
        )
    )
    g.nodes.append(helper.make_node("Concat", h_outs, ["h_out"], axis=0))
    g.nodes.append(helper.make_node("Concat", c_outs, ["c_out"], axis=0))
    state = [c.pred_layers, 1, c.pred_hidden]
    return g.model(
        f"rnnt_prediction_{size}",
        [
            helper.make_tensor_value_info("token", TensorProto.INT64, [1, 1]),
            helper.make_tensor_value_info("h_in", TensorProto.FLOAT, state),
            helper.make_tensor_value_info("c_in", TensorProto.FLOAT, state),
        ],
        [
            helper.make_tensor_value_info("g", TensorProto.FLOAT, [1, c.pred_hidden]),
            helper.make_tensor_value_info("h_out", TensorProto.FLOAT, state),
            helper.make_tensor_value_info("c_out", TensorProto.FLOAT, state),
        ],
    )


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
    """Encoder output frames [T, H] for a few synthetic utterances (to centre the joint's audio logits)."""
    import onnxruntime as ort

    from edgeperf.benchmarks.rnnt.dataset import synthetic_waveform
    from edgeperf.benchmarks.rnnt.features import log_mel_features

    session = ort.InferenceSession(encoder.SerializeToString(), providers=["CPUExecutionProvider"])
    frames = []
    for index in range(4):
        features = log_mel_features(synthetic_waveform(10_000 + index, "small"))
        frames.append(session.run(None, {"features": features[:, np.newaxis, :]})[0][:, 0, :])
    return np.concatenate(frames).astype(np.float32)


def build_joint(
    size: Size = "full", prediction: onnx.ModelProto | None = None, encoder: onnx.ModelProto | None = None
) -> onnx.ModelProto:
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
    prediction = prediction if prediction is not None else build_prediction(size)
    encoder = encoder if encoder is not None else build_encoder(size)
    g = _Graph(_SEED + 2)
    labels = c.num_classes - 1
    audio_units = c.joint_hidden - labels
    if audio_units < 8:
        raise ValueError(f"joint_hidden {c.joint_hidden} is too small for {labels} label units")
    w1 = np.zeros((c.joint_hidden, c.encoder_hidden + c.pred_hidden), dtype=np.float32)
    b1 = np.zeros(c.joint_hidden, dtype=np.float32)
    w2 = np.zeros((c.num_classes, c.joint_hidden), dtype=np.float32)
    b2 = np.zeros(c.num_classes, dtype=np.float32)
    # label units: cosine match of the centred prediction output with each label's template, ~0.5 on a match
    templates, mean = _last_label_templates(prediction, c, _SEED + 3)
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


_EXPECTED = {
    ENCODER_FILE: (("features",), ("encoded",)),
    PREDICTION_FILE: (("token", "h_in", "c_in"), ("g", "h_out", "c_out")),
    JOINT_FILE: (("f", "g"), ("logits",)),
}


def _dim(value: onnx.ValueInfoProto, axis: int) -> int:
    dims = value.type.tensor_type.shape.dim
    return int(dims[axis].dim_value) if axis < len(dims) and dims[axis].HasField("dim_value") else -1


def check_graphs(models: dict[str, onnx.ModelProto]) -> RnntConfig:
    """Check the three graphs' tensor names and infer the sizes the decoder needs.

    Raises:
        ModelCheckError: a graph is missing, or its inputs or outputs are not the expected ones.
    """
    for file, (inputs, outputs) in _EXPECTED.items():
        if file not in models:
            raise ModelCheckError(f"{file}: missing")
        graph = models[file].graph
        initializers = {i.name for i in graph.initializer}
        found_in = tuple(i.name for i in graph.input if i.name not in initializers)
        found_out = tuple(o.name for o in graph.output)
        if found_in != inputs or found_out != outputs:
            raise ModelCheckError(
                f"{file}: expected inputs {inputs} and outputs {outputs}, found {found_in} and {found_out}"
            )
    pred, joint = models[PREDICTION_FILE].graph, models[JOINT_FILE].graph
    sizes = {
        "encoder_hidden": _dim(joint.input[0], 1),
        "pred_hidden": _dim(pred.input[1], 2),
        "pred_layers": _dim(pred.input[1], 0),
        "num_classes": _dim(joint.output[0], 1),
    }
    unknown = [k for k, v in sizes.items() if v <= 0]
    if unknown:
        raise ModelCheckError(f"graphs leave {unknown} unknown; fix those dimensions")
    return RnntConfig(
        encoder_hidden=sizes["encoder_hidden"],
        pred_hidden=sizes["pred_hidden"],
        pred_layers=sizes["pred_layers"],
        joint_hidden=0,
        num_classes=sizes["num_classes"],
        blank_index=sizes["num_classes"] - 1,
    )


def _quantize_lstm_int8(fp32: bytes) -> bytes:
    """LSTM weights to int8 (ONNX Runtime's dynamic quantisation: DynamicQuantizeLSTM)."""
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="edgeperf-rnnt-int8-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(fp32)
        quantize_dynamic(str(src), str(dst), op_types_to_quantize=["LSTM"], weight_type=QuantType.QInt8)
        return dst.read_bytes()


def standin_graphs(size: Size = "full", precision: Precision = "fp32") -> dict[str, bytes]:
    """The three serialized stand-in graphs in `precision`, by file name.

    fp16: every graph FP16 inside, FP32 at its inputs and outputs. int8: the LSTMs of the encoder and
    the prediction network with int8 weights (dynamic quantisation); the joint network, under 1% of the
    work and the most sensitive part, stays FP32.
    """
    encoder, prediction = build_encoder(size), build_prediction(size)
    graphs = {
        ENCODER_FILE: encoder.SerializeToString(),
        PREDICTION_FILE: prediction.SerializeToString(),
        JOINT_FILE: build_joint(size, prediction, encoder).SerializeToString(),
    }
    if precision == "fp16":
        return {name: to_fp16(data) for name, data in graphs.items()}
    if precision == "int8":
        return {
            name: _quantize_lstm_int8(data) if name != JOINT_FILE else data for name, data in graphs.items()
        }
    return graphs


def write_model(
    model_dir: Path, *, size: Size = "full", from_file: Path | None = None, precision: Precision = "fp32"
) -> str:
    """Write config.pbtxt and 1/{encoder,prediction,joint}.onnx + 1/pipeline.json.

    The config's parameters record the model's provenance: `edgeperf_model_source` (`stand-in` or
    `file`), `edgeperf_size`, `edgeperf_precision`, `edgeperf_model_sha256` and `edgeperf_division`
    (`open` for stand-ins; `unverified` for files, as MLPerf publishes no ONNX RNN-T to compare with).

    Args:
        from_file: a folder with the three graphs (exported from the reference checkpoint).
        precision: the stand-in's variant (see `standin_graphs`).

    Returns:
        SHA-256 over the three graph files, in the order encoder, prediction, joint.

    Raises:
        ModelCheckError: `from_file` does not hold the three expected graphs.
    """
    version_dir = model_dir / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    if from_file is not None:
        models = {f: onnx.load(str(from_file / f)) for f in GRAPH_FILES if (from_file / f).is_file()}
        config = check_graphs(models)
        for f in GRAPH_FILES:
            shutil.copyfile(from_file / f, version_dir / f)
        provenance = {"edgeperf_model_source": "file", "edgeperf_size": "full", "edgeperf_precision": "fp32"}
        division = "unverified"
    else:
        config = config_for(size)
        graphs = standin_graphs(size, precision)
        check_graphs({name: onnx.load_from_string(data) for name, data in graphs.items()})
        for f, data in graphs.items():
            (version_dir / f).write_bytes(data)
        provenance = {
            "edgeperf_model_source": "stand-in",
            "edgeperf_size": size,
            "edgeperf_precision": precision,
        }
        division = "open"
    digest = hashlib.sha256()
    for f in GRAPH_FILES:
        digest.update((version_dir / f).read_bytes())
    provenance |= {"edgeperf_model_sha256": digest.hexdigest(), "edgeperf_division": division}
    (version_dir / PIPELINE_FILE).write_text(config.to_json() + "\n")
    (model_dir / "config.pbtxt").write_text(_config_text(model_dir.name, provenance))
    return digest.hexdigest()


def _config_text(name: str, provenance: dict[str, str]) -> str:
    parameters = {"pipeline": PIPELINE_FACTORY, "edgeperf_benchmark": "rnnt", **provenance}
    lines = [
        f'name: "{name}"',
        'platform: "edgeperf_pipeline"',
        "max_batch_size: 0",
        'input [ { name: "audio" data_type: TYPE_FP32 dims: [ -1 ] } ]',
        'output [ { name: "tokens" data_type: TYPE_INT64 dims: [ -1 ] } ]',
        "instance_group [ { count: 1 kind: KIND_CPU } ]",
    ]
    lines += [f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}' for k, v in parameters.items()]
    return "\n".join(lines) + "\n"
