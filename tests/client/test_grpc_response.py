"""decode_response / split_outputs: server timings and per-sample output bytes from a KServe v2 response."""

from __future__ import annotations

import numpy as np

from edgeperf.client.issue.grpc_response import decode_response, split_outputs
from edgeperf.client.issue.sut import QuerySample
from edgeperf.protos import grpc_service_pb2 as pb
from tests.client.kserve_fake import add_timings


def test_typed_output_contents_are_decoded_for_other_servers() -> None:
    response = pb.ModelInferResponse(
        outputs=[
            pb.ModelInferResponse.InferOutputTensor(
                name="O",
                datatype="FP32",
                shape=[2, 2],
                contents=pb.InferTensorContents(fp32_contents=[1, 2, 3, 4]),
            )
        ]
    )
    parts = split_outputs(response, 2)
    assert [np.frombuffer(p, np.float32).tolist() for p in parts] == [[1.0, 2.0], [3.0, 4.0]]


def _response(batch: int, with_timings: bool) -> pb.ModelInferResponse:
    response = pb.ModelInferResponse(
        outputs=[
            pb.ModelInferResponse.InferOutputTensor(name="A", datatype="INT64", shape=[batch]),
            pb.ModelInferResponse.InferOutputTensor(name="B", datatype="FP32", shape=[batch, 2]),
        ],
        raw_output_contents=[
            np.arange(batch, dtype="<i8").tobytes(),
            np.arange(2 * batch, dtype="<f4").tobytes(),
        ],
    )
    if with_timings:
        add_timings(response, queue_ns=7)
    return response


def test_a_batch_is_split_per_sample_with_the_server_timings() -> None:
    samples = [QuerySample(10, 0), QuerySample(11, 5)]
    out = decode_response(_response(2, True), samples, 123, collect_data=True)
    assert [(r.id, r.queue_ns, r.compute_ns, r.sent_ns) for r in out] == [(10, 7, 6, 123), (11, 7, 6, 123)]
    for i, r in enumerate(out):
        expected = np.array([i], "<i8").tobytes() + np.array([2 * i, 2 * i + 1], "<f4").tobytes()
        assert r.data == expected


def test_one_sample_without_timings_or_data() -> None:
    [r] = decode_response(_response(1, False), [QuerySample(3, 1)], 5, collect_data=False)
    assert (r.id, r.data, r.queue_ns, r.compute_ns, r.status) == (3, b"", -1, -1, "OK")
    [r] = decode_response(_response(1, False), [QuerySample(3, 1)], 5, collect_data=True)
    assert len(r.data) == 8 + 8
