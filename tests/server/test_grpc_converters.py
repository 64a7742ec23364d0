"""Protobuf <-> domain conversion of inference requests and responses."""

from __future__ import annotations

import numpy as np
import pytest

from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.server.converters import (
    TIMING_PARAMETERS,
    deserialize_bytes_tensor,
    request_from_proto,
    response_to_proto,
    serialize_bytes_tensor,
    stream_error_response,
    stream_response,
)
from edgeperf.server.errors import InvalidInput, Unsupported
from edgeperf.server.types import NO_TIMINGS, InferResponse, ServerTimings


def _raw_request(*arrays: tuple[str, str, np.ndarray], **kwargs: object) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name="tiny", id="r1", **kwargs)  # type: ignore[arg-type]
    for name, datatype, array in arrays:
        message.inputs.add(name=name, datatype=datatype, shape=array.shape)
        message.raw_input_contents.append(
            serialize_bytes_tensor(array)
            if datatype == "BYTES"
            else array.astype(array.dtype.newbyteorder("<")).tobytes()
        )
    return message


def test_raw_inputs_decode_without_copy():
    data = np.arange(32, dtype=np.float32).reshape(2, 16)
    message = _raw_request(("INPUT0", "FP32", data))
    request = request_from_proto(message, deadline_ns=123)
    array = request.inputs["INPUT0"]
    np.testing.assert_array_equal(array, data)
    assert not array.flags.owndata and not array.flags.writeable
    assert (request.model_name, request.id, request.deadline_ns, request.requested_outputs) == (
        "tiny",
        "r1",
        123,
        (),
    )


@pytest.mark.parametrize(
    ("datatype", "dtype"),
    [
        ("BOOL", np.bool_),
        ("UINT8", np.uint8),
        ("INT16", np.int16),
        ("INT64", np.int64),
        ("FP16", np.float16),
        ("FP64", np.float64),
    ],
)
def test_raw_inputs_of_every_numeric_type(datatype, dtype):
    data = (np.arange(6) % 3).astype(dtype).reshape(3, 2)
    np.testing.assert_array_equal(request_from_proto(_raw_request(("X", datatype, data))).inputs["X"], data)


def test_bytes_inputs_round_trip():
    data = np.array([[b"a", b""], [b"hello", b"\x00\x01"]], dtype=np.object_)
    decoded = request_from_proto(_raw_request(("S", "BYTES", data))).inputs["S"]
    assert decoded.shape == (2, 2) and decoded.tolist() == data.tolist()


def test_typed_contents_are_accepted():
    message = pb.ModelInferRequest(model_name="tiny")
    tensor = message.inputs.add(name="INPUT0", datatype="FP32", shape=[1, 3])
    tensor.contents.fp32_contents.extend([1.0, 2.5, -3.0])
    ints = message.inputs.add(name="I", datatype="INT8", shape=[2])
    ints.contents.int_contents.extend([-1, 7])
    words = message.inputs.add(name="W", datatype="BYTES", shape=[1])
    words.contents.bytes_contents.append(b"xyz")
    inputs = request_from_proto(message).inputs
    np.testing.assert_array_equal(inputs["INPUT0"], np.array([[1.0, 2.5, -3.0]], dtype=np.float32))
    assert inputs["I"].dtype == np.int8 and inputs["I"].tolist() == [-1, 7]
    assert inputs["W"].tolist() == [b"xyz"]


@pytest.mark.parametrize(
    ("datatype", "field", "value"), [("INT8", "int_contents", 128), ("UINT8", "uint_contents", 256)]
)
def test_a_typed_value_outside_its_datatype_is_invalid(datatype, field, value):
    # Found by hypothesis: numpy's OverflowError escaped as an internal error.
    message = pb.ModelInferRequest(model_name="tiny")
    getattr(message.inputs.add(name="I", datatype=datatype, shape=[1]).contents, field).append(value)
    with pytest.raises(InvalidInput, match=f"contents.{field} holds a value outside the range of {datatype}"):
        request_from_proto(message)


def test_raw_and_typed_together_is_invalid():
    message = _raw_request(("A", "FP32", np.zeros((1, 2), np.float32)))
    message.inputs[0].contents.fp32_contents.extend([0.0, 0.0])
    with pytest.raises(InvalidInput, match="contents must not be set"):
        request_from_proto(message)


def test_raw_count_must_match_inputs():
    message = _raw_request(("A", "FP32", np.zeros((1, 2), np.float32)))
    message.inputs.add(name="B", datatype="FP32", shape=[1, 2])
    with pytest.raises(InvalidInput, match="expected 2 raw_input_contents entries"):
        request_from_proto(message)


def test_raw_length_must_match_shape():
    message = _raw_request(("A", "FP32", np.zeros((1, 2), np.float32)))
    message.inputs[0].shape[:] = [1, 3]
    with pytest.raises(InvalidInput, match="raw contents are 8 bytes, but shape \\[1, 3\\] of FP32 needs 12"):
        request_from_proto(message)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda m: m.inputs[0].__setattr__("datatype", "FP8"), "unsupported datatype 'FP8'"),
        (lambda m: m.inputs[0].shape.__setitem__(0, -1), "negative dimension"),
        (
            lambda m: m.parameters["timeout"].__setattr__("string_param", "soon"),
            "'timeout' must be an integer",
        ),
        (lambda m: m.parameters["timeout"].__setattr__("int64_param", -5), "must be >= 0"),
    ],
)
def test_bad_requests_name_the_problem(mutate, match):
    message = _raw_request(("A", "FP32", np.zeros((1, 2), np.float32)))
    mutate(message)
    with pytest.raises(InvalidInput, match=match):
        request_from_proto(message)


def test_bad_bytes_encoding():
    with pytest.raises(InvalidInput, match="runs past the end"):
        deserialize_bytes_tensor("S", b"\x09\x00\x00\x00ab", (1,))
    with pytest.raises(InvalidInput, match="hold 1 elements"):
        deserialize_bytes_tensor("S", b"\x01\x00\x00\x00a", (2,))
    with pytest.raises(InvalidInput, match="inside an element length"):
        deserialize_bytes_tensor("S", b"\x01\x00", (1,))


def test_typed_count_and_raw_only_types():
    message = pb.ModelInferRequest(model_name="m")
    message.inputs.add(name="H", datatype="FP16", shape=[1]).contents.fp32_contents.append(1.0)
    with pytest.raises(InvalidInput, match="must be sent in raw_input_contents"):
        request_from_proto(message)
    message = pb.ModelInferRequest(model_name="m")
    message.inputs.add(name="F", datatype="FP32", shape=[2]).contents.fp32_contents.append(1.0)
    with pytest.raises(InvalidInput, match="holds 1 elements"):
        request_from_proto(message)


def test_duplicate_input_is_invalid():
    data = np.zeros((1, 2), np.float32)
    with pytest.raises(InvalidInput, match="more than once"):
        request_from_proto(_raw_request(("A", "FP32", data), ("A", "FP32", data)))


def test_parameters_timeout_priority_outputs():
    message = _raw_request(("A", "FP32", np.zeros((1, 2), np.float32)))
    message.parameters["timeout"].int64_param = 2500
    message.parameters["priority"].uint64_param = 2
    message.parameters["custom"].string_param = "ignored"
    message.outputs.add(name="OUTPUT0")
    request = request_from_proto(message)
    assert (request.timeout_us, request.priority, request.requested_outputs) == (2500, 2, ("OUTPUT0",))
    message.parameters["priority"].int64_param = 3
    assert request_from_proto(message).priority == 3


def test_unsupported_parameters():
    message = _raw_request(("A", "FP32", np.zeros((1, 2), np.float32)))
    message.parameters["sequence_id"].int64_param = 7
    with pytest.raises(Unsupported, match="sequence"):
        request_from_proto(message)
    message = _raw_request(("A", "FP32", np.zeros((1, 2), np.float32)))
    message.outputs.add(name="O").parameters["classification"].int64_param = 3
    with pytest.raises(Unsupported, match="classification"):
        request_from_proto(message)


def _response() -> InferResponse:
    return InferResponse(
        model_name="tiny",
        model_version="1",
        id="r9",
        outputs={
            "OUTPUT0": np.arange(6, dtype=np.float32).reshape(2, 3),
            "LABEL": np.array([b"cat", b"dog"], dtype=np.object_),
            "BIG": np.arange(2, dtype=">i4"),
        },
        timings=ServerTimings(queue_ns=11, compute_input_ns=22, compute_infer_ns=33, compute_output_ns=44),
    )


def test_response_outputs_are_raw_with_metadata_and_timings():
    message = response_to_proto(_response())
    assert (message.model_name, message.model_version, message.id) == ("tiny", "1", "r9")
    assert [(o.name, o.datatype, list(o.shape)) for o in message.outputs] == [
        ("OUTPUT0", "FP32", [2, 3]),
        ("LABEL", "BYTES", [2]),
        ("BIG", "INT32", [2]),
    ]
    assert not any(o.HasField("contents") for o in message.outputs)
    np.testing.assert_array_equal(
        np.frombuffer(message.raw_output_contents[0], "<f4").reshape(2, 3), _response().outputs["OUTPUT0"]
    )
    assert deserialize_bytes_tensor("L", message.raw_output_contents[1], (2,)).tolist() == [b"cat", b"dog"]
    assert np.frombuffer(message.raw_output_contents[2], "<i4").tolist() == [0, 1]
    assert [message.parameters[name].int64_param for name in TIMING_PARAMETERS] == [11, 22, 33, 44]


def test_stream_messages_flag_final_response():
    ok = stream_response(_response())
    assert ok.error_message == "" and ok.infer_response.parameters["triton_final_response"].bool_param
    failed = stream_error_response(pb.ModelInferRequest(model_name="tiny", id="x7"), "boom")
    assert (failed.error_message, failed.infer_response.id, failed.infer_response.model_name) == (
        "boom",
        "x7",
        "tiny",
    )


def test_non_contiguous_outputs_are_sent_row_major():
    transposed = np.arange(6, dtype=np.float32).reshape(2, 3).T
    response = InferResponse(
        model_name="m",
        model_version="1",
        id="",
        outputs={"T": transposed},
        timings=NO_TIMINGS,
    )
    message = response_to_proto(response)
    assert list(message.outputs[0].shape) == [3, 2]
    np.testing.assert_array_equal(
        np.frombuffer(message.raw_output_contents[0], "<f4").reshape(3, 2), transposed
    )
