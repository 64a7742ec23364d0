"""Datatype table and the request/response values."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgeperf.server.errors import InvalidInput
from edgeperf.server.types import DATATYPES, InferRequest, datatype_of, numpy_dtype


@pytest.mark.parametrize("datatype", [d for d in DATATYPES if d != "BYTES"])
def test_numeric_datatypes_round_trip(datatype: str) -> None:
    assert datatype_of(numpy_dtype(datatype)) == datatype


def test_known_mappings() -> None:
    assert numpy_dtype("FP32") == np.float32
    assert numpy_dtype("BOOL") == np.bool_
    assert datatype_of(np.dtype(object)) == "BYTES"
    assert datatype_of(np.dtype("S5")) == "BYTES"
    assert datatype_of(np.dtype(">f4")) == "FP32"


def test_unknown_datatypes_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="unsupported datatype 'FP8'"):
        numpy_dtype("FP8")
    with pytest.raises(InvalidInput, match="no KServe datatype"):
        datatype_of(np.dtype(np.complex64))


def test_requests_are_frozen_and_keyword_only() -> None:
    request = InferRequest(model_name="m", inputs={"x": np.zeros(1)})
    assert request.requested_outputs == ()
    assert request.timeout_us is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.model_name = "n"  # type: ignore[misc]
