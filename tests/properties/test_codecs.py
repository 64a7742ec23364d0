"""Property tests: the request converters and the BYTES codec take any input to a result or a named error.

Bounded (a few hundred examples each, no deadline flakiness) so they stay in `make test`; `make fuzz`
drives the same code through gRPC, coverage-guided, for minutes.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from google.protobuf.message import DecodeError

from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.server.converters import (
    deserialize_bytes_tensor,
    request_from_proto,
    response_to_proto,
    serialize_bytes_tensor,
)
from edgeperf.server.errors import InvalidInput, Unsupported
from edgeperf.server.types import DATATYPES, NO_TIMINGS, InferResponse

# NOTE: a dev dependency (`make setup`); CI always has it, a checkout made before it was added is told why.
pytest.importorskip("hypothesis", reason="hypothesis is not installed: run `make setup`")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BOUNDED = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

shapes = st.lists(st.integers(min_value=0, max_value=4), min_size=0, max_size=3).map(tuple)
# Any datatype the protocol names, a few it does not, and odd spellings.
datatypes = st.sampled_from([*DATATYPES, "fp32", "FP128", "", "STRING", "BF16"])
# Shapes as a client may send them: negative, zero, huge.
wire_shape = st.lists(
    st.one_of(st.integers(-3, 8), st.sampled_from([2**31, 2**62, 2**63 - 1, -(2**63)])), max_size=4
)


@BOUNDED
@given(items=st.lists(st.binary(max_size=40), max_size=12))
def test_bytes_codec_round_trips(items: list[bytes]) -> None:
    array = np.empty(len(items), dtype=np.object_)
    array[:] = items
    decoded = deserialize_bytes_tensor("x", serialize_bytes_tensor(array), (len(items),))
    assert decoded.tolist() == items


@BOUNDED
@given(raw=st.binary(max_size=200), shape=shapes)
def test_bytes_decoder_answers_any_bytes_with_an_array_or_invalid_input(
    raw: bytes, shape: tuple[int, ...]
) -> None:
    try:
        decoded = deserialize_bytes_tensor("x", raw, shape)
    except InvalidInput as exc:
        assert "'x'" in str(exc)  # the error names the input
    else:
        assert decoded.shape == shape
        # what decoded re-encodes to the same bytes: nothing was skipped or invented
        assert serialize_bytes_tensor(decoded) == raw


@st.composite
def infer_requests(draw: st.DrawFn) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(
        model_name=draw(st.sampled_from(["tiny", "", "x" * 300])), id=draw(st.text(max_size=8))
    )
    n_inputs = draw(st.integers(0, 3))
    use_raw = draw(st.booleans())
    for k in range(n_inputs):
        tensor = message.inputs.add(
            name=draw(st.sampled_from(["INPUT0", "INPUT1", f"in{k}", ""])),
            datatype=draw(datatypes),
            shape=draw(wire_shape),
        )
        if use_raw:
            message.raw_input_contents.append(draw(st.binary(max_size=96)))
        elif draw(st.booleans()):
            contents = tensor.contents
            contents.fp32_contents.extend(draw(st.lists(st.floats(width=32), max_size=8)))
            contents.int_contents.extend(draw(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=4)))
            contents.bytes_contents.extend(draw(st.lists(st.binary(max_size=8), max_size=3)))
    if use_raw and draw(st.booleans()):
        message.raw_input_contents.append(b"extra")
    for name in draw(st.lists(st.sampled_from(["timeout", "priority", "sequence_id", "other"]), max_size=2)):
        parameter = message.parameters[name]
        choice = draw(st.integers(0, 3))
        if choice == 0:
            parameter.int64_param = draw(st.integers(-(2**63), 2**63 - 1))
        elif choice == 1:
            parameter.uint64_param = draw(st.integers(0, 2**64 - 1))
        elif choice == 2:
            parameter.string_param = draw(st.text(max_size=6))
        else:
            parameter.bool_param = draw(st.booleans())
    for name in draw(st.lists(st.sampled_from(["OUTPUT0", "nope"]), max_size=2)):
        output = message.outputs.add(name=name)
        if draw(st.booleans()):
            output.parameters["classification"].int64_param = 1
    return message


@BOUNDED
@given(message=infer_requests())
def test_request_conversion_gives_a_request_or_a_named_client_error(message: pb.ModelInferRequest) -> None:
    try:
        request = request_from_proto(message)
    except (InvalidInput, Unsupported) as exc:
        assert str(exc)
    else:
        assert set(request.inputs) == {t.name for t in message.inputs}
        for tensor in message.inputs:
            assert request.inputs[tensor.name].shape == tuple(tensor.shape)


@BOUNDED
@given(data=st.binary(max_size=300))
def test_any_bytes_parse_to_a_request_a_decode_error_or_a_client_error(data: bytes) -> None:
    try:
        message = pb.ModelInferRequest.FromString(data)
    except DecodeError:
        return
    with contextlib.suppress(InvalidInput, Unsupported):
        request_from_proto(message)


@BOUNDED
@given(
    dtype=st.sampled_from([np.float32, np.float16, np.int64, np.uint8, np.bool_, np.float64]),
    shape=shapes,
)
def test_response_encoding_round_trips_through_the_request_decoder(
    dtype: type[np.generic], shape: tuple[int, ...]
) -> None:
    array = (np.arange(int(np.prod(shape)), dtype=np.int64) % 7).astype(dtype).reshape(shape)
    proto = response_to_proto(
        InferResponse(
            model_name="m",
            model_version="1",
            id="r",
            outputs={"OUT": array},
            timings=NO_TIMINGS,
        )
    )
    (out,) = proto.outputs
    request = pb.ModelInferRequest(model_name="m")
    request.inputs.add(name="OUT", datatype=out.datatype, shape=out.shape)
    request.raw_input_contents.append(proto.raw_output_contents[0])
    decoded = request_from_proto(request).inputs["OUT"]
    assert decoded.dtype == array.dtype and np.array_equal(decoded, array)


@pytest.mark.parametrize("shape", [(0, 2**62), (2**62, 2**62), (-1, 2)])
def test_extreme_shapes_are_invalid_input(shape: tuple[int, ...]) -> None:
    message = pb.ModelInferRequest(model_name="tiny")
    message.inputs.add(name="INPUT0", datatype="FP32", shape=shape)
    message.raw_input_contents.append(b"")
    with pytest.raises(InvalidInput):
        request_from_proto(message)
