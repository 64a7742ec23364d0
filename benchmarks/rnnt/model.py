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
prediction graphs (see `joint.build_joint`) so greedy decoding emits about one label every three encoder steps,
as the trained model does on speech, instead of the 30-label bursts random weights give. Building it
runs those two graphs once with onnxruntime.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgeperf.benchmarks._common import ModelMismatch, pipeline_config_text
from edgeperf.benchmarks._model_files import provenance_parameters
from edgeperf.benchmarks._onnx import Precision, to_fp16
from edgeperf.benchmarks.base import Size
from edgeperf.benchmarks.rnnt.joint import build_joint
from edgeperf.benchmarks.rnnt.layers import (
    ENCODER_RECURRENT_GAIN,
    FULL,
    HIDDEN_STD,
    PRED_FORGET_BIAS,
    PRED_RECURRENT_GAIN,
    SEED,
    SLOW_FORGET_BIAS,
    SLOW_INPUT_STD,
    SMALL,
    GraphBuilder,
    RnntConfig,
    config_for,
)
from edgeperf.benchmarks.rnnt.spec import SPEC

__all__ = [
    "ENCODER_FILE",
    "FULL",
    "GRAPH_FILES",
    "JOINT_FILE",
    "PIPELINE_FACTORY",
    "PIPELINE_FILE",
    "PREDICTION_FILE",
    "SMALL",
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


class ModelCheckError(ModelMismatch):
    """A graph is not an RNN-T part of the expected layout; the message names the file and tensor."""


def _rename_last(g: GraphBuilder, name: str) -> None:
    g.nodes[-1].output[0] = name


def build_encoder(size: Size = "full") -> onnx.ModelProto:
    """ "features" FP32 [T, 1, 240] -> "encoded" FP32 [ceil(T / 2), 1, H]."""
    c = config_for(size)
    g = GraphBuilder(SEED)
    x, width, std = "features", c.feature_size, 1.0  # features are normalised per feature
    for _ in range(c.pre_layers):
        x, _, _ = g.lstm(x, width, c.encoder_hidden, input_std=std, recurrent_gain=ENCODER_RECURRENT_GAIN)
        width, std = c.encoder_hidden, HIDDEN_STD
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
    for layer in range(c.post_layers):
        last = layer == c.post_layers - 1
        x, _, _ = g.lstm(
            x,
            width,
            c.encoder_hidden,
            recurrent_gain=ENCODER_RECURRENT_GAIN,
            # the last layer remembers longer and takes its input softly, so its output moves smoothly
            forget_bias=SLOW_FORGET_BIAS if last else 1.0,
            input_std=SLOW_INPUT_STD if last else HIDDEN_STD,
        )
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
    g = GraphBuilder(SEED + 1)
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
            input_std=1.0 if layer == 0 else HIDDEN_STD,
            recurrent_gain=PRED_RECURRENT_GAIN,
            forget_bias=PRED_FORGET_BIAS,
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

    The config's parameters record the model's provenance (`provenance_parameters`); the division is
    `open` for stand-ins and `unverified` for files, as MLPerf publishes no ONNX RNN-T to compare with.

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
        division = "unverified"
    else:
        config = config_for(size)
        graphs = standin_graphs(size, precision)
        check_graphs({name: onnx.load_from_string(data) for name, data in graphs.items()})
        for f, data in graphs.items():
            (version_dir / f).write_bytes(data)
        division = "open"
    digest = hashlib.sha256()
    for f in GRAPH_FILES:
        digest.update((version_dir / f).read_bytes())
    provenance = provenance_parameters(
        from_file=from_file is not None,
        size=size,
        precision=precision,
        sha256=digest.hexdigest(),
        division=division,
    )
    (version_dir / PIPELINE_FILE).write_text(config.to_json() + "\n")
    (model_dir / "config.pbtxt").write_text(
        pipeline_config_text(model_dir.name, SPEC, PIPELINE_FACTORY, provenance)
    )
    return digest.hexdigest()
