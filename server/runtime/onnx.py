"""ONNX Runtime sessions: building them with a model's options, checking them against its config."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy.typing as npt
import onnxruntime as ort

from edgeperf.server.config import ModelConfig, OrtOptions, TensorConfig
from edgeperf.server.errors import ModelConfigError

__all__ = ["OnnxRuntime", "check_session_matches_config", "make_session"]

_log = logging.getLogger(__name__)

_GRAPH_LEVEL = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
_ORT_TYPES = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


def available_providers(requested: Sequence[str]) -> list[str]:
    """`requested` minus the providers this ONNX Runtime build lacks (each dropped with a warning)."""
    available = set(ort.get_available_providers())
    chosen = []
    for provider in requested:
        if provider in available:
            chosen.append(provider)
        else:
            _log.warning("execution provider %s is not available in this onnxruntime; skipping it", provider)
    return chosen or ["CPUExecutionProvider"]


def make_session(path: Path, options: OrtOptions) -> ort.InferenceSession:
    """An InferenceSession for the ONNX file at `path` with the model's threads, optimisation and providers.

    Raises:
        Exception: whatever ONNX Runtime raises for an unreadable or invalid model.
    """
    so = ort.SessionOptions()
    so.intra_op_num_threads = options.intra_op_threads
    so.inter_op_num_threads = options.inter_op_threads
    so.execution_mode = (
        ort.ExecutionMode.ORT_PARALLEL if options.parallel_execution else ort.ExecutionMode.ORT_SEQUENTIAL
    )
    so.graph_optimization_level = _GRAPH_LEVEL[options.graph_optimization_level]
    spinning = "1" if options.allow_spinning else "0"
    so.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    so.add_session_config_entry("session.inter_op.allow_spinning", spinning)
    return ort.InferenceSession(
        str(path), sess_options=so, providers=available_providers(options.execution_providers)
    )


def check_session_matches_config(session: ort.InferenceSession, config: ModelConfig) -> None:
    """Compare the graph's inputs and outputs with the config: names, datatypes, ranks and fixed dims.

    Raises:
        ModelConfigError: naming the first mismatch.
    """
    graph_inputs = {i.name: i for i in session.get_inputs()}
    graph_outputs = {o.name: o for o in session.get_outputs()}
    configured = {t.name for t in config.inputs}
    for name in graph_inputs.keys() - configured:
        raise ModelConfigError(config.source, "input", f"the ONNX model has input '{name}' the config lacks")
    for kind, tensors, graph in (
        ("input", config.inputs, graph_inputs),
        ("output", config.outputs, graph_outputs),
    ):
        for tensor in tensors:
            node = graph.get(tensor.name)
            if node is None:
                raise ModelConfigError(
                    config.source,
                    f"{kind}[{tensor.name}]",
                    f"the ONNX model has no {kind} of this name (it has {', '.join(graph) or 'none'})",
                )
            _check_tensor(config, kind, tensor, node.type, list(node.shape))


def _check_tensor(
    config: ModelConfig, kind: str, tensor: TensorConfig, ort_type: str, shape: list[Any]
) -> None:
    where = f"{kind}[{tensor.name}]"
    graph_type = _ORT_TYPES.get(ort_type, ort_type)
    if graph_type != tensor.datatype:
        raise ModelConfigError(
            config.source, f"{where}.data_type", f"config says {tensor.datatype}, the ONNX model {graph_type}"
        )
    expected = ([-1] if config.max_batch_size > 0 else []) + list(tensor.model_dims)
    if len(shape) != len(expected):
        batch = " plus the batch dimension" if config.max_batch_size > 0 else ""
        raise ModelConfigError(
            config.source,
            f"{where}.dims",
            f"rank {len(tensor.model_dims)}{batch} does not match the ONNX model's shape {shape}",
        )
    for i, (want, have) in enumerate(zip(expected, shape, strict=True)):
        fixed = isinstance(have, int) and have > 0
        if i == 0 and config.max_batch_size > 0:
            if fixed and (have != 1 or config.max_batch_size > 1):
                raise ModelConfigError(
                    config.source,
                    "max_batch_size",
                    f"{config.max_batch_size} needs a variable batch dimension, but the ONNX model fixes "
                    f"the first dimension of {tensor.name} to {have}",
                )
        elif want > 0 and fixed and want != have:
            raise ModelConfigError(
                config.source,
                f"{where}.dims",
                f"dims {list(tensor.model_dims)} do not match the ONNX model's shape {shape}",
            )


class OnnxRuntime:
    """One ONNX Runtime session: the Runtime of one instance of an onnxruntime_onnx model."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self._session = session

    @classmethod
    def load(cls, path: Path, config: ModelConfig) -> OnnxRuntime:
        """Build the session and check it against `config` (blocking; call from a worker thread)."""
        try:
            session = make_session(path, config.ort)
        except Exception as exc:
            raise ModelConfigError(
                config.source, "<model file>", f"ONNX Runtime cannot load {path}: {exc}"
            ) from exc
        check_session_matches_config(session, config)
        return cls(session)

    def run(
        self, inputs: Mapping[str, npt.NDArray[Any]], output_names: Sequence[str]
    ) -> dict[str, npt.NDArray[Any]]:
        results = self._session.run(list(output_names), dict(inputs))
        return dict(zip(output_names, results, strict=True))

    def close(self) -> None:
        # NOTE: ORT frees the session when the last reference goes; drop ours.
        del self._session
