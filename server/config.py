"""Model configuration: Triton's config.pbtxt (protobuf text format of ModelConfig) or config.yaml, frozen.

Both files use Triton's ModelConfig field names (INFERENCE_PROTOCOL.md §5). The subset edgeperf reads:

    name, platform ("onnxruntime_onnx" | "edgeperf_pipeline"), backend ("onnxruntime"), max_batch_size,
    version_policy { latest { num_versions } | all { } | specific { versions } },
    input / output { name, data_type (TYPE_FP32 ...), dims, format, reshape, optional },
    dynamic_batching { preferred_batch_size, max_queue_delay_microseconds, preserve_ordering,
                       default_queue_policy { timeout_action: REJECT, default_timeout_microseconds,
                                              allow_timeout_override, max_queue_size } },
    instance_group { count, kind, name, gpus }, parameters { key, value { string_value } },
    optimization { graph { level }, execution_accelerators { gpu_execution_accelerator { name },
                                                             cpu_execution_accelerator { name } } },
    default_model_filename, metric_tags, model_transaction_policy { decoupled: false }.

ONNX Runtime options (Triton's onnxruntime backend syntax, plus one edgeperf parameter):

    parameters { key: "intra_op_thread_count" value: { string_value: "2" } }   # 0 = ORT default
    parameters { key: "inter_op_thread_count" value: { string_value: "1" } }
    parameters { key: "execution_mode" value: { string_value: "0" } }           # 0 sequential, 1 parallel
    optimization { graph { level: 1 } }      # 0 all (default), -1 basic, 1 extended, 2 disabled
    optimization { execution_accelerators {
        gpu_execution_accelerator : [ { name : "tensorrt" }, { name : "cuda" } ] } }
    parameters { key: "execution_providers" value: { string_value: "CUDAExecutionProvider,CPUExecutionProvider" } }

Execution providers are tried in the order written (accelerators: gpu ones, then cpu ones; short names
tensorrt, cuda, rocm, openvino, dnnl, coreml, qnn, xnnpack or full ORT provider names); CPU is always last.
A provider that this ONNX Runtime build lacks is dropped with a logged warning (runtime/onnx.py).

config.yaml holds the same fields as a mapping; `parameters` may map names straight to strings, and
`data_type` may be written as TYPE_FP32 or FP32.

Anything else is rejected: an unknown field, a wrong type, a negative max_batch_size, an unknown datatype,
a preferred batch size above max_batch_size, missing dims, and so on raise ModelConfigError naming the
file, the model and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "DynamicBatchingConfig",
    "ModelConfig",
    "OrtOptions",
    "TensorConfig",
    "VersionPolicy",
    "load_model_config",
    "parse_model_config",
]

GraphOptimizationLevel = Literal["disabled", "basic", "extended", "all"]
Platform = Literal["onnxruntime_onnx", "edgeperf_pipeline"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TensorConfig:
    """One input or output as configured."""

    name: str
    datatype: str
    """KServe datatype string ("FP32"); the config's TYPE_FP32."""
    dims: tuple[int, ...]
    """Shape without the batch dimension when max_batch_size > 0; -1 is variable."""
    optional: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionPolicy:
    """Which numeric version folders are served."""

    kind: Literal["latest", "all", "specific"] = "latest"
    num_versions: int = 1
    """For `latest`: how many of the highest versions."""
    versions: tuple[int, ...] = ()
    """For `specific`: exactly these versions."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DynamicBatchingConfig:
    """Triton's dynamic_batching block."""

    preferred_batch_sizes: tuple[int, ...] = ()
    """Batch sizes to aim for; the largest that can be formed is sent at once."""
    max_queue_delay_us: int = 0
    """How long the oldest queued request may wait for a fuller batch."""
    max_queue_size: int | None = None
    """Queued requests beyond which new ones are rejected (Overloaded); None is unbounded."""
    default_timeout_us: int | None = None
    """Time a request may wait in the queue before QueueTimeout; None is no timeout."""
    allow_timeout_override: bool = False
    """Whether a request's `timeout` parameter may lower default_timeout_us (or set one)."""
    preserve_ordering: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class OrtOptions:
    """ONNX Runtime session options for every session of a model."""

    intra_op_threads: int = 0
    """0 lets ONNX Runtime choose."""
    inter_op_threads: int = 0
    """0 lets ONNX Runtime choose."""
    parallel_execution: bool = False
    graph_optimization_level: GraphOptimizationLevel = "all"
    execution_providers: tuple[str, ...] = ("CPUExecutionProvider",)
    """ORT provider names in order of preference; always ends with CPUExecutionProvider."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelConfig:
    """A validated model configuration."""

    name: str
    platform: Platform = "onnxruntime_onnx"
    backend: str = "onnxruntime"
    max_batch_size: int = 0
    """0: the model does not batch (inputs carry no batch dimension)."""
    inputs: tuple[TensorConfig, ...] = ()
    outputs: tuple[TensorConfig, ...] = ()
    dynamic_batching: DynamicBatchingConfig | None = None
    """None: each request runs alone."""
    instance_count: int = 1
    version_policy: VersionPolicy = VersionPolicy()
    default_model_filename: str = "model.onnx"
    ort: OrtOptions = OrtOptions()
    parameters: Mapping[str, str] = field(default_factory=dict)
    """ModelConfig.parameters as name -> string_value."""
    source: Path = Path()
    """The file this configuration was read from."""
    document: Mapping[str, Any] = field(default_factory=dict)
    """The configuration as a dict in protobuf JSON form with Triton's field names (what
    `google.protobuf.json_format.ParseDict(document, model_config_pb2.ModelConfig())` accepts), with
    name, platform and backend filled in. The ModelConfig RPC serves this."""

    def input(self, name: str) -> TensorConfig | None:
        return next((t for t in self.inputs if t.name == name), None)

    def output(self, name: str) -> TensorConfig | None:
        return next((t for t in self.outputs if t.name == name), None)


def load_model_config(model_dir: Path) -> ModelConfig:
    """Read `<model_dir>/config.pbtxt` or `<model_dir>/config.yaml`.

    Raises:
        ModelConfigError: missing or both files present, or any invalid field.
    """
    raise NotImplementedError


def parse_model_config(text: str, *, path: Path, model_name: str) -> ModelConfig:
    """Parse the text of config.pbtxt (or config.yaml when `path` ends in .yaml/.yml).

    Raises:
        ModelConfigError: naming `path`, `model_name` and the field.
    """
    raise NotImplementedError
