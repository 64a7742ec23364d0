"""config.pbtxt and config.yaml read into Triton's ModelConfig message; each error names file, model and field.

config.pbtxt is parsed by protobuf's own text-format parser (`text_format.Parse`, as Triton does) into
`model_config_pb2.ModelConfig`. Its errors carry a line and column but no field path, so the path
(`input[1].dims`) is recovered from the text around that position (`_field_paths`). config.yaml is walked
along the message descriptor, which allows the YAML shorthands (`data_type: FP32`, `parameters: {key:
"value"}`, one value for a repeated field) and names the field of every error.

Either way the result is the message as a dict in protobuf JSON form with Triton's field names (enum names,
native ints: what `json_format.ParseDict` accepts), after the Triton fields edgeperf does not serve are
rejected. The semantic checks (ranges, cross-field rules) are in server/model_config.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml
from google.protobuf import text_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from edgeperf.protos import model_config_pb2 as mc
from edgeperf.server.errors import ModelConfigError

__all__ = ["UNSUPPORTED", "Ctx", "read_text", "read_yaml"]

UNSUPPORTED = frozenset(
    [
        "batch_input",
        "batch_output",
        "sequence_batching",
        "ensemble_scheduling",
        "model_warmup",
        "model_operations",
        "model_repository_agents",
        "response_cache",
        "model_metrics",
        "instance_group.rate_limiter",
        "instance_group.secondary_devices",
        "dynamic_batching.priority_queue_policy",
        # NOTE: of `cuda` only `graphs` is read (CUDA graph capture); the rest are TensorRT-backend settings.
        "optimization.cuda.busy_wait_events",
        "optimization.cuda.graph_spec",
        "optimization.cuda.output_copy_stream",
    ]
)
"""Triton fields edgeperf rejects rather than ignores, as paths without list indices."""


@dataclass(frozen=True, slots=True)
class Ctx:
    """Where a config comes from, for its errors."""

    path: Path
    model: str

    def fail(self, field_name: str, reason: str, line: int = 0, column: int = 0) -> NoReturn:
        where = f" (line {line}, column {column})" if line and column else f" (line {line})" if line else ""
        raise ModelConfigError(self.path, field_name, f"{reason}{where}", model=self.model)


def read_text(text: str, ctx: Ctx) -> dict[str, Any]:
    """Parse config.pbtxt text; the protobuf-JSON-form dict of it.

    Raises:
        ModelConfigError: naming the field, with the line and column protobuf reports.
    """
    message = mc.ModelConfig()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        _parse_failed(text, exc, ctx)

    def locate(path: str) -> tuple[int, int]:
        offset = next((at for at, p in _field_paths(text) if p == path), None)
        if offset is None:
            return 0, 0
        return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)

    return _to_dict(message, "", ctx, locate)


def read_yaml(text: str, ctx: Ctx) -> dict[str, Any]:
    """Parse config.yaml text; the protobuf-JSON-form dict of it.

    Raises:
        ModelConfigError: naming the field (YAML's own syntax errors carry its line and column).
    """
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        ctx.fail("<yaml>", f"not valid YAML: {exc}")
    if not isinstance(loaded, dict | None):
        ctx.fail("<yaml>", "the document must be a mapping of ModelConfig fields")
    message = mc.ModelConfig()
    _fill(message, loaded or {}, "", ctx)
    return _to_dict(message, "", ctx, lambda _: (0, 0))


# ----------------------------------------------------------------------------------------------------
# config.pbtxt: protobuf's error, with the field path found in the text.

_TOKEN = re.compile(r"""\#[^\n]*|"(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?|[\w.+-]+|\S""")
_NO_FIELD = re.compile(r'Message type "([\w.]+)" has no field named "(\w+)"')
_NO_VALUE = re.compile(r'Enum type "([\w.]+)" has no value named (\S+?)\.?$')
_POOL = mc.DESCRIPTOR.pool


def _parse_failed(text: str, exc: text_format.ParseError, ctx: Ctx) -> NoReturn:
    line, column = exc.GetLine() or 0, exc.GetColumn() or 0
    # NOTE: protobuf's message is "L:C : 'the whole line': reason"; the line and column are said once, below.
    reason = re.sub(r"^\d+(:\d+)? : ", "", str(exc))
    lines = text.split("\n")
    if 0 < line <= len(lines) and reason.startswith(f"'{lines[line - 1]}': "):
        reason = reason[len(lines[line - 1]) + 4 :]
    offset = sum(len(s) + 1 for s in lines[: max(line - 1, 0)]) + max(column - 1, 0)
    path, at_last_token = "", True
    for at, p in _field_paths(text):
        if at > offset:
            at_last_token = False
            break
        path = p
    # NOTE: at the end of the text protobuf points at the last token; the message left open says more.
    if at_last_token and reason.startswith("Expected") and (open_path := _open_message(text)):
        path, reason = open_path, f"unexpected end of file: {reason}"
    if (unsupported := _unsupported_prefix(path)) is not None:
        ctx.fail(unsupported, "is a Triton field edgeperf does not support", line, column)
    if m := _NO_FIELD.search(reason):
        reason = f"unknown field (known here: {_known(_POOL.FindMessageTypeByName(m[1]).fields_by_name)})"
    elif m := _NO_VALUE.search(reason):
        reason = f"unknown value '{m[2]}'; expected one of {_enum_names(_POOL.FindEnumTypeByName(m[1]))}"
    ctx.fail(path or "<syntax>", reason, line, column)


@dataclass(slots=True)
class _Frame:
    path: str
    descriptor: Descriptor | None
    name: str = ""
    """The field whose value is being read; "" between fields."""
    in_list: bool = False
    counts: dict[str, int] = field(default_factory=dict)

    def field_path(self) -> str:
        return self.path if not self.name else f"{self.path}.{self.name}" if self.path else self.name

    def open(self) -> _Frame:
        fd = self.descriptor.fields_by_name.get(self.name) if self.descriptor is not None else None
        path = self.field_path()
        if fd is not None and fd.label == FieldDescriptor.LABEL_REPEATED and not _is_map(fd):
            index = self.counts.get(self.name, 0)
            self.counts[self.name] = index + 1
            path = f"{path}[{index}]"
        return _Frame(path, fd.message_type if fd is not None else None)


def _field_paths(text: str) -> Iterator[tuple[int, str]]:
    """(offset, field path) of each token of config.pbtxt text: the field the token belongs to, "" for none.

    Tracks only names and brackets, which is enough to name the field at a position protobuf reports.
    """
    frames = [_Frame("", _POOL.FindMessageTypeByName("inference.ModelConfig"))]
    previous = ""
    for m in _TOKEN.finditer(text):
        token, frame = m.group(), frames[-1]
        if token[0] == "#":
            continue
        if token in ("{", "<"):
            frames.append(frame.open())
            yield m.start(), frames[-1].path
        elif token in ("}", ">"):
            yield m.start(), frame.path
            if len(frames) > 1:
                frames.pop()
                if not frames[-1].in_list:
                    frames[-1].name = ""
        elif token in ("[", "]"):
            frame.in_list = token == "["
            yield m.start(), frame.field_path()
            if token == "]":
                frame.name = ""
        elif (token[0].isalpha() or token[0] == "_") and not frame.in_list and previous != ":":
            frame.name = token
            yield m.start(), frame.field_path()
        else:
            yield m.start(), frame.field_path()
            if token not in (":", ",", ";") and not frame.in_list:
                frame.name = ""
        previous = token


def _open_message(text: str) -> str:
    """Path of the innermost message still open at the end of the text; "" when all are closed."""
    depth: list[str] = []
    for at, path in _field_paths(text):
        if text[at] in "{<":
            depth.append(path)
        elif text[at] in "}>" and depth:
            depth.pop()
    return depth[-1] if depth else ""


# ----------------------------------------------------------------------------------------------------
# config.yaml: a walk along the descriptor.


def _fill(message: Message, value: object, where: str, ctx: Ctx) -> None:
    if value is None:  # `all:` with nothing after it is the empty message
        value = {}
    if not isinstance(value, dict):
        ctx.fail(where, "expected a message { ... }")
    message.SetInParent()
    fields = message.DESCRIPTOR.fields_by_name
    for key, item in value.items():
        at = f"{where}.{key}" if where else str(key)
        fd = fields.get(str(key))
        if fd is None:
            ctx.fail(at, f"unknown field (known here: {_known(fields)})")
        if _unsupported_prefix(at) is not None:
            ctx.fail(at, "is a Triton field edgeperf does not support")
        oneof = fd.containing_oneof
        if oneof is not None and message.WhichOneof(oneof.name) not in (None, fd.name):
            ctx.fail(where or oneof.name, f"choose one of {', '.join(f.name for f in oneof.fields)}")
        try:
            _fill_field(message, fd, item, at, ctx)
        except ValueError as exc:  # protobuf's range check: "Value out of range: -5"
            ctx.fail(at, str(exc))


def _fill_field(message: Message, fd: FieldDescriptor, item: object, at: str, ctx: Ctx) -> None:
    container = getattr(message, fd.name)
    if _is_map(fd):
        if not isinstance(item, dict):
            ctx.fail(at, "expected a mapping of keys to values")
        key_fd, value_fd = fd.message_type.fields_by_name["key"], fd.message_type.fields_by_name["value"]
        for k, v in item.items():
            key = _scalar(key_fd, k, at, ctx)
            if value_fd.message_type is None:
                container[key] = _scalar(value_fd, v, f"{at}[{key!r}]", ctx)
            elif value_fd.message_type is mc.ModelParameter.DESCRIPTOR and not isinstance(v, dict | None):
                container[key].string_value = _scalar(
                    value_fd.message_type.fields_by_name["string_value"], v, at, ctx
                )
            else:
                _fill(container[key], v, f"{at}[{key!r}]", ctx)
    elif fd.label == FieldDescriptor.LABEL_REPEATED:
        for i, element in enumerate(item if isinstance(item, list) else [item]):
            if fd.message_type is not None:
                _fill(container.add(), element, f"{at}[{i}]", ctx)
            else:
                container.append(_scalar(fd, element, at, ctx))
    elif isinstance(item, list):
        ctx.fail(at, "given more than once")
    elif fd.message_type is not None:
        _fill(container, item, at, ctx)
    else:
        setattr(message, fd.name, _scalar(fd, item, at, ctx))


def _scalar(fd: FieldDescriptor, raw: object, at: str, ctx: Ctx) -> Any:
    if fd.enum_type is not None:
        names = fd.enum_type.values_by_name
        if isinstance(raw, str):
            # NOTE: config.yaml may drop DataType's prefix (FP32 for TYPE_FP32), as the KServe names do.
            short = f"TYPE_{raw}" if fd.enum_type.full_name == "inference.DataType" else raw
            if (value := names.get(raw) or names.get(short)) is not None:
                return value.number
        elif isinstance(raw, int) and not isinstance(raw, bool) and raw in fd.enum_type.values_by_number:
            return raw
        ctx.fail(at, f"unknown value {raw!r}; expected one of {_enum_names(fd.enum_type)}")
    if fd.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        if not isinstance(raw, bool):
            ctx.fail(at, f"expected true or false, found {raw!r}")
        return raw
    if fd.cpp_type == FieldDescriptor.CPPTYPE_STRING:
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            ctx.fail(at, f"expected a string, found {raw!r}")
        return str(raw)
    if fd.cpp_type in (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE):
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            ctx.fail(at, f"expected a number, found {raw!r}")
        return float(raw)
    if isinstance(raw, bool) or not isinstance(raw, int):
        ctx.fail(at, f"expected an integer, found {raw!r}")
    return raw


# ----------------------------------------------------------------------------------------------------
# The message as a dict, rejecting what edgeperf does not serve.


_Locate = Callable[[str], tuple[int, int]]
"""Line and column of a field path in the config text; (0, 0) where unknown (config.yaml)."""


def _to_dict(message: Message, where: str, ctx: Ctx, locate: _Locate) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fd, value in message.ListFields():
        at = f"{where}.{fd.name}" if where else fd.name
        if _unsupported_prefix(at) is not None:
            ctx.fail(at, "is a Triton field edgeperf does not support", *locate(at))
        if _is_map(fd):
            value_fd = fd.message_type.fields_by_name["value"]
            out[fd.name] = {k: _value(value_fd, value[k], f"{at}[{k!r}]", ctx, locate) for k in sorted(value)}
        elif fd.label == FieldDescriptor.LABEL_REPEATED:
            indexed = fd.message_type is not None
            out[fd.name] = [
                _value(fd, v, f"{at}[{i}]" if indexed else at, ctx, locate) for i, v in enumerate(value)
            ]
        else:
            out[fd.name] = _value(fd, value, at, ctx, locate)
    return out


def _value(fd: FieldDescriptor, value: Any, at: str, ctx: Ctx, locate: _Locate) -> Any:
    if fd.message_type is not None:
        return _to_dict(value, at, ctx, locate)
    if fd.enum_type is not None:
        # NOTE: proto3 enums are open: text format takes any number, so known values are checked here.
        if value not in fd.enum_type.values_by_number:
            ctx.fail(at, f"unknown value {value}; expected one of {_enum_names(fd.enum_type)}", *locate(at))
        return fd.enum_type.values_by_number[value].name
    return value


def _is_map(fd: FieldDescriptor) -> bool:
    return fd.message_type is not None and fd.message_type.GetOptions().map_entry


def _enum_names(enum: EnumDescriptor) -> str:
    return ", ".join(v.name for v in enum.values)


def _unsupported_prefix(path: str) -> str | None:
    """The part of `path` (`sequence_batching` of `sequence_batching.oldest`) that is unsupported, if any."""
    prefix = ""
    for part in path.split("."):
        prefix = f"{prefix}.{part}" if prefix else part
        if re.sub(r"\[[^\]]*\]", "", prefix) in UNSUPPORTED:
            return prefix
    return None


def _known(fields: Mapping[str, FieldDescriptor]) -> str:
    return ", ".join(sorted(fields))
