"""ONNX graph building for stand-in models: layers with deterministic synthetic weights, and model files.

Stand-ins are built with `onnx.helper` from a seeded numpy generator, so the same seed always gives the
same bytes. Batch normalisation is folded into the convolution's bias (what an inference exporter does),
so a "conv" here is Conv + bias. Weights are He-scaled (std = sqrt(gain / fan_in)) so activations keep
their scale through ReLU stacks; residual branches take a smaller gain so deep stacks do not blow up.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import helper, numpy_helper

from edgeperf.benchmarks._common import Precision
from edgeperf.protos.kserve import DATATYPES

__all__ = [
    "OPSET",
    "GraphBuilder",
    "GraphParts",
    "OrtModelCheck",
    "Precision",
    "TensorDecl",
    "check_model_io",
    "config_pbtxt",
    "drop_outputs",
    "file_sha256",
    "ort_session",
    "quantize_int8",
    "save_model",
    "to_fp16",
]

OPSET = 17
"""ONNX opset of the stand-ins: supported by every ONNX Runtime since 1.14."""
IR_VERSION = 8
"""IR version 8 keeps the files loadable by the older ONNX Runtime builds found on edge devices."""

_ELEM: dict[str, int] = {
    name: helper.np_dtype_to_tensor_dtype(dtype) for name, dtype in DATATYPES.items() if name != "BYTES"
}
_KSERVE: dict[int, str] = {v: k for k, v in _ELEM.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class TensorDecl:
    """An input or output of a built or loaded graph: name, KServe datatype, full shape (-1 = dynamic)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    known_rank: bool = True
    """False when the file declares no shape at all (exporters may leave outputs unshaped)."""


class GraphParts:
    """The nodes and initializers of a graph being built, unique tensor names and the seeded weight generator.

    Every stand-in builder derives from it; each keeps its own node and layer helpers, whose naming
    schemes are part of its model's bytes.
    """

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def fresh(self, hint: str) -> str:
        """`hint` with a number that no earlier name of this graph has."""
        self._count += 1
        return f"{hint}_{self._count}"

    def initializer(self, hint: str, value: npt.NDArray[Any]) -> str:
        """Add `value` as an initializer under a fresh name; returns the name."""
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name


class GraphBuilder(GraphParts):
    """Accumulates nodes and initializers; every layer method returns the name of its output tensor."""

    def __init__(self, name: str, *, seed: int) -> None:
        super().__init__(seed)
        self.name = name
        self._inputs: list[onnx.ValueInfoProto] = []
        self._outputs: list[onnx.ValueInfoProto] = []

    # -- plumbing -----------------------------------------------------------------------------------
    def input(self, name: str, datatype: str, shape: Sequence[int | str]) -> str:
        self._inputs.append(helper.make_tensor_value_info(name, _ELEM[datatype], list(shape)))
        return name

    def output(self, name: str, datatype: str, shape: Sequence[int | str] | None) -> None:
        """Declare a graph output (`shape` None: undeclared); a node must produce a tensor called `name`."""
        dims = None if shape is None else list(shape)
        self._outputs.append(helper.make_tensor_value_info(name, _ELEM[datatype], dims))

    def const(self, array: npt.ArrayLike, hint: str = "const") -> str:
        return self.initializer(hint, np.asarray(array))

    def node(
        self, op: str, inputs: Sequence[str], *, outputs: int | Sequence[str] = 1, **attrs: Any
    ) -> list[str]:
        names = (
            [self.fresh(op.lower()) for _ in range(outputs)] if isinstance(outputs, int) else list(outputs)
        )
        self.nodes.append(helper.make_node(op, list(inputs), names, name=self.fresh(f"n_{op}"), **attrs))
        return names

    def op(self, op: str, *inputs: str, out: str | None = None, **attrs: Any) -> str:
        """A single-output node."""
        return self.node(op, inputs, outputs=1 if out is None else [out], **attrs)[0]

    # -- weights --------------------------------------------------------------------------------------
    def he_weight(self, shape: tuple[int, ...], fan_in: int, gain: float = 2.0) -> npt.NDArray[np.float32]:
        std = np.float32(np.sqrt(gain / fan_in))
        return self.rng.standard_normal(shape, dtype=np.float32) * std

    # -- layers ---------------------------------------------------------------------------------------
    def conv_params(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        *,
        group: int = 1,
        gain: float = 2.0,
        bias: npt.NDArray[np.float32] | None = None,
    ) -> tuple[str, str]:
        """Weight and bias initializers of a conv, for layers applied to several inputs (shared heads)."""
        fan_in = (c_in // group) * kernel * kernel
        w = self.const(self.he_weight((c_out, c_in // group, kernel, kernel), fan_in, gain), "w")
        b = self.const(np.zeros(c_out, np.float32) if bias is None else bias.astype(np.float32), "b")
        return w, b

    def conv_apply(
        self,
        x: str,
        params: tuple[str, str],
        kernel: int,
        *,
        stride: int = 1,
        group: int = 1,
        out: str | None = None,
    ) -> str:
        """Conv with existing parameters; same padding for odd kernels."""
        pad = kernel // 2
        return self.op(
            "Conv", x, *params, out=out, kernel_shape=[kernel, kernel], strides=[stride, stride],
            pads=[pad, pad, pad, pad], group=group,
        )  # fmt: skip

    def conv(
        self,
        x: str,
        c_in: int,
        c_out: int,
        kernel: int,
        *,
        stride: int = 1,
        group: int = 1,
        gain: float = 2.0,
        bias: npt.NDArray[np.float32] | None = None,
        out: str | None = None,
    ) -> str:
        """Conv (same padding for odd kernels) with its batch norm folded into the bias."""
        params = self.conv_params(c_in, c_out, kernel, group=group, gain=gain, bias=bias)
        return self.conv_apply(x, params, kernel, stride=stride, group=group, out=out)

    def conv_relu(self, x: str, c_in: int, c_out: int, kernel: int, **kw: Any) -> str:
        return self.relu(self.conv(x, c_in, c_out, kernel, **kw))

    def relu(self, x: str) -> str:
        return self.op("Relu", x)

    def add(self, a: str, b: str) -> str:
        return self.op("Add", a, b)

    def maxpool(self, x: str, kernel: int = 3, stride: int = 2) -> str:
        pad = kernel // 2
        return self.op("MaxPool", x, kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[pad] * 4)

    def global_avg_pool(self, x: str) -> str:
        return self.op("GlobalAveragePool", x)

    def flatten(self, x: str) -> str:
        return self.op("Flatten", x, axis=1)

    def gemm(
        self,
        x: str,
        d_in: int,
        d_out: int,
        *,
        bias: npt.NDArray[np.float32] | None = None,
        out: str | None = None,
    ) -> str:
        """x [N, d_in] @ W [d_in, d_out] + b, Glorot-scaled."""
        w = self.const(self.he_weight((d_in, d_out), d_in, gain=1.0), "fc_w")
        b = self.const(np.zeros(d_out, np.float32) if bias is None else bias.astype(np.float32), "fc_b")
        return self.op("Gemm", x, w, b, out=out)

    def upsample2x(self, x: str) -> str:
        """Nearest-neighbour 2x upsampling (what torchvision's FPN does with F.interpolate)."""
        scales = self.const(np.array([1.0, 1.0, 2.0, 2.0], np.float32), "scales")
        return self.op("Resize", x, "", scales, mode="nearest")

    # -- result ---------------------------------------------------------------------------------------
    def build(self, *, check: bool = True) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, self.name, self._inputs, self._outputs, initializer=self.initializers
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgeperf-standin"
        )
        model.ir_version = IR_VERSION
        if check:
            onnx.checker.check_model(model)
        return model


def ort_session(model_bytes: bytes) -> Any:
    """A quiet ONNX Runtime CPU session for a serialized model (stand-in calibration and ground truth)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def drop_outputs(model: onnx.ModelProto, names: Collection[str]) -> onnx.ModelProto:
    """`model`, changed in place, without the graph outputs `names` (the taps its calibration read), checked."""
    kept = [o for o in model.graph.output if o.name not in names]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    onnx.checker.check_model(model)
    return model


def save_model(model: onnx.ModelProto, path: Path) -> str:
    """Write `model` to `path` (parents created) and return the file's sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = model.SerializeToString()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _decl(value: onnx.ValueInfoProto) -> TensorDecl:
    t = value.type.tensor_type
    dims = tuple(int(d.dim_value) if d.HasField("dim_value") else -1 for d in t.shape.dim)
    datatype = _KSERVE.get(t.elem_type, f"ONNX:{t.elem_type}")
    return TensorDecl(name=value.name, datatype=datatype, shape=dims, known_rank=t.HasField("shape"))


@dataclass(frozen=True, slots=True, kw_only=True)
class OrtModelCheck:
    """The inputs and outputs an ONNX file declares (initializers excluded), in graph order."""

    inputs: tuple[TensorDecl, ...]
    outputs: tuple[TensorDecl, ...]


def check_model_io(path: Path) -> OrtModelCheck:
    """Read the declared inputs and outputs of an ONNX file without loading its weights into a session."""
    model = onnx.load(str(path), load_external_data=False)
    init_names = {i.name for i in model.graph.initializer}
    inputs = tuple(_decl(v) for v in model.graph.input if v.name not in init_names)
    outputs = tuple(_decl(v) for v in model.graph.output)
    return OrtModelCheck(inputs=inputs, outputs=outputs)


def _dims_text(dims: Sequence[int]) -> str:
    return "[ " + ", ".join(str(d) for d in dims) + " ]"


def config_pbtxt(
    *,
    name: str,
    max_batch_size: int,
    inputs: Sequence[TensorDecl],
    outputs: Sequence[TensorDecl],
    max_queue_delay_us: int | None = None,
    preferred_batch_sizes: Sequence[int] = (),
    instance_count: int = 1,
    parameters: Mapping[str, str] | None = None,
) -> str:
    """Triton `config.pbtxt` text for an ONNX Runtime model; dims exclude the batch dimension when batching.

    `max_queue_delay_us` None leaves out dynamic_batching (each request runs alone).
    """
    lines = [f'name: "{name}"', 'platform: "onnxruntime_onnx"', f"max_batch_size: {max_batch_size}"]
    for kind, tensors in (("input", inputs), ("output", outputs)):
        for t in tensors:
            lines.append(f"{kind} [")
            lines.append("  {")
            lines.append(f'    name: "{t.name}"')
            lines.append(f"    data_type: TYPE_{t.datatype}")
            if t.shape:
                lines.append(f"    dims: {_dims_text(t.shape)}")
            else:
                # NOTE: a scalar per sample (ResNet's ArgMax:0 is [N]): Triton writes it as dims [1]
                # reshaped to [], so clients see [N, 1] and the model [N].
                lines.append("    dims: [ 1 ]")
                lines.append("    reshape: { shape: [ ] }")
            lines.append("  }")
            lines.append("]")
    if max_queue_delay_us is not None:
        lines.append("dynamic_batching {")
        if preferred_batch_sizes:
            lines.append(f"  preferred_batch_size: {_dims_text(preferred_batch_sizes)}")
        lines.append(f"  max_queue_delay_microseconds: {max_queue_delay_us}")
        lines.append("}")
    lines.append("instance_group [")
    lines.append(f"  {{ count: {instance_count}, kind: KIND_CPU }}")
    lines.append("]")
    for key, value in (parameters or {}).items():
        lines.append(f'parameters {{ key: "{key}" value: {{ string_value: "{value}" }} }}')
    return "\n".join(lines) + "\n"


def to_fp16(fp32_model: bytes) -> bytes:
    """FP16 weights and compute with FP32 inputs and outputs kept (ONNX Runtime's float16 converter);
    ops without FP16 kernels (NMS, TopK, Resize, ...) stay FP32 behind casts."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load_from_string(fp32_model), keep_io_types=True)
    return bytes(model.SerializeToString())


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    # NOTE: the quantizer advises "pre-processing" through the root logger on every call.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_int8(
    fp32_model: bytes, calibration: Sequence[Mapping[str, np.ndarray]], op_types: Sequence[str]
) -> bytes:
    """Static int8 quantisation by ONNX Runtime (QDQ, per-channel int8 weights, int8 activations),
    its activation ranges calibrated (MinMax) on `calibration` feeds."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    feeds = iter(calibration)

    class _Reader(CalibrationDataReader):  # type: ignore[misc]
        def get_next(self) -> Mapping[str, np.ndarray] | None:
            return next(feeds, None)

    with _quiet_root_logger(), tempfile.TemporaryDirectory(prefix="edgeperf-int8-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(fp32_model)
        quantize_static(
            str(src), str(dst), _Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, op_types_to_quantize=list(op_types),
        )  # fmt: skip
        return dst.read_bytes()
