"""The QSL's serialization: request bytes equal what protobuf builds, bad samples rejected by name."""

from __future__ import annotations

import numpy as np
import pytest

from edgeperf.client.errors import QslError
from edgeperf.client.plan.qsl import (
    ModelSignature,
    RequestEncoder,
    SerializedQsl,
    SyntheticSource,
)
from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos.kserve import TensorSpec, request_id_field

SIG = ModelSignature(
    name="m",
    version="2",
    inputs=(
        TensorSpec(name="IMG", datatype="FP32", shape=(2, 3)),
        TensorSpec(name="LEN", datatype="INT64", shape=(-1,)),
    ),
    outputs=(TensorSpec(name="OUT", datatype="FP32", shape=(4,)),),
    max_batch_size=8,
)


def sample(i: int, length: int = 1) -> dict[str, np.ndarray]:
    return {
        "IMG": np.full((2, 3), i, dtype=np.float32),
        "LEN": np.arange(length, dtype=np.int64) + i,
    }


def test_batch_one_request_parses_like_a_protobuf_built_one() -> None:
    encoder = RequestEncoder(SIG, requested_outputs=("OUT",))
    encoded = encoder.encode_sample(sample(3), 3)
    parsed = pb.ModelInferRequest.FromString(encoded.request)
    expected = pb.ModelInferRequest(
        model_name="m",
        model_version="2",
        inputs=[
            pb.ModelInferRequest.InferInputTensor(name="IMG", datatype="FP32", shape=[1, 2, 3]),
            pb.ModelInferRequest.InferInputTensor(name="LEN", datatype="INT64", shape=[1, 1]),
        ],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="OUT")],
        raw_input_contents=[sample(3)["IMG"].tobytes(), sample(3)["LEN"].tobytes()],
    )
    assert parsed == expected


def test_batched_request_concatenates_along_the_batch_dimension() -> None:
    encoder = RequestEncoder(SIG)
    batch = [encoder.encode_sample(sample(i), i) for i in range(5)]
    parsed = pb.ModelInferRequest.FromString(encoder.batch_request(batch) + request_id_field("77"))
    assert parsed.id == "77"
    assert [list(t.shape) for t in parsed.inputs] == [[5, 2, 3], [5, 1]]
    imgs = np.frombuffer(parsed.raw_input_contents[0], dtype=np.float32).reshape(5, 2, 3)
    assert np.array_equal(imgs[:, 0, 0], np.arange(5, dtype=np.float32))
    lens = np.frombuffer(parsed.raw_input_contents[1], dtype=np.int64)
    assert lens.tolist() == [0, 1, 2, 3, 4]


def test_large_tensors_use_multibyte_length_varints() -> None:
    sig = ModelSignature(
        name="big",
        inputs=(TensorSpec(name="X", datatype="UINT8", shape=(300_000,)),),
        outputs=(),
        max_batch_size=0,
    )
    encoder = RequestEncoder(sig)
    data = np.arange(300_000, dtype=np.uint8)
    parsed = pb.ModelInferRequest.FromString(encoder.encode_sample({"X": data}, 0).request)
    assert parsed.raw_input_contents[0] == data.tobytes()
    assert list(parsed.inputs[0].shape) == [300_000]  # no batch dimension when max_batch_size is 0


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"IMG": np.zeros((2, 3), np.float32)}, "no tensor 'LEN'"),
        ({"IMG": np.zeros((2, 3), np.float64), "LEN": np.zeros(1, np.int64)}, "the model wants FP32"),
        ({"IMG": np.zeros((3, 2), np.float32), "LEN": np.zeros(1, np.int64)}, "has shape (3, 2)"),
    ],
)
def test_samples_that_do_not_fit_the_model_are_rejected(bad: dict[str, np.ndarray], message: str) -> None:
    with pytest.raises(QslError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RequestEncoder(SIG).encode_sample(bad, 9)


def test_synthetic_source_is_deterministic_and_shaped_from_the_signature() -> None:
    a, b = SyntheticSource(SIG, 4, seed=1), SyntheticSource(SIG, 4, seed=1)
    assert len(a) == 4
    first = a.sample(2)
    assert first["IMG"].dtype == np.float32 and first["IMG"].shape == (2, 3)
    assert first["LEN"].shape == (1,)  # the variable dimension becomes 1
    assert np.array_equal(first["IMG"], b.sample(2)["IMG"])
    assert not np.array_equal(first["IMG"], a.sample(3)["IMG"])
    with pytest.raises(QslError):
        a.sample(4)
    with pytest.raises(QslError):
        SyntheticSource(SIG, 0)


def test_serialized_qsl_loads_and_unloads() -> None:
    qsl = SerializedQsl(SyntheticSource(SIG, 10), RequestEncoder(SIG), performance_sample_count=6, name="q")
    assert (qsl.name, qsl.total_sample_count, qsl.performance_sample_count) == ("q", 10, 6)
    qsl.load_samples([1, 4])
    assert qsl.loaded_count == 2 and qsl.get(4).shapes == ((2, 3), (1,))
    qsl.unload_samples([4])
    with pytest.raises(QslError, match="not loaded"):
        qsl.get(4)
