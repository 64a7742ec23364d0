"""Large ModelInferRequest messages: raw inputs are views of the received bytes, the rest parses as usual."""

from __future__ import annotations

import numpy as np

from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos import kserve
from edgeperf.server.converters import request_from_proto
from edgeperf.server.grpc_handlers import MalformedMessage
from edgeperf.server.raw_inputs import (
    LARGE_REQUEST_BYTES,
    SplitRequest,
    decode_infer_request,
    split_raw_inputs,
)


def _request(*arrays: np.ndarray) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name="m", model_version="2", id="req-7")
    for i, array in enumerate(arrays):
        message.inputs.add(name=f"IN{i}", datatype="FP32", shape=array.shape)
        message.raw_input_contents.append(array.tobytes())
    message.outputs.add(name="OUT")
    message.parameters["priority"].int64_param = 2
    return message


def test_a_large_request_keeps_its_raw_inputs_in_the_received_bytes() -> None:
    first = np.arange(3 * 224 * 224, dtype=np.float32).reshape(1, 3, 224, 224)
    second = np.full((1, 8), 2.5, dtype=np.float32)
    data = _request(first, second).SerializeToString()
    assert len(data) >= LARGE_REQUEST_BYTES

    decoded = decode_infer_request(data)

    assert isinstance(decoded, SplitRequest)
    assert len(decoded.message.raw_input_contents) == 0
    assert [bytes(view) for view in decoded.raw_input_contents] == [first.tobytes(), second.tobytes()]
    request = request_from_proto(decoded.message, raw_input_contents=decoded.raw_input_contents)
    whole = request_from_proto(pb.ModelInferRequest.FromString(data))
    assert (request.model_name, request.model_version, request.id) == ("m", "2", "req-7")
    assert request.requested_outputs == whole.requested_outputs == ("OUT",)
    assert request.priority == whole.priority == 2
    np.testing.assert_array_equal(request.inputs["IN0"], first)
    np.testing.assert_array_equal(request.inputs["IN1"], second)
    # NOTE: no copy: the tensor reads the bytes gRPC handed over.
    assert np.shares_memory(request.inputs["IN0"], np.frombuffer(data, dtype=np.uint8))


def test_raw_inputs_between_other_fields_split_out_in_order() -> None:
    big = np.ones((1, 40_000), dtype=np.float32)
    small = np.zeros((1, 4), dtype=np.float32)
    head = _request()
    head.inputs.add(name="A", datatype="FP32", shape=big.shape)
    head.inputs.add(name="B", datatype="FP32", shape=small.shape)
    # Fields in an unusual order: a raw entry, the message's other fields, another raw entry, then an id
    # that replaces the first one (protobuf keeps the last value of a singular field).
    data = (
        kserve.raw_input_field(big.tobytes())
        + head.SerializeToString()
        + kserve.raw_input_field(small.tobytes())
        + kserve.request_id_field("last")
    )

    split = split_raw_inputs(data)

    assert split is not None
    rest, raws = split
    assert [bytes(view) for view in raws] == [big.tobytes(), small.tobytes()]
    expected = pb.ModelInferRequest.FromString(data)
    del expected.raw_input_contents[:]
    assert pb.ModelInferRequest.FromString(rest) == expected
    assert expected.id == "last"


def test_bytes_that_do_not_parse_are_a_malformed_message_large_or_small() -> None:
    data = _request(np.ones((1, 50_000), dtype=np.float32)).SerializeToString()
    for broken in (data[:-5], data[:100] + b"\xff" * LARGE_REQUEST_BYTES, b"\x0a\x10short"):
        decoded = decode_infer_request(broken)
        assert isinstance(decoded, MalformedMessage), broken[:20]
        assert decoded.type_name == "inference.ModelInferRequest"
        assert decoded.size == len(broken)


def test_a_small_request_parses_as_a_plain_message() -> None:
    data = _request(np.ones((1, 16), dtype=np.float32)).SerializeToString()
    decoded = decode_infer_request(data)
    assert isinstance(decoded, pb.ModelInferRequest)
    assert decoded == pb.ModelInferRequest.FromString(data)
