"""The schema of Triton's ModelConfig subset edgeperf accepts, and its field-by-field check.

Both config.pbtxt (via server/pbtxt.py) and config.yaml become a list of fields, checked here against the
schema and turned into a dict in protobuf JSON form (repeated fields as lists, enums as names). Semantic
checks (ranges, cross-field rules) are in server/config.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

import yaml

from edgeperf.server.errors import ModelConfigError
from edgeperf.server.pbtxt import Field, Ident, TextFormatError, parse_text_format
from edgeperf.server.types import DATATYPES

__all__ = ["Ctx", "normalize_text", "normalize_yaml"]


def normalize_text(text: str, ctx: Ctx) -> dict[str, Any]:
    """Check config.pbtxt text; the protobuf-JSON-form dict of it."""
    try:
        fields = parse_text_format(text)
    except TextFormatError as exc:
        ctx.fail("<syntax>", str(exc))
    return _normalize(fields, _MODEL_CONFIG, "", ctx)


def normalize_yaml(text: str, ctx: Ctx) -> dict[str, Any]:
    """Check config.yaml text; the protobuf-JSON-form dict of it."""
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        ctx.fail("<yaml>", f"not valid YAML: {exc}")
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        ctx.fail("<yaml>", "the document must be a mapping of ModelConfig fields")
    return _normalize(_fields_from_yaml(loaded), _MODEL_CONFIG, "", ctx)


@dataclass(frozen=True, slots=True)
class _Spec:
    kind: Literal["string", "int", "uint", "bool", "enum", "msg", "map", "unsupported"]
    repeated: bool = False
    schema: Mapping[str, _Spec] | None = None
    enum: tuple[str, ...] = ()


def _msg(schema: Mapping[str, _Spec], repeated: bool = False) -> _Spec:
    return _Spec("msg", repeated, schema)


_S, _I, _U, _B = _Spec("string"), _Spec("int"), _Spec("uint"), _Spec("bool")
_IR = _Spec("int", repeated=True)
_UNSUP = _Spec("unsupported")
_DATA_TYPES = ("TYPE_INVALID", *(f"TYPE_{n}" for n in DATATYPES if n != "BYTES"), "TYPE_STRING", "TYPE_BF16")
_DATA_TYPE = _Spec("enum", enum=_DATA_TYPES)
_RESHAPE = _msg({"shape": _IR})
_TENSOR_COMMON: dict[str, _Spec] = {
    "name": _S,
    "data_type": _DATA_TYPE,
    "dims": _IR,
    "reshape": _RESHAPE,
    "is_shape_tensor": _B,
    "is_non_linear_format_io": _B,
}
_INPUT = _msg(
    {
        **_TENSOR_COMMON,
        "format": _Spec("enum", enum=("FORMAT_NONE", "FORMAT_NHWC", "FORMAT_NCHW")),
        "allow_ragged_batch": _B,
        "optional": _B,
    },
    repeated=True,
)
_OUTPUT = _msg({**_TENSOR_COMMON, "label_filename": _S}, repeated=True)
_QUEUE_POLICY = _msg(
    {
        "timeout_action": _Spec("enum", enum=("REJECT", "DELAY")),
        "default_timeout_microseconds": _U,
        "allow_timeout_override": _B,
        "max_queue_size": _U,
    }
)
_DYNAMIC_BATCHING = _msg(
    {
        "preferred_batch_size": _IR,
        "max_queue_delay_microseconds": _U,
        "preserve_ordering": _B,
        "priority_levels": _U,
        "default_priority_level": _U,
        "default_queue_policy": _QUEUE_POLICY,
        "priority_queue_policy": _UNSUP,
    }
)
_ACCELERATOR = _msg({"name": _S, "parameters": _Spec("map", schema={"value": _S})}, repeated=True)
_OPTIMIZATION = _msg(
    {
        "graph": _msg({"level": _I}),
        "priority": _Spec("enum", enum=("PRIORITY_DEFAULT", "PRIORITY_MAX", "PRIORITY_MIN")),
        "execution_accelerators": _msg(
            {"gpu_execution_accelerator": _ACCELERATOR, "cpu_execution_accelerator": _ACCELERATOR}
        ),
        "input_pinned_memory": _msg({"enable": _B}),
        "output_pinned_memory": _msg({"enable": _B}),
        "gather_kernel_buffer_threshold": _U,
        "eager_batching": _B,
        # NOTE: only `graphs` is read (CUDA graph capture); the rest are TensorRT-backend settings.
        "cuda": _msg(
            {"graphs": _B, "busy_wait_events": _UNSUP, "graph_spec": _UNSUP, "output_copy_stream": _UNSUP}
        ),
    }
)
_MODEL_CONFIG: Mapping[str, _Spec] = {
    "name": _S,
    "platform": _S,
    "backend": _S,
    "runtime": _S,
    "version_policy": _msg(
        {"latest": _msg({"num_versions": _U}), "all": _msg({}), "specific": _msg({"versions": _IR})}
    ),
    "max_batch_size": _I,
    "input": _INPUT,
    "output": _OUTPUT,
    "batch_input": _UNSUP,
    "batch_output": _UNSUP,
    "optimization": _OPTIMIZATION,
    "dynamic_batching": _DYNAMIC_BATCHING,
    "sequence_batching": _UNSUP,
    "ensemble_scheduling": _UNSUP,
    "instance_group": _msg(
        {
            "name": _S,
            "kind": _Spec("enum", enum=("KIND_AUTO", "KIND_GPU", "KIND_CPU", "KIND_MODEL")),
            "count": _I,
            "gpus": _IR,
            "profile": _Spec("string", repeated=True),
            "passive": _B,
            "host_policy": _S,
            "rate_limiter": _UNSUP,
            "secondary_devices": _UNSUP,
        },
        repeated=True,
    ),
    "default_model_filename": _S,
    "cc_model_filenames": _Spec("map", schema={"value": _S}),
    "metric_tags": _Spec("map", schema={"value": _S}),
    "parameters": _Spec("map", schema={"value": _msg({"string_value": _S})}),
    "model_warmup": _UNSUP,
    "model_operations": _UNSUP,
    "model_transaction_policy": _msg({"decoupled": _B}),
    "model_repository_agents": _UNSUP,
    "response_cache": _UNSUP,
    "model_metrics": _UNSUP,
}


@dataclass(frozen=True, slots=True)
class Ctx:
    path: Path
    model: str

    def fail(self, field_name: str, reason: str, line: int = 0) -> NoReturn:
        where = f" (line {line})" if line else ""
        raise ModelConfigError(self.path, field_name, f"{reason}{where}", model=self.model)


def _fields_from_yaml(mapping: Mapping[Any, Any]) -> list[Field]:
    fields: list[Field] = []
    for key, value in mapping.items():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict):
                fields.append(Field(str(key), _fields_from_yaml(item), 0))
            elif item is None:
                fields.append(Field(str(key), [], 0))
            else:
                fields.append(Field(str(key), item, 0))
    return fields


def _normalize(fields: list[Field], schema: Mapping[str, _Spec], prefix: str, ctx: Ctx) -> dict[str, Any]:
    """Check fields against `schema`; return the protobuf-JSON-form dict."""
    out: dict[str, Any] = {}
    for f in fields:
        where = f"{prefix}{f.name}"
        spec = schema.get(f.name)
        if spec is None:
            known = ", ".join(sorted(schema)) or "none"
            ctx.fail(where, f"unknown field (known here: {known})", f.line)
        if spec.kind == "unsupported":
            ctx.fail(where, "is a Triton field edgeperf does not support", f.line)
        if spec.kind == "map":
            entries = out.setdefault(f.name, {})
            assert spec.schema is not None
            for key, value in _map_entries(f, where, ctx):
                entries[key] = _value(value, spec.schema["value"], f"{where}[{key!r}]", f.line, ctx)
            continue
        if spec.repeated and spec.kind == "msg":
            where = f"{where}[{len(out.get(f.name, []))}]"
        value = _value(f.value, spec, where, f.line, ctx)
        if spec.repeated:
            out.setdefault(f.name, []).append(value)
        elif f.name in out:
            ctx.fail(where, "given more than once", f.line)
        else:
            out[f.name] = value
    return out


def _map_entries(f: Field, where: str, ctx: Ctx) -> list[tuple[str, Any]]:
    if not isinstance(f.value, list):
        ctx.fail(where, "expected a map entry { key: ... value: ... }", f.line)
    names = {e.name for e in f.value}
    if "key" in names and names <= {"key", "value"}:  # text format: one entry per occurrence
        entry = {e.name: e.value for e in f.value}
        key = entry["key"]
        if not isinstance(key, str) or isinstance(key, Ident):
            ctx.fail(f"{where}.key", "expected a quoted string", f.line)
        if "value" not in entry:
            ctx.fail(f"{where}[{key!r}]", "map entry without a value", f.line)
        return [(key, entry["value"])]
    # YAML: a mapping of keys to values; plain scalars stand for { string_value: ... }
    return [(e.name, e.value) for e in f.value]


def _value(raw: Any, spec: _Spec, where: str, line: int, ctx: Ctx) -> Any:
    kind = spec.kind
    if kind == "msg":
        assert spec.schema is not None
        if not isinstance(raw, list):
            if spec.schema.keys() == {"string_value"} and isinstance(raw, str | int | float):
                return {"string_value": str(raw)}
            ctx.fail(where, "expected a message { ... }", line)
        return _normalize(raw, spec.schema, f"{where}.", ctx)
    if isinstance(raw, list):
        ctx.fail(where, f"expected a {kind} value, found a message", line)
    if kind == "string":
        if isinstance(raw, Ident) or not isinstance(raw, str | int | float) or isinstance(raw, bool):
            ctx.fail(where, f"expected a quoted string, found {raw!r}", line)
        return str(raw)
    if kind in ("int", "uint"):
        if isinstance(raw, bool) or not isinstance(raw, int):
            ctx.fail(where, f"expected an integer, found {raw!r}", line)
        if kind == "uint" and raw < 0:
            ctx.fail(where, f"must be >= 0, found {raw}", line)
        return raw
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, Ident) and raw in ("true", "True", "t", "false", "False", "f"):
            return raw in ("true", "True", "t")
        if isinstance(raw, int) and raw in (0, 1):
            return bool(raw)
        ctx.fail(where, f"expected true or false, found {raw!r}", line)
    # enum
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < len(spec.enum):
        return spec.enum[raw]
    if isinstance(raw, str):
        name = f"TYPE_{raw}" if spec is _DATA_TYPE and f"TYPE_{raw}" in spec.enum else raw
        if name in spec.enum:
            return name
    ctx.fail(where, f"unknown value {raw!r}; expected one of {', '.join(spec.enum)}", line)
