"""RequestValidator: the per-model fast path accepts what validate_request accepts and explains the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeperf.server.errors import InvalidInput
from edgeperf.server.model_config import parse_model_config
from edgeperf.server.types import InferRequest
from edgeperf.server.validation import RequestValidator, validate_request

CONFIG = parse_model_config(
    """
    max_batch_size: 8
    input [ { name: "a" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "b" data_type: TYPE_INT64 dims: [ -1 ] } ]
    output [ { name: "y" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "z" data_type: TYPE_FP32 dims: [ 1 ] } ]
    """,
    path=Path("/repo/m/config.pbtxt"),
    model_name="m",
)
A = np.zeros((2, 4), np.float32)
B = np.zeros((2, 3), np.int64)


def request(outputs: tuple[str, ...] = (), **inputs: Any) -> InferRequest:
    return InferRequest(model_name="m", inputs=inputs, requested_outputs=outputs)


@pytest.mark.parametrize(
    ("inputs", "outputs", "expected"),
    [
        ({"a": A, "b": B}, (), (2, ("y", "z"))),
        ({"b": B[:1], "a": A[:1]}, ("z",), (1, ("z",))),
        ({"a": A, "b": B}, ("z", "y"), (2, ("y", "z"))),
    ],
)
def test_valid_requests_get_the_same_answer(
    inputs: dict[str, Any], outputs: tuple[str, ...], expected: tuple[int, tuple[str, ...]]
) -> None:
    assert RequestValidator(CONFIG)(request(outputs, **inputs)) == expected
    assert validate_request(CONFIG, request(outputs, **inputs)) == expected


@pytest.mark.parametrize(
    ("inputs", "outputs", "message"),
    [
        ({"a": A}, (), "missing 'b'"),
        ({"a": A, "b": B, "c": B}, (), "unexpected inference input 'c'"),
        ({"a": A.astype(np.float64), "b": B}, (), "datatype FP64, expected FP32"),
        ({"a": np.zeros((2, 5), np.float32), "b": B}, (), r"shape \[2, 5\], expected \[-1, 4\]"),
        ({"a": A, "b": B[:1]}, (), "batch size 1, but other inputs have 2"),
        ({"a": np.zeros((9, 4), np.float32), "b": np.zeros((9, 3), np.int64)}, (), "max_batch_size 8"),
        ({"a": [[0.0] * 4], "b": B}, (), "not an array"),
        ({"a": A, "b": B}, ("w",), "unexpected inference output 'w'"),
    ],
)
def test_invalid_requests_raise_what_validate_request_says(
    inputs: dict[str, Any], outputs: tuple[str, ...], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        RequestValidator(CONFIG)(request(outputs, **inputs))


ONE_INPUT = parse_model_config(
    """
    max_batch_size: 8
    input [ { name: "a" data_type: TYPE_FP32 dims: [ -1 ] } ]
    output [ { name: "y" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "z" data_type: TYPE_FP32 dims: [ 1 ] } ]
    """,
    path=Path("/repo/one/config.pbtxt"),
    model_name="one",
)


def test_a_remembered_input_signature_still_checks_outputs_and_everything_else() -> None:
    validate = RequestValidator(ONE_INPUT)
    a = np.zeros((2, 4), np.float32)
    for _ in range(2):  # NOTE: the second round answers from what the first remembered
        assert validate(request((), a=a)) == (2, ("y", "z"))
        assert validate(request(("z",), a=a)) == (2, ("z",))
        with pytest.raises(InvalidInput, match="unexpected inference output 'w'"):
            validate(request(("w",), a=a))
        with pytest.raises(InvalidInput, match="datatype FP64, expected FP32"):
            validate(request((), a=a.astype(np.float64)))
        with pytest.raises(InvalidInput, match="unexpected inference input 'b'"):
            validate(request((), b=a))
        with pytest.raises(InvalidInput, match="max_batch_size 8"):
            validate(request((), a=np.zeros((9, 4), np.float32)))


def test_more_input_signatures_than_remembered_keep_their_own_batch_sizes() -> None:
    validate = RequestValidator(ONE_INPUT)
    for rounds in range(2):
        for batch in range(1, 9):
            for width in range(1, 12):
                a = np.zeros((batch, width), np.float32)
                assert validate(request((), a=a)) == (batch, ("y", "z")), (rounds, batch, width)
