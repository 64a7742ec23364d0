"""BERT-large stand-in: the architecture of the reference model with deterministic synthetic weights.

The graph is built with `onnx.helper` (opset 17): word + position + token-type embeddings and LayerNorm;
per layer multi-head self-attention with the additive mask `(1 - input_mask) * -10000` (as in BERT),
residual + LayerNorm, a GELU (erf form) feed-forward block, residual + LayerNorm; a QA head (dense to 2)
split into start and end logits. Tensor names and dtypes are those of the reference `model.onnx`
(see `spec.py`). Weights come from `numpy.random.default_rng(seed)` in a fixed order, so the same config
always gives the same model; `full` is BERT-large (24 layers, hidden 1024, 16 heads, FFN 4096,
sequence 384, vocabulary 30522; about 1.3 GB of FP32 weights, written as ONNX external data).
"""

from __future__ import annotations

import hashlib
import logging
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper

import edgeperf.benchmarks.bert.spec as bert_spec
from edgeperf.benchmarks._onnx import GraphParts, file_sha256, to_fp16
from edgeperf.benchmarks.base import Size
from edgeperf.benchmarks.bert.config import FULL, SMALL, BertConfig, config_for

__all__ = [
    "FULL",
    "SMALL",
    "BertConfig",
    "ModelCheckError",
    "build_model",
    "check_model",
    "config_for",
    "write_model",
]

OPSET = 17
LAYER_NORM_EPSILON = 1e-12
EXTERNAL_DATA_BYTES = 512 * 1024 * 1024
"""Models with more weight bytes than this keep them in `model.onnx.data` (protobuf stops at 2 GB)."""


class ModelCheckError(ValueError):
    """A model file does not match the BERT spec; the message names the file and the tensor."""


class _Graph(GraphParts):
    """Collects nodes and initializers with unique names."""

    def const(self, hint: str, value: npt.NDArray[np.generic]) -> str:
        return self.initializer(hint, value)

    def weight(self, hint: str, shape: tuple[int, ...], std: float) -> str:
        values = self.rng.standard_normal(shape, dtype=np.float32)
        values *= np.float32(std)
        return self.const(hint, values)

    def op(self, op_type: str, inputs: list[str], hint: str, **attrs: Any) -> str:
        out = self.fresh(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def dense(self, x: str, n_in: int, n_out: int, hint: str, *, std: float | None = None) -> str:
        w = self.weight(f"{hint}.weight", (n_in, n_out), std if std is not None else 1.0 / math.sqrt(n_in))
        b = self.const(f"{hint}.bias", np.zeros(n_out, dtype=np.float32))
        return self.op("Add", [self.op("MatMul", [x, w], hint), b], f"{hint}.out")

    def layer_norm(self, x: str, hidden: int, hint: str) -> str:
        gamma = self.const(f"{hint}.gamma", np.ones(hidden, dtype=np.float32))
        beta = self.const(f"{hint}.beta", np.zeros(hidden, dtype=np.float32))
        return self.op("LayerNormalization", [x, gamma, beta], hint, axis=-1, epsilon=LAYER_NORM_EPSILON)


def _attention(g: _Graph, x: str, mask_bias: str, config: BertConfig, prefix: str) -> str:
    heads_shape = g.const("heads_shape", np.array([0, 0, config.heads, config.head_dim], dtype=np.int64))
    q, k, v = (g.dense(x, config.hidden, config.hidden, f"{prefix}.{n}") for n in ("query", "key", "value"))
    q = g.op("Transpose", [g.op("Reshape", [q, heads_shape], "q_heads")], "q_t", perm=[0, 2, 1, 3])
    k = g.op("Transpose", [g.op("Reshape", [k, heads_shape], "k_heads")], "k_t", perm=[0, 2, 3, 1])
    v = g.op("Transpose", [g.op("Reshape", [v, heads_shape], "v_heads")], "v_t", perm=[0, 2, 1, 3])
    scale = g.const("scale", np.array(1.0 / math.sqrt(config.head_dim), dtype=np.float32))
    scores = g.op(
        "Add", [g.op("Mul", [g.op("MatMul", [q, k], "scores"), scale], "scaled"), mask_bias], "masked"
    )
    context = g.op("MatMul", [g.op("Softmax", [scores], "probs", axis=-1), v], "context")
    context = g.op("Transpose", [context], "context_t", perm=[0, 2, 1, 3])
    merged_shape = g.const("merged_shape", np.array([0, 0, config.hidden], dtype=np.int64))
    context = g.op("Reshape", [context, merged_shape], "context_merged")
    out = g.dense(context, config.hidden, config.hidden, f"{prefix}.output")
    return g.layer_norm(g.op("Add", [out, x], f"{prefix}.residual"), config.hidden, f"{prefix}.ln")


def _feed_forward(g: _Graph, x: str, config: BertConfig, prefix: str) -> str:
    h = g.dense(x, config.hidden, config.intermediate, f"{prefix}.intermediate")
    # GELU as BERT defines it: 0.5 * x * (1 + erf(x / sqrt(2))).
    erf = g.op(
        "Erf", [g.op("Div", [h, g.const("sqrt2", np.array(math.sqrt(2.0), np.float32))], "gelu_div")], "erf"
    )
    one_plus = g.op("Add", [erf, g.const("one", np.array(1.0, np.float32))], "gelu_add")
    gelu = g.op(
        "Mul", [g.op("Mul", [h, one_plus], "gelu_mul"), g.const("half", np.array(0.5, np.float32))], "gelu"
    )
    out = g.dense(gelu, config.intermediate, config.hidden, f"{prefix}.output")
    return g.layer_norm(g.op("Add", [out, x], f"{prefix}.residual"), config.hidden, f"{prefix}.ln")


def build_model(config: BertConfig) -> onnx.ModelProto:
    """The stand-in graph with its weights (deterministic for a given config)."""
    g = _Graph(config.seed)
    seq = config.max_seq_length
    ids, mask, segments = bert_spec.INPUT_NAMES
    word = g.op(
        "Gather", [g.weight("word_embeddings", (config.vocab_size, config.hidden), 0.02), ids], "word"
    )
    positions = g.const("position_ids", np.arange(seq, dtype=np.int64))
    pos_table = g.weight("position_embeddings", (config.max_position, config.hidden), 0.02)
    position = g.op("Gather", [pos_table, positions], "position")
    type_table = g.weight("token_type_embeddings", (config.type_vocab_size, config.hidden), 0.02)
    token_type = g.op("Gather", [type_table, segments], "token_type")
    x = g.op("Add", [g.op("Add", [word, position], "emb_sum"), token_type], "emb")
    x = g.layer_norm(x, config.hidden, "emb.ln")
    # Additive attention mask [batch, 1, 1, seq]: 0 where attended, -10000 on padding.
    mask_f = g.op("Cast", [mask], "mask_f", to=TensorProto.FLOAT)
    inverted = g.op("Sub", [g.const("mask_one", np.array(1.0, np.float32)), mask_f], "mask_inv")
    bias = g.op("Mul", [inverted, g.const("mask_neg", np.array(-10000.0, np.float32))], "mask_bias")
    mask_bias = g.op("Unsqueeze", [bias, g.const("mask_axes", np.array([1, 2], np.int64))], "mask_bias4")
    for layer in range(config.layers):
        x = _attention(g, x, mask_bias, config, f"layer{layer}.attention")
        x = _feed_forward(g, x, config, f"layer{layer}.ffn")
    qa = g.dense(x, config.hidden, 2, "qa", std=config.qa_head_scale / math.sqrt(config.hidden))
    split_sizes = g.const("qa_split", np.array([1, 1], np.int64))
    start_name, end_name = bert_spec.OUTPUT_NAMES
    squeeze_axes = g.const("qa_axes", np.array([-1], np.int64))
    g.nodes.append(
        helper.make_node("Split", [qa, split_sizes], ["qa_start", "qa_end"], name="qa_split", axis=-1)
    )
    g.nodes.append(
        helper.make_node("Squeeze", ["qa_start", squeeze_axes], [start_name], name="squeeze_start")
    )
    g.nodes.append(helper.make_node("Squeeze", ["qa_end", squeeze_axes], [end_name], name="squeeze_end"))
    graph = helper.make_graph(
        g.nodes,
        "bert_standin",
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", seq]) for n in bert_spec.INPUT_NAMES],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", seq]) for n in bert_spec.OUTPUT_NAMES],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgeperf")
    model.ir_version = 8
    return model


_ONNX_TO_DATATYPE: dict[int, str] = {
    TensorProto.INT64: "INT64",
    TensorProto.INT32: "INT32",
    TensorProto.FLOAT: "FP32",
}


def check_model(
    model: onnx.ModelProto, *, source: str, max_seq_length: int = bert_spec.MAX_SEQ_LENGTH
) -> None:
    """Raise ModelCheckError unless inputs and outputs have the spec's names, dtypes and sequence length."""
    inputs, outputs = bert_spec.tensors(max_seq_length)
    actual = {vi.name: vi for vi in [*model.graph.input, *model.graph.output]}
    for tensor in (*inputs, *outputs):
        vi = actual.get(tensor.name)
        if vi is None:
            raise ModelCheckError(f"{source}: no tensor {tensor.name!r} (has {', '.join(sorted(actual))})")
        datatype = _ONNX_TO_DATATYPE.get(vi.type.tensor_type.elem_type, "other")
        if datatype != tensor.datatype:
            raise ModelCheckError(f"{source}: {tensor.name} is {datatype}, the spec says {tensor.datatype}")
        dims = vi.type.tensor_type.shape.dim
        if len(dims) != 2 or (dims[1].HasField("dim_value") and dims[1].dim_value != max_seq_length):
            raise ModelCheckError(f"{source}: {tensor.name} must be [batch, {max_seq_length}]")


def _rename_quantized_inputs(model: onnx.ModelProto) -> bool:
    """Give the int8 reference model's inputs the FP32 model's names, so one client serves both."""
    renames = dict(zip(bert_spec.QUANTIZED_INPUT_NAMES, bert_spec.INPUT_NAMES, strict=True))
    if not any(vi.name in renames for vi in model.graph.input):
        return False
    for vi in model.graph.input:
        vi.name = renames.get(vi.name, vi.name)
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = renames.get(name, name)
    return True


def _config_pbtxt(name: str, config: BertConfig, parameters: dict[str, str]) -> str:
    seq = config.max_seq_length
    tensors = []
    for kind, names, dtype in (
        ("input", bert_spec.INPUT_NAMES, "TYPE_INT64"),
        ("output", bert_spec.OUTPUT_NAMES, "TYPE_FP32"),
    ):
        body = ",\n".join(f'  {{ name: "{n}" data_type: {dtype} dims: [ {seq} ] }}' for n in names)
        tensors.append(f"{kind} [\n{body}\n]")
    params = "".join(
        f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}\n'
        for k, v in sorted(parameters.items())
    )
    return (
        f'name: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: {config.max_batch_size}\n'
        + "\n".join(tensors)
        + "\ndynamic_batching { max_queue_delay_microseconds: 2000 }\n"
        + "instance_group [ { count: 1 kind: KIND_CPU } ]\n"
        + params
    )


def _save(model: onnx.ModelProto, path: Path) -> None:
    weight_bytes = sum(len(t.raw_data) for t in model.graph.initializer)
    if weight_bytes > EXTERNAL_DATA_BYTES:
        onnx.save_model(model, str(path), save_as_external_data=True, location=path.name + ".data")
    else:
        onnx.save_model(model, str(path))


def _model_sha256(target: Path) -> str:
    # The graph file, then its external weights when it has them.
    digest = hashlib.sha256(bytes.fromhex(file_sha256(target)))
    data = target.with_name(target.name + ".data")
    if data.is_file():
        digest.update(bytes.fromhex(file_sha256(data)))
        return digest.hexdigest()
    return file_sha256(target)


def write_model(
    model_dir: Path,
    *,
    size: Size = "full",
    from_file: Path | None = None,
    precision: str = "fp32",
) -> None:
    """Write `<model_dir>/config.pbtxt` and `<model_dir>/1/model.onnx` (+ `.data` at full size).

    The config's parameters record the provenance, as the other benchmarks do: `edgeperf_model_source`
    (`stand-in` or `file`), `edgeperf_size`, `edgeperf_precision`, `edgeperf_model_sha256` and
    `edgeperf_division` (`closed` only for the official file, recognised by its checksum).

    Args:
        precision: `fp32`; `fp16` (FP16 weights and compute, FP32 inputs/outputs kept, ONNX Runtime's
            float16 converter); or `int8` (ONNX Runtime's dynamic int8 quantisation of the MatMuls, the
            usual recipe for BERT on CPUs). The reduced-precision variants are what the gate is for.

    Raises:
        ModelCheckError: `from_file` does not match the spec.
        ValueError: unknown precision, or a precision with `from_file`.
    """
    if precision not in ("fp32", "fp16", "int8"):
        raise ValueError(f"precision must be fp32, fp16 or int8, not {precision!r}")
    if from_file is not None and precision != "fp32":
        raise ValueError("--from-file uses the file as it is; precision variants are for stand-ins")
    config = config_for(size)
    version_dir = model_dir / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    target = version_dir / "model.onnx"
    if from_file is not None:
        model = onnx.load(str(from_file), load_external_data=False)
        renamed = _rename_quantized_inputs(model)
        check_model(model, source=str(from_file), max_seq_length=bert_spec.MAX_SEQ_LENGTH)
        config = FULL
        checksum = file_sha256(from_file)
        if renamed:
            onnx.save_model(model, str(target))
        else:
            shutil.copyfile(from_file, target)
        closed = checksum == bert_spec.SPEC.reference_model_sha256
        provenance = {"edgeperf_model_source": "file", "edgeperf_size": "full", "edgeperf_precision": "fp32"}
    else:
        model = build_model(config)
        if precision == "int8":
            _quantize_int8(model, target)
        elif precision == "fp16":
            fp16 = onnx.load_from_string(to_fp16(model.SerializeToString()))
            del model
            _save(fp16, target)
        else:
            _save(model, target)
        checksum, closed = _model_sha256(target), False
        provenance = {
            "edgeperf_model_source": "stand-in",
            "edgeperf_size": size,
            "edgeperf_precision": precision,
        }
    parameters = {
        "edgeperf_benchmark": "bert",
        **provenance,
        "edgeperf_model_sha256": checksum,
        "edgeperf_division": "closed" if closed else "open",
    }
    (model_dir / "config.pbtxt").write_text(
        _config_pbtxt(model_dir.name, config, parameters), encoding="utf-8"
    )


def _quantize_int8(model: onnx.ModelProto, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32_path = target.with_name("model_fp32.onnx")
    _save(model, fp32_path)
    root = logging.getLogger()
    level = root.level
    # NOTE: the quantizer advises "pre-processing" through the root logger on every call.
    root.setLevel(logging.ERROR)
    try:
        use_external = fp32_path.with_name(fp32_path.name + ".data").exists()
        quantize_dynamic(
            fp32_path,
            target,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            use_external_data_format=use_external,
        )
    finally:
        root.setLevel(level)
        fp32_path.unlink(missing_ok=True)
        fp32_path.with_name(fp32_path.name + ".data").unlink(missing_ok=True)
