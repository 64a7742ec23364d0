"""ONNX Runtime session options of a model, read from its config as Triton's onnxruntime backend reads them.

    parameters { key: "intra_op_thread_count" value: { string_value: "2" } }   # 0 = ORT default
    parameters { key: "inter_op_thread_count" value: { string_value: "1" } }
    parameters { key: "execution_mode" value: { string_value: "0" } }           # 0 sequential, 1 parallel
    parameters { key: "allow_spinning" value: { string_value: "0" } }           # 0 (default) or 1
    optimization { graph { level: 1 } }      # 0 all (default), -1 basic, 1 extended, 2 disabled
    parameters { key: "execution_providers" value: { string_value: "openvino,CPUExecutionProvider" } }

Execution providers and their options come from server/gpu/providers.py. No onnxruntime import here: the
config is checked at parse time, and runtime/onnx.py makes the sessions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgeperf.server.gpu.provider_options import Fail
from edgeperf.server.gpu.providers import ProviderPlan, plan_providers

__all__ = ["FLAGS", "GraphOptimizationLevel", "OrtOptions", "ort_options"]

GraphOptimizationLevel = Literal["disabled", "basic", "extended", "all"]
FLAGS = {"0": False, "false": False, "1": True, "true": True}
"""The text of an on/off model parameter (lower-cased, stripped) and its value."""
_GRAPH_LEVELS: dict[int, GraphOptimizationLevel] = {0: "all", -1: "basic", 1: "extended", 2: "disabled"}
"""Triton's onnxruntime backend's `optimization.graph.level` numbers."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OrtOptions:
    """ONNX Runtime session options for every session of a model."""

    intra_op_threads: int = 0
    """0 lets ONNX Runtime choose."""
    inter_op_threads: int = 0
    """0 lets ONNX Runtime choose."""
    parallel_execution: bool = False
    graph_optimization_level: GraphOptimizationLevel = "all"
    providers: ProviderPlan = field(default_factory=ProviderPlan)
    """Execution providers of GPU and CPU instances, with their ORT options (server/gpu/providers.py)."""

    @property
    def execution_providers(self) -> tuple[str, ...]:
        """ORT provider names of a CPU instance, in order; always ends with CPUExecutionProvider."""
        return tuple(p.name for p in self.providers.cpu)

    allow_spinning: bool = False
    """ORT's `session.intra_op.allow_spinning` and `session.inter_op.allow_spinning`: whether idle pool
    threads busy-wait for the next parallel section. Off by default: on a small-core device the event
    loop and gRPC share the cores with ORT's pool, and a spinning pool steals their CPU (measured on 2
    cores: see tests/bench/bench_server.py). Turn it on for a device whose cores ORT has to itself."""


def ort_options(
    optimization: Mapping[str, Any], parameters: Mapping[str, str], model_dir: Path, fail: Fail
) -> OrtOptions:
    """The ORT options of a model from its config (protobuf JSON form of `optimization`, `parameters`).

    Raises:
        ModelConfigError (through `fail`): a bad thread count, execution mode, flag, graph level or provider.
    """

    def count(key: str) -> int:
        text = parameters.get(key, "0")
        if not text.isdigit():
            fail(f"parameters.{key}", f"expected an integer >= 0, found '{text}'")
        return int(text)

    spinning = FLAGS.get(parameters.get("allow_spinning", "0").strip().lower())
    if spinning is None:
        fail("parameters.allow_spinning", f"expected 0 or 1, found '{parameters['allow_spinning']}'")
    mode = parameters.get("execution_mode", "0")
    if mode not in ("0", "1"):
        fail("parameters.execution_mode", f"expected 0 (sequential) or 1 (parallel), found '{mode}'")
    level = optimization.get("graph", {}).get("level", 0)
    if level not in _GRAPH_LEVELS:
        fail("optimization.graph.level", f"expected -1, 0, 1 or 2, found {level}")
    return OrtOptions(
        intra_op_threads=count("intra_op_thread_count"),
        inter_op_threads=count("inter_op_thread_count"),
        parallel_execution=mode == "1",
        graph_optimization_level=_GRAPH_LEVELS[level],
        providers=plan_providers(optimization, parameters, model_dir, fail),
        allow_spinning=bool(spinning),
    )
