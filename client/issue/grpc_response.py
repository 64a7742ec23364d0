"""KServe v2 responses to per-sample results: the server's timings and each sample's output bytes.

Server timings come from the response parameters `edgeperf_queue_ns` and
`edgeperf_compute_{input,infer,output}_ns` (other servers send none: they are then -1). A batched
response is split back into its samples along the batch dimension of every output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from edgeperf.client.issue.sut import QuerySample, QuerySampleResponse
from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos.kserve import COMPUTE_PARAMETERS, DATATYPES, QUEUE_PARAMETER, TYPED_CONTENTS

__all__ = ["PayloadEncoder", "decode_response", "split_outputs"]


PayloadEncoder = Callable[[bytes, int], bytes]
"""(outputs' bytes, qsl index) -> what the accuracy log keeps (a benchmark's `log_payload`)."""


def decode_response(
    response: pb.ModelInferResponse,
    samples: Sequence[QuerySample],
    sent_ns: int,
    collect_data: bool,
    encode: PayloadEncoder | None = None,
) -> list[QuerySampleResponse]:
    """One OK response per sample, with the server's timings and (if `collect_data`) its output bytes,
    passed through `encode` when given (a benchmark logs its reference SUT's payload, not raw outputs)."""
    params = response.parameters
    if params:
        queue_ns = params[QUEUE_PARAMETER].int64_param if QUEUE_PARAMETER in params else -1
        present = [params[k].int64_param for k in COMPUTE_PARAMETERS if k in params]
        compute_ns = sum(present) if present else -1
    else:
        queue_ns = compute_ns = -1
    n = len(samples)
    if n == 1:
        data = split_outputs(response, 1)[0] if collect_data else b""
        if collect_data and encode is not None:
            data = encode(data, samples[0].index)
        return [
            QuerySampleResponse(
                id=samples[0].id, data=data, queue_ns=queue_ns, compute_ns=compute_ns, sent_ns=sent_ns
            )
        ]
    parts = split_outputs(response, n) if collect_data else [b""] * n
    if collect_data and encode is not None:
        parts = [encode(d, s.index) for s, d in zip(samples, parts, strict=True)]
    return [
        QuerySampleResponse(id=s.id, data=d, queue_ns=queue_ns, compute_ns=compute_ns, sent_ns=sent_ns)
        for s, d in zip(samples, parts, strict=True)
    ]


def split_outputs(response: pb.ModelInferResponse, n: int) -> list[bytes]:
    """Each sample's bytes: every output's contents split evenly along the batch dimension."""
    parts: list[list[bytes]] = [[] for _ in range(n)]
    for k, output in enumerate(response.outputs):
        if k < len(response.raw_output_contents):
            blob = response.raw_output_contents[k]
        else:
            field = TYPED_CONTENTS.get(output.datatype, "") if output.datatype != "BYTES" else ""
            values = getattr(output.contents, field) if field else []
            blob = np.asarray(list(values), dtype=DATATYPES[output.datatype] if field else "uint8").tobytes()
        step = len(blob) // n if n and len(blob) % n == 0 else len(blob)
        view = memoryview(blob)
        for i in range(n):
            parts[i].append(bytes(view[i * step : (i + 1) * step]) if step != len(blob) or n == 1 else blob)
    return [b"".join(p) for p in parts]
