from __future__ import annotations

import numpy as np
import pytest

from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos import kserve


@pytest.mark.parametrize("datatype", list(kserve.DATATYPES))
def test_every_datatype_maps_back_from_its_numpy_dtype(datatype: str) -> None:
    assert kserve.datatype_of(kserve.DATATYPES[datatype]) == datatype


def test_big_endian_strings_and_unknown_dtypes() -> None:
    assert kserve.datatype_of(np.dtype(">f4")) == "FP32"
    assert kserve.datatype_of(np.dtype("U3")) == "BYTES"
    assert kserve.datatype_of(np.dtype(np.complex64)) is None


def test_typed_contents_name_fields_of_the_proto() -> None:
    contents = pb.InferTensorContents()
    for field in kserve.TYPED_CONTENTS.values():
        assert hasattr(contents, field)
    assert "FP16" not in kserve.TYPED_CONTENTS


def test_timing_parameters_are_queue_then_compute() -> None:
    assert (kserve.QUEUE_PARAMETER, *kserve.COMPUTE_PARAMETERS) == kserve.TIMING_PARAMETERS
    assert all(name.startswith("edgeperf_") and name.endswith("_ns") for name in kserve.TIMING_PARAMETERS)


def test_bytes_codec_round_trips_and_names_the_break() -> None:
    raw = kserve.encode_bytes_elements(["cat", b"", b"\x00dog"])
    assert raw == b"\x03\x00\x00\x00cat\x00\x00\x00\x00\x04\x00\x00\x00\x00dog"
    assert kserve.decode_bytes_elements(raw) == [b"cat", b"", b"\x00dog"]
    with pytest.raises(kserve.BytesCodecError, match="end inside an element length"):
        kserve.decode_bytes_elements(b"\x01\x00")
    with pytest.raises(kserve.BytesCodecError, match="element of 9 bytes runs past the end"):
        kserve.decode_bytes_elements(b"\x09\x00\x00\x00ab")


@pytest.mark.parametrize("request_id", ["", "7", "x" * 127, "y" * 128, "z" * 70_000])
def test_appended_fields_parse_as_protobuf(request_id: str) -> None:
    head = pb.ModelInferRequest(id="old", model_name="m").SerializeToString()
    parsed = pb.ModelInferRequest.FromString(
        head + kserve.raw_input_field(b"\x01\x02") + kserve.request_id_field(request_id)
    )
    assert parsed.id == request_id and parsed.model_name == "m"
    assert list(parsed.raw_input_contents) == [b"\x01\x02"]
