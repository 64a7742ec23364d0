"""Model configuration: Triton's config.pbtxt (protobuf text format of ModelConfig) or config.yaml, frozen.

Both files use Triton's ModelConfig field names (INFERENCE_PROTOCOL.md §5). The subset edgeperf reads:

    name, platform ("onnxruntime_onnx" | "edgeperf_pipeline"), backend ("onnxruntime"), max_batch_size,
    version_policy { latest { num_versions } | all { } | specific { versions } },
    input / output { name, data_type (TYPE_FP32 ...), dims, format, reshape, optional },
    dynamic_batching { preferred_batch_size, max_queue_delay_microseconds, preserve_ordering,
                       default_queue_policy { timeout_action: REJECT, default_timeout_microseconds,
                                              allow_timeout_override, max_queue_size } },
    instance_group { count, kind, name, gpus }, parameters { key, value { string_value } },
    optimization { graph { level }, cuda { graphs },
                   execution_accelerators { gpu_execution_accelerator { name, parameters },
                                            cpu_execution_accelerator { name, parameters } } },
    default_model_filename, metric_tags, model_transaction_policy { decoupled: false }.

ONNX Runtime options (thread counts, execution mode, graph optimization level, spinning) are model
`parameters` and `optimization { graph { level } }`, as Triton's onnxruntime backend reads them:
server/ort_options.py says which. `parameters { key: "inline_execution" value: { string_value: "1" } }`
is edgeperf's own (below).

Execution providers and where instances run (KIND_CPU / KIND_GPU with `gpus`, TensorRT and CUDA options
from `gpu_execution_accelerator` parameters, CUDA graphs from `optimization { cuda { graphs: true } }`,
the edgeperf `cpu_fallback` parameter): server/gpu/providers.py says how. By default a requested
provider that this ONNX Runtime build lacks is an error naming the field that asked for it.

Differences from Triton, on purpose: the instance count is the sum of `instance_group` counts (times
the number of `gpus` for a GPU group), each defaulting to 1 (Triton's onnxruntime backend makes 2 for a
KIND_CPU group without a count); a KIND_GPU group without `gpus` uses GPU 0, not every GPU; per-level
queue policies, sequence batching, ensembles, warm-up files and decoupled models are rejected rather
than ignored; config auto-complete does not exist, so inputs and outputs are required.

`inline_execution: 1` (edgeperf's own) runs each batch on the event loop thread instead of handing it to
the instance's thread and back: for a model so small (tens of microseconds) that the two thread
hand-offs cost more than the model. The loop is blocked while the model runs, so only for such models;
it needs one instance and no max_queue_delay_microseconds (requests that arrive together still batch).

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

from edgeperf.protos.kserve import TensorSpec
from edgeperf.server.errors import ModelConfigError
from edgeperf.server.gpu.providers import instance_devices
from edgeperf.server.model_config_reader import Ctx, read_text, read_yaml
from edgeperf.server.ort_options import FLAGS, OrtOptions, ort_options
from edgeperf.server.types import DATATYPES

__all__ = [
    "DynamicBatchingConfig",
    "ModelConfig",
    "ModelConfigError",
    "TensorConfig",
    "VersionPolicy",
    "load_model_config",
    "parse_model_config",
]

Platform = Literal["onnxruntime_onnx", "edgeperf_pipeline"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TensorConfig(TensorSpec):
    """One input or output as configured: the shared tensor description (name, datatype, and the
    config's `dims` as `shape`) plus what only the server acts on, so it extends TensorSpec rather than
    keeping a copy: whether the input may be left out, and the shape the model itself sees."""

    optional: bool = False
    reshape: tuple[int, ...] | None = None
    """Triton's `reshape`: the shape (without batch dimension) the model itself uses, when it differs
    from `dims` (e.g. dims [1] with reshape [] for one scalar per sample)."""

    @property
    def model_dims(self) -> tuple[int, ...]:
        """The per-sample shape the runtime sees."""
        return self.shape if self.reshape is None else self.reshape


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
    priority_levels: int = 0
    """0 or 1: one queue. N > 1: level 1 is served first, then 2, ...; FIFO within a level."""
    default_priority_level: int = 0
    """Level of requests whose `priority` is 0 or above priority_levels (required when levels > 1)."""


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
    instance_devices: tuple[int | None, ...] = (None,)
    """Where each instance runs, in order: a GPU id (CUDA device id), or None for the CPU."""
    version_policy: VersionPolicy = VersionPolicy()
    default_model_filename: str = "model.onnx"
    ort: OrtOptions = field(default_factory=OrtOptions)
    parameters: Mapping[str, str] = field(default_factory=dict)
    """ModelConfig.parameters as name -> string_value."""
    inline_execution: bool = False
    """Run batches on the event loop thread (parameter `inline_execution`), skipping the hand-off to the
    instance thread and back; for models cheaper than that hand-off (tens of microseconds)."""
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


CONFIG_FILES: tuple[str, ...] = ("config.pbtxt", "config.yaml", "config.yml")


def load_model_config(model_dir: Path) -> ModelConfig:
    """Read `<model_dir>/config.pbtxt` or `<model_dir>/config.yaml`.

    Raises:
        ModelConfigError: missing or both files present, or any invalid field.
    """
    found = [model_dir / n for n in CONFIG_FILES if (model_dir / n).is_file()]
    if not found:
        raise ModelConfigError(model_dir / "config.pbtxt", "<file>", "no config.pbtxt or config.yaml")
    if len(found) > 1:
        names = " and ".join(p.name for p in found)
        raise ModelConfigError(found[0], "<file>", f"{names} both exist; keep one")
    try:
        text = found[0].read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelConfigError(found[0], "<file>", f"cannot read: {exc}") from exc
    return parse_model_config(text, path=found[0], model_name=model_dir.name)


def parse_model_config(text: str, *, path: Path, model_name: str) -> ModelConfig:
    """Parse the text of config.pbtxt (or config.yaml when `path` ends in .yaml/.yml).

    Raises:
        ModelConfigError: naming `path`, `model_name` and the field.
    """
    ctx = Ctx(path, model_name)
    yaml_form = path.suffix in (".yaml", ".yml")
    return _build(read_yaml(text, ctx) if yaml_form else read_text(text, ctx), ctx)


# ----------------------------------------------------------------------------------------------------
# Semantic checks and the frozen dataclasses.

_TRITON_TO_KSERVE = {f"TYPE_{n}": n for n in DATATYPES if n != "BYTES"} | {"TYPE_STRING": "BYTES"}
_PLATFORM_BACKEND: dict[str, str] = {"onnxruntime_onnx": "onnxruntime", "edgeperf_pipeline": "edgeperf"}


def _build(doc: dict[str, Any], ctx: Ctx) -> ModelConfig:
    name = doc.get("name", "")
    if name and name != ctx.model:
        ctx.fail("name", f"'{name}' must equal the model folder name '{ctx.model}'")
    platform = doc.get("platform", "")
    backend = doc.get("backend", "")
    if not platform:
        matches = [p for p, b in _PLATFORM_BACKEND.items() if b == (backend or "onnxruntime")]
        if not matches:
            ctx.fail("backend", f"unknown backend '{backend}'; expected onnxruntime or edgeperf")
        platform = matches[0]
    if platform not in _PLATFORM_BACKEND:
        ctx.fail("platform", f"unknown platform '{platform}'; expected {' or '.join(_PLATFORM_BACKEND)}")
    if backend and backend != _PLATFORM_BACKEND[platform]:
        ctx.fail("backend", f"'{backend}' does not match platform '{platform}'")
    backend = _PLATFORM_BACKEND[platform]
    max_batch_size = doc.get("max_batch_size", 0)
    if max_batch_size < 0:
        ctx.fail("max_batch_size", f"must be >= 0, found {max_batch_size}")
    inputs = _tensors(doc.get("input", []), "input", ctx)
    outputs = _tensors(doc.get("output", []), "output", ctx)
    parameters = {k: v.get("string_value", "") for k, v in doc.get("parameters", {}).items()}
    if platform == "edgeperf_pipeline":
        if not parameters.get("pipeline"):
            ctx.fail("parameters.pipeline", "platform edgeperf_pipeline needs 'module:factory'")
    elif "pipeline" in parameters:
        ctx.fail("parameters.pipeline", "only allowed with platform edgeperf_pipeline")
    if doc.get("model_transaction_policy", {}).get("decoupled", False):
        ctx.fail("model_transaction_policy.decoupled", "decoupled models are not supported")
    document = {**doc, "name": ctx.model, "platform": platform, "backend": backend}
    ort = ort_options(doc.get("optimization", {}), parameters, ctx.path.parent, ctx.fail)
    devices = instance_devices(doc.get("instance_group", []), ort.providers, ctx.fail)
    dynamic_batching = _dynamic_batching(doc, max_batch_size, ctx)
    inline = _inline_execution(parameters, dynamic_batching, len(devices), ctx)
    return ModelConfig(
        name=ctx.model,
        platform=platform,
        backend=backend,
        max_batch_size=max_batch_size,
        inputs=inputs,
        outputs=outputs,
        dynamic_batching=dynamic_batching,
        instance_count=len(devices),
        instance_devices=devices,
        version_policy=_version_policy(doc.get("version_policy"), ctx),
        default_model_filename=doc.get("default_model_filename", "") or "model.onnx",
        ort=ort,
        parameters=parameters,
        inline_execution=inline,
        source=ctx.path,
        document=document,
    )


def _tensors(docs: list[dict[str, Any]], kind: str, ctx: Ctx) -> tuple[TensorConfig, ...]:
    if not docs:
        ctx.fail(kind, f"at least one {kind} is required")
    seen: set[str] = set()
    tensors = []
    for i, t in enumerate(docs):
        where = f"{kind}[{i}]"
        name = t.get("name", "")
        if not name:
            ctx.fail(f"{where}.name", "missing")
        if name in seen:
            ctx.fail(f"{where}.name", f"duplicate {kind} name '{name}'")
        seen.add(name)
        where = f"{kind}[{name}]"
        data_type = t.get("data_type", "TYPE_INVALID")
        if data_type not in _TRITON_TO_KSERVE:
            ctx.fail(f"{where}.data_type", f"{data_type} is not a supported datatype")
        if "dims" not in t:
            ctx.fail(f"{where}.dims", "missing (use dims: [ -1 ] for a variable dimension)")
        dims = tuple(t["dims"])
        if any(d == 0 or d < -1 for d in dims):
            ctx.fail(f"{where}.dims", f"each dim must be > 0 or -1, found {list(dims)}")
        if t.get("is_shape_tensor") or t.get("allow_ragged_batch"):
            ctx.fail(where, "shape tensors and ragged batching are not supported")
        reshape = tuple(t["reshape"].get("shape", [])) if "reshape" in t else None
        if reshape is not None and _elements(reshape) != _elements(dims):
            ctx.fail(
                f"{where}.reshape", f"shape {list(reshape)} does not hold the elements of dims {list(dims)}"
            )
        tensors.append(
            TensorConfig(
                name=name,
                datatype=_TRITON_TO_KSERVE[data_type],
                shape=dims,
                optional=t.get("optional", False),
                reshape=reshape,
            )
        )
    return tuple(tensors)


def _elements(shape: tuple[int, ...]) -> int | None:
    """Element count of a fixed shape; None when a dimension is variable."""
    count = 1
    for d in shape:
        if d < 0:
            return None
        count *= d
    return count


def _dynamic_batching(doc: dict[str, Any], max_batch_size: int, ctx: Ctx) -> DynamicBatchingConfig | None:
    db = doc.get("dynamic_batching")
    if db is None:
        return None
    if max_batch_size == 0:
        ctx.fail("dynamic_batching", "needs max_batch_size > 0")
    preferred = tuple(db.get("preferred_batch_size", []))
    for size in preferred:
        if not 0 < size <= max_batch_size:
            ctx.fail(
                "dynamic_batching.preferred_batch_size",
                f"{size} must be between 1 and max_batch_size ({max_batch_size})",
            )
    levels = db.get("priority_levels", 0)
    default_level = db.get("default_priority_level", 0)
    if levels > 1 and not 1 <= default_level <= levels:
        ctx.fail(
            "dynamic_batching.default_priority_level", f"must be between 1 and priority_levels ({levels})"
        )
    if levels <= 1 and default_level > 1:
        ctx.fail("dynamic_batching.default_priority_level", "needs priority_levels >= this level")
    policy = db.get("default_queue_policy", {})
    if policy.get("timeout_action", "REJECT") != "REJECT":
        ctx.fail("dynamic_batching.default_queue_policy.timeout_action", "only REJECT is supported")
    return DynamicBatchingConfig(
        preferred_batch_sizes=tuple(sorted(set(preferred))),
        max_queue_delay_us=db.get("max_queue_delay_microseconds", 0),
        max_queue_size=policy.get("max_queue_size", 0) or None,
        default_timeout_us=policy.get("default_timeout_microseconds", 0) or None,
        allow_timeout_override=policy.get("allow_timeout_override", False),
        preserve_ordering=db.get("preserve_ordering", False),
        priority_levels=levels if levels > 1 else 0,
        default_priority_level=default_level if levels > 1 else 0,
    )


def _version_policy(doc: dict[str, Any] | None, ctx: Ctx) -> VersionPolicy:
    if not doc:
        return VersionPolicy()
    if "all" in doc:
        return VersionPolicy(kind="all")
    if "specific" in doc:
        versions = tuple(doc["specific"].get("versions", []))
        if not versions or any(v < 0 for v in versions):
            ctx.fail("version_policy.specific.versions", "needs one or more versions >= 0")
        return VersionPolicy(kind="specific", versions=versions)
    num = doc["latest"].get("num_versions", 1)
    if num < 1:
        ctx.fail("version_policy.latest.num_versions", f"must be >= 1, found {num}")
    return VersionPolicy(kind="latest", num_versions=num)


def _inline_execution(
    parameters: Mapping[str, str], batching: DynamicBatchingConfig | None, instances: int, ctx: Ctx
) -> bool:
    text = parameters.get("inline_execution", "0")
    inline = FLAGS.get(text.strip().lower())
    if inline is None:
        ctx.fail("parameters.inline_execution", f"expected 0 or 1, found '{text}'")
    if inline and instances != 1:
        ctx.fail(
            "parameters.inline_execution",
            f"runs batches on the event loop, one at a time: needs instance_group count 1, found {instances}",
        )
    if inline and batching is not None and batching.max_queue_delay_us > 0:
        # NOTE: a precise wait needs an idle thread (loop timers round to milliseconds), and a model cheap
        # enough to run on the loop gains nothing from waiting for a fuller batch.
        ctx.fail(
            "parameters.inline_execution",
            "cannot be combined with dynamic_batching.max_queue_delay_microseconds "
            f"({batching.max_queue_delay_us}); set it to 0",
        )
    return bool(inline)
