"""ONNX Runtime sessions: building them with a model's options, checking them against its config."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy.typing as npt
import onnxruntime as ort

from edgeperf.protos.kserve import DATATYPES
from edgeperf.server.errors import ModelConfigError
from edgeperf.server.gpu.providers import UnavailableProvider, choose_providers
from edgeperf.server.model_config import ModelConfig, TensorConfig
from edgeperf.server.ort_options import OrtOptions
from edgeperf.server.runtime.binding import BoundRunner, check_graph_shapes, ort_api

__all__ = ["OnnxRuntime", "check_session_matches_config", "make_session"]

_log = logging.getLogger(__name__)

_GRAPH_LEVEL = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
_ONNX_NAMES: Final = {"float32": "float", "float64": "double", "object": "string"}
"""Where ONNX's element type names differ from numpy's (BYTES travels as an object array)."""
_ORT_TYPES: Final = {f"tensor({_ONNX_NAMES.get(d.name, d.name)})": name for name, d in DATATYPES.items()}
"""ORT's type string of a graph input or output ("tensor(float)") -> KServe datatype ("FP32")."""


def make_session(
    path: Path,
    options: OrtOptions,
    *,
    device: int | None = None,
    source: Path | None = None,
    instance: str = "",
) -> ort.InferenceSession:
    """An InferenceSession for the ONNX file at `path` with the model's threads, optimisation and the
    providers of an instance on GPU `device` (None: on the CPU).

    Raises:
        ModelConfigError: a requested provider is missing from this ORT build or was not taken by the
            session, and the config does not allow CPU fallback (named after `source`, the config file).
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
    plan = options.providers
    config_path = source if source is not None else path.parent / "config.pbtxt"
    try:
        chosen = choose_providers(
            plan.for_device(device), ort.get_available_providers(), fallback=plan.cpu_fallback
        )
    except UnavailableProvider as exc:
        raise ModelConfigError(
            config_path,
            exc.field,
            f"{exc}; install onnxruntime-gpu (pip install 'edgeperf[gpu]') or set "
            'parameters { key: "cpu_fallback" value: { string_value: "1" } } to run without it',
        ) from exc
    session = ort.InferenceSession(
        str(path), sess_options=so, providers=chosen.names, provider_options=chosen.options
    )
    # NOTE: ORT falls back to CPU by itself when a provider fails to start (no driver, no GPU, missing
    # CUDA libraries) and only prints a warning; compare what the session really took.
    taken = set(session.get_providers())
    not_taken = [
        UnavailableProvider(spec.name, spec.field, "did not start in this session (no GPU or driver here?)")
        for spec in plan.for_device(device)
        if spec.name in chosen.names and spec.name not in taken
    ]
    if not_taken and not plan.cpu_fallback:
        first = not_taken[0]
        raise ModelConfigError(
            config_path,
            first.field,
            f"{first}; ONNX Runtime runs it with {session.get_providers()} instead. Set "
            'parameters { key: "cpu_fallback" value: { string_value: "1" } } to allow that',
        )
    for missing in [*chosen.dropped, *not_taken]:
        _log.warning(
            "model %s%s: %s (asked for by %s); running with %s because parameters.cpu_fallback is 1",
            config_path.parent.name,
            f" instance {instance}" if instance else "",
            missing,
            missing.field,
            ", ".join(session.get_providers()),
        )
    return session


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
    """One ONNX Runtime session: the Runtime of one instance of an onnxruntime_onnx model.

    On the CPU it calls `session.run`; on a GPU it runs through I/O binding (runtime/binding.py).
    """

    def __init__(self, session: ort.InferenceSession, runner: BoundRunner | None = None) -> None:
        self._session = session
        self._runner = runner
        # NOTE: the C session's own run, without the Python wrapper's checks on every call (WebGPU graph
        # capture, OrtValue ownership, required inputs: the request validator checked those) and its GPU
        # provider fallback (a CPU session has none): a few us less per execution. The wrapper's run if
        # a later ORT names its C session otherwise.
        self._run: Any = getattr(session, "_sess", session).run

    @property
    def providers(self) -> list[str]:
        """The providers the session runs with, in ORT's order."""
        return list(self._session.get_providers())

    @classmethod
    def load(cls, path: Path, config: ModelConfig, instance: int = 0) -> OnnxRuntime:
        """Build instance `instance`'s session on its device and check it against `config` (blocking;
        call from a worker thread)."""
        device = config.instance_devices[instance % len(config.instance_devices)]
        if device is not None and config.ort.providers.cuda_graphs:
            check_graph_shapes(config)
        try:
            session = make_session(
                path, config.ort, device=device, source=config.source, instance=str(instance)
            )
        except ModelConfigError:
            raise
        except Exception as exc:
            raise ModelConfigError(
                config.source, "<model file>", f"ONNX Runtime cannot load {path}: {exc}"
            ) from exc
        check_session_matches_config(session, config)
        if device is not None:
            # NOTE: which providers a GPU instance really got is worth one line per instance at load.
            _log.info(
                "model %s instance %d on GPU %d runs with %s%s",
                config.name,
                instance,
                device,
                ", ".join(session.get_providers()),
                ", CUDA graphs" if config.ort.providers.cuda_graphs else "",
            )
        if device is None or session.get_providers()[0] == "CPUExecutionProvider":
            return cls(session)
        runner = BoundRunner(
            session, config, device_id=device, cuda_graphs=config.ort.providers.cuda_graphs, api=ort_api(ort)
        )
        return cls(session, runner)

    def run(
        self, inputs: Mapping[str, npt.NDArray[Any]], output_names: Sequence[str]
    ) -> dict[str, npt.NDArray[Any]]:
        if self._runner is not None:
            return self._runner.run(inputs, output_names)
        # NOTE: any sequence of names will do (ORT converts it); the inputs must be a dict.
        results = self._run(output_names, inputs if type(inputs) is dict else dict(inputs), None)
        return dict(zip(output_names, results, strict=True))

    def close(self) -> None:
        # NOTE: ORT frees the session when the last reference goes; drop ours.
        self._runner = None
        self._run = None
        del self._session
