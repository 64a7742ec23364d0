"""The server-wide budget for queued request data, through the real program: a flood on one stream keeps RSS bounded.

`edgeperf-server serve --max-queued-mb 16` runs as a subprocess with a slow model taking 4 MiB requests
(each waits up to 0.5 s in the queue for a fuller batch); one ModelStreamInfer stream offers 120 of them
(480 MiB) at once. Requests over the budget answer at once with the budget's error (in-band on the
stream, UNAVAILABLE on unary calls) and the server's peak RSS grows by far less than what was offered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos import grpc_service_pb2_grpc as pb_grpc
from tests.server.edge_process import server_process

pytestmark = pytest.mark.timeout(180)

_SAMPLE = 262_144
"""FP32 elements per sample: 1 MiB."""
_BATCH = 4
_REQUESTS = 120
_BUDGET_MB = 16


def _slow_repository(root: Path) -> Path:
    # NOTE: a request waits up to 0.5 s for a batch of 64 samples (16 requests), so the server holds what
    # it accepts for a while whatever the machine's load, and a flood always outruns it.
    nodes = [
        helper.make_node("Mul", ["INPUT0", "INPUT0"], ["squared"]),
        helper.make_node("ReduceSum", ["squared"], ["OUTPUT0"], keepdims=1, axes=[1]),
    ]
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("INPUT0", TensorProto.FLOAT, ["N", _SAMPLE])],
        [helper.make_tensor_value_info("OUTPUT0", TensorProto.FLOAT, ["N", 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    (root / "slow" / "1").mkdir(parents=True)
    onnx.save(model, root / "slow" / "1" / "model.onnx")
    (root / "slow" / "config.pbtxt").write_text(
        f'name: "slow"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 64\n'
        f'input [{{ name: "INPUT0" data_type: TYPE_FP32 dims: [{_SAMPLE}] }}]\n'
        'output [{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [1] }]\n'
        "dynamic_batching { preferred_batch_size: [64] max_queue_delay_microseconds: 500000 }\n"
        "instance_group [{ count: 1 kind: KIND_CPU }]\n"
    )
    return root


def _request(i: int, *, model: str = "slow") -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name=model, id=str(i))
    message.inputs.add(name="INPUT0", datatype="FP32", shape=(_BATCH, _SAMPLE))
    message.raw_input_contents.append(np.full((_BATCH, _SAMPLE), 1.0, "<f4").tobytes())
    return message


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


async def _flood() -> AsyncIterator[pb.ModelInferRequest]:
    payload = _request(0)
    for i in range(_REQUESTS):
        payload.id = str(i)
        yield payload
        if i % 16 == 0:
            await asyncio.sleep(0)


async def test_a_flood_is_refused_beyond_the_budget_and_rss_stays_bounded(tmp_path: Path) -> None:
    repository = _slow_repository(tmp_path / "repo")
    args = ("--max-queued-mb", str(_BUDGET_MB), "--no-warmup", "--max-message-mb", "32")
    with server_process(repository, *args) as server:
        pid = server.process.pid
        options = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
        async with grpc.aio.insecure_channel(server.address, options=options) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
            await stub.ModelInfer(_request(0))  # sessions and arenas at their working size
            baseline_kb = _status_kb(pid, "VmRSS")
            answers = [answer async for answer in stub.ModelStreamInfer(_flood())]
            peak_kb = _status_kb(pid, "VmHWM")
            # the budget is free again once the flood is answered
            assert (await stub.ModelInfer(_request(1))).id == "1"
    growth_mb = (peak_kb - baseline_kb) / 1024
    offered_mb = _REQUESTS * _BATCH * _SAMPLE * 4 / 2**20
    # NOTE: measured 166 MiB: the budget, messages being read or refused, a batch's copies, ORT's arena and
    # grpc buffers. Without the budget (--max-queued-mb 100000) the same flood grew it by 470 MiB.
    assert growth_mb < 300, f"peak RSS grew {growth_mb:.0f} MiB for {offered_mb:.0f} MiB offered"
    assert len(answers) == _REQUESTS
    refused = [a.error_message for a in answers if a.error_message]
    served = [a for a in answers if not a.error_message]
    assert served and refused, (len(served), len(refused))
    assert all("--max-queued-mb" in message for message in refused), refused[:3]


async def test_unary_calls_over_the_budget_are_unavailable(tmp_path: Path) -> None:
    repository = _slow_repository(tmp_path / "repo")
    with server_process(
        repository, "--max-queued-mb", "8", "--no-warmup", "--max-message-mb", "32"
    ) as server:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
            results = await asyncio.gather(
                *(stub.ModelInfer(_request(i)) for i in range(12)), return_exceptions=True
            )
            refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
            assert refused and len(refused) < 12
            assert {r.code() for r in refused} == {grpc.StatusCode.UNAVAILABLE}
            assert all("--max-queued-mb" in (r.details() or "") for r in refused)
            stats = (await stub.ModelStatistics(pb.ModelStatisticsRequest(name="slow"))).model_stats[0]
            assert stats.inference_stats.fail.count == len(refused)


def _identity_repository(root: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["INPUT0"], ["OUTPUT0"])],
        "echo",
        [helper.make_tensor_value_info("INPUT0", TensorProto.FLOAT, ["N", _SAMPLE])],
        [helper.make_tensor_value_info("OUTPUT0", TensorProto.FLOAT, ["N", _SAMPLE])],
    )
    (root / "echo" / "1").mkdir(parents=True)
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)]),
        root / "echo" / "1" / "model.onnx",
    )
    (root / "echo" / "config.pbtxt").write_text(
        f'name: "echo"\nplatform: "onnxruntime_onnx"\nmax_batch_size: {_BATCH}\n'
        f'input [{{ name: "INPUT0" data_type: TYPE_FP32 dims: [{_SAMPLE}] }}]\n'
        f'output [{{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [{_SAMPLE}] }}]\n'
        "instance_group [{ count: 1 kind: KIND_CPU }]\n"
    )
    return root


async def test_stream_answers_not_yet_read_by_the_client_count_in_the_budget(tmp_path: Path) -> None:
    # 4 MiB answers to a client that does not read: they wait in the server, so they must hold budget.
    repository = _identity_repository(tmp_path / "repo")
    args = ("--max-queued-mb", "30", "--no-warmup", "--max-message-mb", "32")
    options = [
        ("grpc.max_receive_message_length", 64 << 20),
        ("grpc.http2.bdp_probe", 0),  # NOTE: keeps the stream's flow-control window at 64 KiB
    ]
    with server_process(repository, *args) as server:
        async with (
            grpc.aio.insecure_channel(server.address, options=options) as reading_late,
            grpc.aio.insecure_channel(server.address, options=options) as other,
        ):
            stub = pb_grpc.GRPCInferenceServiceStub(reading_late)  # type: ignore[no-untyped-call]
            probe = pb_grpc.GRPCInferenceServiceStub(other)  # type: ignore[no-untyped-call]

            async def requests() -> AsyncIterator[pb.ModelInferRequest]:
                for i in range(20):
                    yield _request(i, model="echo")

            call = stub.ModelStreamInfer(requests())
            statistics = pb.ModelStatisticsRequest(name="echo")
            for _ in range(600):  # every request answered or refused by the core
                inference = (await probe.ModelStatistics(statistics)).model_stats[0].inference_stats
                if inference.success.count + inference.fail.count == 20:
                    break
                await asyncio.sleep(0.05)
            assert inference.success.count == 7, "30 MiB holds 7 answers of 4 MiB"
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await probe.ModelInfer(_request(99, model="echo"))
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "--max-queued-mb" in (info.value.details() or "")
            answers = [answer async for answer in call]
            assert len(answers) == 20 and sum(1 for a in answers if not a.error_message) == 7
            # written and read: the budget is free again
            assert (await probe.ModelInfer(_request(100, model="echo"))).id == "100"
