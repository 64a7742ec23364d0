"""Protobuf <-> domain conversion for inference: ModelInferRequest -> InferRequest, InferResponse -> proto.

Inputs arrive raw (`raw_input_contents`, decoded zero-copy with `numpy.frombuffer`) or typed
(`contents`); outputs always leave in `raw_output_contents`, which is the only numeric form
tritonclient decodes. Every malformed request raises `InvalidInput` with a message that names the
input; nothing here touches gRPC contexts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos.kserve import (
    COMPUTE_PARAMETERS,
    QUEUE_PARAMETER,
    TIMING_PARAMETERS,
    TYPED_CONTENTS,
    BytesCodecError,
    decode_bytes_elements,
    encode_bytes_elements,
)
from edgeperf.server.errors import InvalidInput, Unsupported
from edgeperf.server.types import InferRequest, InferResponse, datatype_of, numpy_dtype

__all__ = [
    "TIMING_PARAMETERS",
    "deserialize_bytes_tensor",
    "request_from_proto",
    "response_to_proto",
    "serialize_bytes_tensor",
    "stream_error_response",
    "stream_response",
]

# NOTE: hot path: dtype objects and datatype strings are looked up, not rebuilt, for every tensor.
_LITTLE_ENDIAN: Final[Mapping[str, np.dtype[Any]]] = {
    name: numpy_dtype(name).newbyteorder("<") for name in TYPED_CONTENTS if name != "BYTES"
} | {"FP16": np.dtype("<f2")}
_DATATYPE_CACHE: dict[np.dtype[Any], str] = {}
_INPUT_PARAMETER, _INFER_PARAMETER, _OUTPUT_PARAMETER = COMPUTE_PARAMETERS


def _datatype(dtype: np.dtype[Any]) -> str:
    name = _DATATYPE_CACHE.get(dtype)
    if name is None:
        name = _DATATYPE_CACHE[dtype] = datatype_of(dtype)
    return name


def serialize_bytes_tensor(array: npt.NDArray[Any]) -> bytes:
    """Triton's BYTES raw encoding of every element of `array` (see `kserve.encode_bytes_elements`)."""
    return encode_bytes_elements(array.reshape(-1))


def deserialize_bytes_tensor(name: str, raw: bytes, shape: tuple[int, ...]) -> npt.NDArray[np.object_]:
    """Decode Triton's BYTES raw encoding into an object array of `bytes` with `shape`.

    Raises:
        InvalidInput: when the lengths run past the end or the element count does not match `shape`.
    """
    try:
        items = decode_bytes_elements(raw)
    except BytesCodecError as exc:
        raise InvalidInput(f"input '{name}': {exc}") from None
    expected = math.prod(shape)
    if len(items) != expected:
        raise InvalidInput(
            f"input '{name}': BYTES raw contents hold {len(items)} elements, shape {list(shape)} needs {expected}"
        )
    array = np.empty(len(items), dtype=np.object_)
    array[:] = items
    return _reshape(name, array, shape)


def _reshape(name: str, array: npt.NDArray[Any], shape: tuple[int, ...]) -> npt.NDArray[Any]:
    try:
        return array.reshape(shape)
    except ValueError as err:  # NOTE: e.g. [0, 2**62]: no elements, but numpy cannot describe the shape
        raise InvalidInput(
            f"input '{name}': shape {list(shape)} is not a valid tensor shape ({err})"
        ) from None


def _shape(tensor: pb.ModelInferRequest.InferInputTensor) -> tuple[int, ...]:
    shape = tuple(tensor.shape[:])
    if shape and min(shape) < 0:
        raise InvalidInput(f"input '{tensor.name}': shape {list(shape)} has a negative dimension")
    return shape


def _from_raw(tensor: pb.ModelInferRequest.InferInputTensor, raw: bytes | memoryview) -> npt.NDArray[Any]:
    shape = _shape(tensor)
    datatype = tensor.datatype
    dtype = _LITTLE_ENDIAN.get(datatype)
    if dtype is None:
        if datatype == "BYTES":
            return deserialize_bytes_tensor(tensor.name, bytes(raw), shape)
        dtype = numpy_dtype(datatype).newbyteorder("<")
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise InvalidInput(
            f"input '{tensor.name}': raw contents are {len(raw)} bytes, but shape {list(shape)} of "
            f"{datatype} needs {expected} bytes"
        )
    # NOTE: zero copy; the array borrows the request's bytes (read-only), which outlive the inference.
    # One ndarray call, not frombuffer + reshape: the per-request cost of a tiny model counts.
    try:
        return np.ndarray(shape, dtype=dtype, buffer=raw)
    except ValueError as err:  # NOTE: e.g. [0, 2**62]: no elements, but numpy cannot describe the shape
        raise InvalidInput(
            f"input '{tensor.name}': shape {list(shape)} is not a valid tensor shape ({err})"
        ) from None


def _from_contents(tensor: pb.ModelInferRequest.InferInputTensor) -> npt.NDArray[Any]:
    shape = _shape(tensor)
    dtype = numpy_dtype(tensor.datatype)
    field = TYPED_CONTENTS.get(tensor.datatype)
    if field is None:
        raise InvalidInput(
            f"input '{tensor.name}': {tensor.datatype} data must be sent in raw_input_contents"
        )
    values = getattr(tensor.contents, field)
    expected = math.prod(shape)
    if len(values) != expected:
        raise InvalidInput(
            f"input '{tensor.name}': contents.{field} holds {len(values)} elements, "
            f"shape {list(shape)} needs {expected}"
        )
    if tensor.datatype == "BYTES":
        array = np.empty(expected, dtype=np.object_)
        array[:] = list(values)
        return _reshape(tensor.name, array, shape)
    try:
        array = np.asarray(values, dtype=dtype)
    except (
        OverflowError
    ):  # NOTE: INT8/INT16/UINT8/UINT16 travel in 32-bit fields; a wider value is the client's
        raise InvalidInput(
            f"input '{tensor.name}': contents.{field} holds a value outside the range of {tensor.datatype}"
        ) from None
    return _reshape(tensor.name, array, shape)


def _int_parameter(name: str, parameter: pb.InferParameter) -> int:
    choice = parameter.WhichOneof("parameter_choice")
    if choice == "int64_param":
        return int(parameter.int64_param)
    if choice == "uint64_param":
        return int(parameter.uint64_param)
    raise InvalidInput(
        f"request parameter '{name}' must be an integer (int64_param or uint64_param), got {choice}"
    )


def request_from_proto(
    message: pb.ModelInferRequest,
    *,
    deadline_ns: int | None = None,
    raw_input_contents: Sequence[bytes | memoryview] | None = None,
) -> InferRequest:
    """Convert a ModelInferRequest into the core's InferRequest.

    Args:
        message: the request as received; raw input bytes are borrowed, not copied.
        deadline_ns: absolute `time.monotonic_ns()` deadline of the RPC, if the client set one.
        raw_input_contents: the message's raw inputs when they were split off it (server/raw_inputs.py);
            None reads them from `message`.

    Raises:
        InvalidInput: raw and typed contents mixed, a raw entry count different from the input count,
            raw bytes whose length does not match shape and datatype, an unknown datatype, a duplicate
            input name, or a bad `timeout`/`priority` parameter.
        Unsupported: sequence requests or output parameters edgeperf does not serve.
    """
    # NOTE: repeated fields are read by index, never iterated: upb's containers iterate through the
    # sequence protocol, which ends every loop with a formatted IndexError (a few us per request).
    raw_contents = message.raw_input_contents if raw_input_contents is None else raw_input_contents
    inputs: dict[str, npt.NDArray[Any]] = {}
    tensors = message.inputs
    if raw_contents:
        if len(raw_contents) != len(tensors):
            raise InvalidInput(
                f"expected {len(tensors)} raw_input_contents entries (one per input), got {len(raw_contents)}"
            )
        for i in range(len(tensors)):
            tensor, raw = tensors[i], raw_contents[i]
            if tensor.HasField("contents"):
                raise InvalidInput(
                    f"input '{tensor.name}': contents must not be set when the request uses raw_input_contents"
                )
            if tensor.name in inputs:
                raise InvalidInput(f"input '{tensor.name}' appears more than once")
            inputs[tensor.name] = _from_raw(tensor, raw)
    else:
        for tensor in tensors[:]:
            if tensor.name in inputs:
                raise InvalidInput(f"input '{tensor.name}' appears more than once")
            inputs[tensor.name] = _from_contents(tensor)

    timeout_us: int | None = None
    priority = 0
    for name, parameter in message.parameters.items() if message.parameters else ():
        if name == "timeout":
            timeout_us = _int_parameter(name, parameter)
            if timeout_us < 0:
                raise InvalidInput(f"request parameter 'timeout' must be >= 0 microseconds, got {timeout_us}")
        elif name == "priority":
            priority = _int_parameter(name, parameter)
        elif name in ("sequence_id", "sequence_start", "sequence_end"):
            raise Unsupported(f"request parameter '{name}': edgeperf does not serve sequence models")

    outputs = message.outputs[:] if message.outputs else ()
    for output in outputs:
        if "classification" in output.parameters:
            raise Unsupported(f"output '{output.name}': the 'classification' parameter is not supported")

    return InferRequest(
        model_name=message.model_name,
        model_version=message.model_version,
        id=message.id,
        inputs=inputs,
        requested_outputs=tuple([output.name for output in outputs]) if outputs else (),
        timeout_us=timeout_us,
        priority=priority,
        deadline_ns=deadline_ns,
    )


def _raw_bytes(array: npt.NDArray[Any]) -> bytes:
    if array.dtype.kind in ("O", "S", "U"):
        return serialize_bytes_tensor(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return array.tobytes()  # NOTE: row-major whatever the array's strides


def _fill(message: pb.ModelInferResponse, response: InferResponse) -> None:
    # NOTE: filled in place with add()/append(): cheaper than constructor keywords, which copy submessages.
    message.model_name = response.model_name
    message.model_version = response.model_version
    if response.id:
        message.id = response.id
    outputs = message.outputs
    raw = message.raw_output_contents
    for name, array in response.outputs.items():
        tensor = outputs.add()
        tensor.name = name
        dtype = array.dtype
        tensor.datatype = _DATATYPE_CACHE.get(dtype) or _datatype(dtype)
        tensor.shape.extend(array.shape)
        # NOTE: numbers in native (little-endian) order are their bytes; the rest need _raw_bytes.
        raw.append(
            array.tobytes() if dtype.kind not in "OSU" and dtype.byteorder != ">" else _raw_bytes(array)
        )
    parameters = message.parameters
    timings = response.timings
    parameters[QUEUE_PARAMETER].int64_param = timings.queue_ns
    parameters[_INPUT_PARAMETER].int64_param = timings.compute_input_ns
    parameters[_INFER_PARAMETER].int64_param = timings.compute_infer_ns
    parameters[_OUTPUT_PARAMETER].int64_param = timings.compute_output_ns


def response_to_proto(response: InferResponse) -> pb.ModelInferResponse:
    """Convert the core's InferResponse; outputs go to `raw_output_contents` with name, datatype, shape."""
    message = pb.ModelInferResponse()
    _fill(message, response)
    return message


def stream_response(response: InferResponse) -> pb.ModelStreamInferResponse:
    """A streamed answer: the response plus Triton's `triton_final_response` flag (always true here)."""
    stream = pb.ModelStreamInferResponse()
    _fill(stream.infer_response, response)
    stream.infer_response.parameters["triton_final_response"].bool_param = True
    return stream


def stream_error_response(request: pb.ModelInferRequest, error: str) -> pb.ModelStreamInferResponse:
    """A streamed per-request failure: `error_message` set, the request's model and id echoed."""
    echo = pb.ModelInferResponse(
        model_name=request.model_name, model_version=request.model_version, id=request.id
    )
    echo.parameters["triton_final_response"].bool_param = True
    return pb.ModelStreamInferResponse(error_message=error, infer_response=echo)
