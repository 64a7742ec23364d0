"""The KServe v2 wire vocabulary that server, client and benchmarks share: datatypes, timing names, codecs.

Hand-written beside the generated modules so that nobody keeps a copy: the datatype table (KServe
datatype <-> numpy dtype, typed `contents` field), the response parameters carrying the server's
timings, Triton's BYTES element encoding and the protobuf field encodings the client appends to
cached request bytes (raw input contents, request id), and `TensorSpec`, what ModelMetadata says of
one input or output. Errors are plain `ValueError`s; each side re-raises them as its own error type
with the tensor's name.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

__all__ = [
    "COMPUTE_PARAMETERS",
    "DATATYPES",
    "QUEUE_PARAMETER",
    "TIMING_PARAMETERS",
    "TYPED_CONTENTS",
    "BytesCodecError",
    "TensorSpec",
    "datatype_of",
    "decode_bytes_elements",
    "encode_bytes_elements",
    "length_delimited",
    "raw_input_field",
    "request_id_field",
]

DATATYPES: Final[Mapping[str, np.dtype[Any]]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}
"""KServe datatype string -> numpy dtype (BF16 has no numpy dtype and is not served; BYTES is variable-size)."""

TYPED_CONTENTS: Final[Mapping[str, str]] = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
"""KServe datatype -> its field of `InferTensorContents`; FP16 and BF16 have none and travel raw only."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TensorSpec:
    """One model input or output as ModelMetadata describes it; the client, the benchmark specs and the
    server's model config all speak of tensors in these terms."""

    name: str
    datatype: str
    """KServe datatype string, a key of DATATYPES ("FP32", "INT64", "BYTES", ...)."""
    shape: tuple[int, ...]
    """Shape of one sample, without the batch dimension of a batching model; -1 marks a variable
    dimension."""


QUEUE_PARAMETER: Final = "edgeperf_queue_ns"
"""Response parameter (int64 ns): time from enqueue to the start of the batch's execution."""
COMPUTE_PARAMETERS: Final = (
    "edgeperf_compute_input_ns",
    "edgeperf_compute_infer_ns",
    "edgeperf_compute_output_ns",
)
"""Response parameters (int64 ns): the batch's input preparation, execution and output split."""
TIMING_PARAMETERS: Final = (QUEUE_PARAMETER, *COMPUTE_PARAMETERS)
"""Every response parameter carrying the server's own time spent on the request (other servers send none)."""

_BY_DTYPE: Final[Mapping[np.dtype[Any], str]] = {dtype: name for name, dtype in DATATYPES.items()}
_LENGTH = struct.Struct("<I")
_RAW_INPUT_TAG = b"\x3a"  # ModelInferRequest field 7 (raw_input_contents), wire type 2
_ID_TAG = b"\x1a"  # ModelInferRequest field 3 (id), wire type 2


class BytesCodecError(ValueError):
    """BYTES raw contents that do not decode: the message says where they break."""


def datatype_of(dtype: np.dtype[Any]) -> str | None:
    """The KServe datatype of a numpy dtype (float32 -> "FP32"; str/bytes/object -> "BYTES"), or None."""
    dtype = np.dtype(dtype)
    if dtype.kind in ("S", "U", "O"):
        return "BYTES"
    return _BY_DTYPE.get(dtype.newbyteorder("="))


def encode_bytes_elements(items: Iterable[Any]) -> bytes:
    """Triton's BYTES raw encoding: each element as a 4-byte little-endian length, then its bytes."""
    parts: list[bytes] = []
    for item in items:
        data = item.encode() if isinstance(item, str) else bytes(item)
        parts.append(_LENGTH.pack(len(data)))
        parts.append(data)
    return b"".join(parts)


def decode_bytes_elements(raw: bytes) -> list[bytes]:
    """The elements of Triton's BYTES raw encoding.

    Raises:
        BytesCodecError: the lengths run past the end of `raw`.
    """
    items: list[bytes] = []
    view = memoryview(raw)
    offset = 0
    while offset < len(view):
        if offset + 4 > len(view):
            raise BytesCodecError("BYTES raw contents end inside an element length")
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        if offset + length > len(view):
            raise BytesCodecError(f"BYTES element of {length} bytes runs past the end of the data")
        items.append(bytes(view[offset : offset + length]))
        offset += length
    return items


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def length_delimited(tag: bytes, payload: bytes) -> bytes:
    """One protobuf length-delimited field: `tag`, the payload's length as a varint, the payload."""
    return tag + _varint(len(payload)) + payload


def raw_input_field(raw: bytes) -> bytes:
    """A `raw_input_contents` entry, to append to serialized ModelInferRequest bytes."""
    return length_delimited(_RAW_INPUT_TAG, raw)


def request_id_field(request_id: str) -> bytes:
    """The `id` field, to append to serialized ModelInferRequest bytes (protobuf keeps the last one)."""
    return length_delimited(_ID_TAG, request_id.encode())
