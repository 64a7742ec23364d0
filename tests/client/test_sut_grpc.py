"""GrpcSut against a small in-process KServe v2 service on 127.0.0.1:0 (not edgeperf's server)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import grpc.aio
import pytest

from edgeperf.client.errors import ServerUnavailable
from edgeperf.client.issue.sut import QuerySample, QuerySampleResponse
from edgeperf.client.issue.sut_grpc import GrpcSut, GrpcSutConfig, SutState
from edgeperf.client.plan.qsl import RequestEncoder, SerializedQsl, SyntheticSource
from edgeperf.protos import grpc_service_pb2 as pb
from tests.client.kserve_fake import FakeKServe, add_timings, serve_fake


class Service(FakeKServe):
    """Echoes INPUT0 as OUTPUT0; model "fail" is rejected, "slow" takes 2 s, "missing" is not ready."""

    outputs = (("OUTPUT0", "FP32", [-1, 4]),)
    max_batch_size = 3

    def __init__(self) -> None:
        self.in_flight = 0
        self.max_in_flight = 0
        self.batches: list[int] = []
        self.unavailable_left = 0
        """Requests still to refuse with UNAVAILABLE, as a server that is down and then comes back."""

    def _answer(self, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        self.batches.append(int(request.inputs[0].shape[0]))
        response = pb.ModelInferResponse(
            model_name=request.model_name,
            id=request.id,
            outputs=[
                pb.ModelInferResponse.InferOutputTensor(
                    name="OUTPUT0", datatype="FP32", shape=list(request.inputs[0].shape)
                )
            ],
            raw_output_contents=[request.raw_input_contents[0]],
        )
        add_timings(response, queue_ns=11)
        return response

    async def infer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInferResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(2.0 if request.model_name == "slow" else 0.005)
            if self.unavailable_left > 0:
                self.unavailable_left -= 1
                await context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")
            if request.model_name == "fail":
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "queue is full")
            return self._answer(request)
        finally:
            self.in_flight -= 1

    async def stream(
        self, requests: AsyncIterator[pb.ModelInferRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ModelStreamInferResponse]:
        async for request in requests:
            if request.model_name == "slow":
                continue  # never answered
            if request.model_name == "fail":
                yield pb.ModelStreamInferResponse(
                    error_message="queue is full", infer_response=pb.ModelInferResponse(id=request.id)
                )
                continue
            yield pb.ModelStreamInferResponse(infer_response=self._answer(request))

    async def model_ready(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=request.name != "missing")


_TRANSPORT_OF: dict[str, str] = {}
"""The timed-path transport each test's service is used through (`open_sut` looks it up by address)."""


@pytest.fixture(params=["h2", "grpcio"])
async def service(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Service, str]]:
    svc = Service()
    async with serve_fake(svc) as address:
        _TRANSPORT_OF[address] = request.param
        yield svc, address


class Collector:
    def __init__(self) -> None:
        self.responses: dict[int, QuerySampleResponse] = {}
        self.done = asyncio.Event()
        self.expected = 0

    def __call__(self, responses: Sequence[QuerySampleResponse], completed_ns: int) -> None:
        assert completed_ns <= time.perf_counter_ns()
        for r in responses:
            assert r.id not in self.responses, "completed twice"
            self.responses[r.id] = r
        if len(self.responses) >= self.expected:
            self.done.set()


async def open_sut(address: str, model: str = "echo", **kw: Any) -> tuple[GrpcSut, SerializedQsl]:
    kw.setdefault("transport", _TRANSPORT_OF.get(address, "h2"))
    sut = GrpcSut(GrpcSutConfig(address=address, model=model, **kw))
    await sut.open()
    signature = await sut.model_signature()
    qsl = SerializedQsl(SyntheticSource(signature, 8), RequestEncoder(signature))
    qsl.load_samples(range(8))
    sut.use_qsl(qsl)
    return sut, qsl


async def issue(sut: GrpcSut, indices: list[int], timeout_s: float = 10) -> Collector:
    collector = Collector()
    collector.expected = len(indices)
    await sut.issue_query([QuerySample(100 + k, i) for k, i in enumerate(indices)], collector)
    await asyncio.wait_for(collector.done.wait(), timeout_s)
    return collector


@pytest.mark.parametrize("streaming", [False, True])
async def test_batches_are_split_back_per_sample_with_server_timings(
    service: tuple[Service, str], streaming: bool
) -> None:
    svc, address = service
    sut, qsl = await open_sut(address, batch_size=8, streaming=streaming)
    try:
        got = await issue(sut, [0, 1, 2, 3, 4, 5, 6])
    finally:
        await sut.close()
    assert svc.batches == [3, 3, 1]  # capped by the model's max_batch_size of 3
    for k, i in enumerate([0, 1, 2, 3, 4, 5, 6]):
        r = got.responses[100 + k]
        assert r.status == "OK" and r.queue_ns == 11 and r.compute_ns == 6
        assert r.data == qsl.get(i).raw[0]  # the echo of exactly this sample's input
        assert r.sent_ns > 0


@pytest.mark.parametrize("streaming", [False, True])
async def test_rejected_requests_complete_with_their_status(
    service: tuple[Service, str], streaming: bool
) -> None:
    _, address = service
    sut, _ = await open_sut(address, model="fail", streaming=streaming)
    try:
        got = await issue(sut, [1, 2])
    finally:
        await sut.close()
    statuses = {r.status for r in got.responses.values()}
    assert statuses == ({"UNKNOWN"} if streaming else {"RESOURCE_EXHAUSTED"})
    assert all("queue is full" in r.error for r in got.responses.values())


@pytest.mark.parametrize("streaming", [False, True])
async def test_deadline_fails_the_sample_without_hanging(
    service: tuple[Service, str], streaming: bool
) -> None:
    _, address = service
    sut, _ = await open_sut(address, model="slow", streaming=streaming, deadline_ms=200)
    t0 = time.perf_counter()
    try:
        got = await issue(sut, [3], timeout_s=5)
    finally:
        await sut.close()
    assert got.responses[100].status == "DEADLINE_EXCEEDED"
    assert time.perf_counter() - t0 < 1.9


@pytest.mark.parametrize("batch_size", [1, 3])
async def test_a_server_that_comes_back_after_many_unavailable_is_used_again(
    service: tuple[Service, str], batch_size: int
) -> None:
    # Regression (fault suite, server SIGKILL and restart): after 16 UNAVAILABLE in a row every later
    # query failed unsent, so a restarted server was never tried again.
    svc, address = service
    svc.unavailable_left = 40
    sut, _ = await open_sut(address, batch_size=batch_size)
    try:
        for _ in range(40):
            await issue(sut, [1])
        later = await issue(sut, [2])
        offline = await issue(sut, [3, 4, 5, 6, 7])
    finally:
        await sut.close()
    assert later.responses[100].status == "OK"
    assert {r.status for r in offline.responses.values()} == {"OK"}


async def test_window_bounds_requests_in_flight(service: tuple[Service, str]) -> None:
    svc, address = service
    sut, _ = await open_sut(address, max_in_flight=2, batch_size=1)
    try:
        await issue(sut, list(range(8)))
    finally:
        await sut.close()
    assert svc.max_in_flight == 2
    # NOTE: every sample still completed OK; the ones that found the cap full waited and are counted.
    assert sut.in_flight_cap == 2
    assert 1 <= sut.in_flight_overflow <= 6


async def test_several_channels_share_the_load(service: tuple[Service, str]) -> None:
    _, address = service
    sut, _ = await open_sut(address, channels=3)
    try:
        got = await issue(sut, list(range(6)))
    finally:
        await sut.close()
    assert len(got.responses) == 6 and all(r.status == "OK" for r in got.responses.values())


async def test_signature_readiness_and_lifecycle(service: tuple[Service, str]) -> None:
    _, address = service
    sut = GrpcSut(GrpcSutConfig(address=address, model="echo"))
    assert sut.state is SutState.UNOPENED
    with pytest.raises(RuntimeError):
        await sut.check_ready()
    async with sut:
        await sut.check_ready()
        signature = await sut.model_signature()
        assert signature.max_batch_size == 3
        assert [(t.name, t.shape) for t in signature.inputs] == [("INPUT0", (4,))]
    assert sut.state.value == SutState.CLOSED.value
    await sut.close()  # closing twice is fine
    async with GrpcSut(GrpcSutConfig(address=address, model="missing")) as missing:
        with pytest.raises(ServerUnavailable, match="not ready"):
            await missing.check_ready()


async def test_unreachable_server_is_reported_before_the_run() -> None:
    # A listening socket that is closed again: nothing answers on this port.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with GrpcSut(GrpcSutConfig(address=f"127.0.0.1:{port}", model="echo", deadline_ms=2_000)) as sut:
        with pytest.raises(ServerUnavailable) as info:
            await sut.check_ready()
    assert info.value.status in ("UNAVAILABLE", "DEADLINE_EXCEEDED")
