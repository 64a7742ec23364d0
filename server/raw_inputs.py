"""Large ModelInferRequest messages without copying their tensors.

Reading `message.raw_input_contents[i]` makes a new bytes object (a copy) every time, and parsing copies
the whole message into protobuf's arena first: for one 602 KB ResNet50 image that is two copies and about
50 us. For a large message the decoder here walks the top level of the wire format instead, keeps each
`raw_input_contents` entry as a view of the received bytes (numpy then reads them in place), and parses
only the rest. Anything it does not understand is left to protobuf, which reports malformed bytes as usual.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from google.protobuf.message import DecodeError

from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.server.grpc_handlers import MalformedMessage

__all__ = ["LARGE_REQUEST_BYTES", "SplitRequest", "decode_infer_request", "split_raw_inputs"]

LARGE_REQUEST_BYTES: Final = 64 * 1024
"""From this size on, raw inputs are views of the received bytes; below it the walk costs more than it saves."""

_RAW_INPUT_FIELD: Final = 7  # ModelInferRequest.raw_input_contents
_FULL_NAME: Final = pb.ModelInferRequest.DESCRIPTOR.full_name
_PARSE: Final = pb.ModelInferRequest.FromString
"""Looked up once: upb finds `FromString` on the message class only after a failed (formatted) lookup."""


class SplitRequest(NamedTuple):
    """A ModelInferRequest parsed without its raw_input_contents, and those entries as views."""

    message: pb.ModelInferRequest
    raw_input_contents: tuple[memoryview, ...]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it; (-1, pos) if it runs past the end or is too long."""
    value = shift = 0
    end = len(data)
    while pos < end and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    return -1, pos


def split_raw_inputs(data: bytes) -> tuple[bytes, tuple[memoryview, ...]] | None:
    """The message bytes without their top-level raw_input_contents entries, and views of those entries.

    Returns None when the top level is not plain protobuf wire format (protobuf then parses `data`
    whole and says what is wrong).
    """
    view = memoryview(data)
    end = len(data)
    rest: list[memoryview] = []
    raws: list[memoryview] = []
    pos = kept_from = 0
    while pos < end:
        field_start = pos
        key, pos = _varint(data, pos)
        wire = key & 7
        if key < 0 or key >> 3 == 0:
            return None
        if wire == 2:
            length, pos = _varint(data, pos)
            if length < 0 or pos + length > end:
                return None
            if key >> 3 == _RAW_INPUT_FIELD:
                rest.append(view[kept_from:field_start])
                raws.append(view[pos : pos + length])
                kept_from = pos + length
            pos += length
        elif wire == 0:
            value, pos = _varint(data, pos)
            if value < 0:
                return None
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:  # NOTE: groups (3, 4) and invalid wire types: protobuf decides
            return None
    if pos != end:
        return None
    rest.append(view[kept_from:])
    return b"".join(rest), tuple(raws)


def decode_infer_request(data: bytes) -> pb.ModelInferRequest | SplitRequest | MalformedMessage:
    """The request deserializer of ModelInfer and ModelStreamInfer: never raises (see grpc_handlers)."""
    split = split_raw_inputs(data) if len(data) >= LARGE_REQUEST_BYTES else None
    try:
        if split is None:
            return _PARSE(data)
        head, raws = split
        return SplitRequest(_PARSE(head), raws)
    except (DecodeError, ValueError) as err:
        return MalformedMessage(_FULL_NAME, len(data), str(err))
