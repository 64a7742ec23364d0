"""The gRPC edge in-process: every RPC, every bad input, streaming, statistics, health, auth, metrics.

A real EdgeperfServer on 127.0.0.1:0 with the tiny model, driven through our own stubs over loopback.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import numpy as np
import onnxruntime
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from edgeperf.protos import edgeperf_service_pb2 as epb
from edgeperf.protos import edgeperf_service_pb2_grpc as epb_grpc
from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos import grpc_service_pb2_grpc as pb_grpc
from edgeperf.server.app import EdgeperfServer, ServerState
from edgeperf.server.grpc_service import STREAM_WINDOW
from edgeperf.server.settings import ServerConfig
from tests.server.edge_process import SLOW_DELAY_US, build_repository

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_repository(tmp_path_factory.mktemp("repo"))


def _config(repository: Path, **overrides: object) -> ServerConfig:
    values: dict[str, object] = {
        "model_repository": repository,
        "listen": "127.0.0.1:0",
        "metrics_listen": "127.0.0.1:0",
        "grace_s": 5.0,
    }
    values.update(overrides)
    return ServerConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
async def server(repository: Path) -> AsyncIterator[EdgeperfServer]:
    async with EdgeperfServer(_config(repository)) as running:
        yield running


@pytest.fixture
async def channel(server: EdgeperfServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.address) as opened:
        yield opened


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> pb_grpc.GRPCInferenceServiceStub:
    return pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]


def infer_request(
    data: np.ndarray, *, model: str = "tiny", request_id: str = "", **kwargs: object
) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name=model, id=request_id, **kwargs)  # type: ignore[arg-type]
    message.inputs.add(name="INPUT0", datatype="FP32", shape=data.shape)
    message.raw_input_contents.append(data.astype("<f4").tobytes())
    return message


def output(response: pb.ModelInferResponse) -> np.ndarray:
    return np.frombuffer(response.raw_output_contents[0], "<f4").reshape(tuple(response.outputs[0].shape))


def expected(repository: Path, data: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(repository / "tiny" / "1" / "model.onnx"))
    (result,) = session.run(["OUTPUT0"], {"INPUT0": data})
    return np.asarray(result)


GOOD = np.arange(16, dtype=np.float32).reshape(1, 16)


async def test_health_metadata_config_index(stub, server):
    assert (await stub.ServerLive(pb.ServerLiveRequest())).live
    assert (await stub.ServerReady(pb.ServerReadyRequest())).ready
    assert (await stub.ModelReady(pb.ModelReadyRequest(name="tiny"))).ready
    assert not (await stub.ModelReady(pb.ModelReadyRequest(name="nope"))).ready
    metadata = await stub.ServerMetadata(pb.ServerMetadataRequest())
    assert metadata.name == "edgeperf" and "statistics" in metadata.extensions
    model = await stub.ModelMetadata(pb.ModelMetadataRequest(name="tiny"))
    assert (model.name, list(model.versions), model.platform) == ("tiny", ["1"], "onnxruntime_onnx")
    assert [(t.name, t.datatype, list(t.shape)) for t in model.inputs] == [("INPUT0", "FP32", [-1, 16])]
    assert [(t.name, t.datatype, list(t.shape)) for t in model.outputs] == [("OUTPUT0", "FP32", [-1, 16])]
    config = (await stub.ModelConfig(pb.ModelConfigRequest(name="tiny_slow"))).config
    assert (config.name, config.max_batch_size, config.platform) == ("tiny_slow", 64, "onnxruntime_onnx")
    assert config.WhichOneof("scheduling_choice") == "dynamic_batching"
    assert list(config.dynamic_batching.preferred_batch_size) == [64]
    assert [i.name for i in config.input] == ["INPUT0"]
    index = await stub.RepositoryIndex(pb.RepositoryIndexRequest(ready=True))
    assert sorted((m.name, m.version, m.state) for m in index.models) == [
        ("tiny", "1", "READY"),
        ("tiny_slow", "1", "READY"),
    ]


async def test_inference_raw_and_typed_equal_onnxruntime(stub, repository):
    data = np.random.default_rng(3).standard_normal((5, 16)).astype(np.float32)
    response = await stub.ModelInfer(infer_request(data, request_id="abc"))
    np.testing.assert_array_equal(output(response), expected(repository, data))
    assert (response.model_name, response.model_version, response.id) == ("tiny", "1", "abc")
    assert (response.outputs[0].name, response.outputs[0].datatype) == ("OUTPUT0", "FP32")
    for name in (
        "edgeperf_queue_ns",
        "edgeperf_compute_input_ns",
        "edgeperf_compute_infer_ns",
        "edgeperf_compute_output_ns",
    ):
        assert response.parameters[name].WhichOneof("parameter_choice") == "int64_param"
    assert response.parameters["edgeperf_compute_infer_ns"].int64_param > 0

    typed = pb.ModelInferRequest(model_name="tiny")
    typed.inputs.add(name="INPUT0", datatype="FP32", shape=data.shape).contents.fp32_contents.extend(
        data.ravel().tolist()
    )
    typed.outputs.add(name="OUTPUT0")
    np.testing.assert_array_equal(output(await stub.ModelInfer(typed)), expected(repository, data))


def _raw_and_typed() -> pb.ModelInferRequest:
    message = infer_request(GOOD)
    message.inputs[0].contents.fp32_contents.extend([0.0] * 16)
    return message


def _two_raw() -> pb.ModelInferRequest:
    message = infer_request(GOOD)
    message.raw_input_contents.append(b"\x00" * 64)
    return message


def _short_raw() -> pb.ModelInferRequest:
    message = infer_request(GOOD)
    message.raw_input_contents[0] = message.raw_input_contents[0][:-4]
    return message


def _renamed() -> pb.ModelInferRequest:
    message = infer_request(GOOD)
    message.inputs[0].name = "WRONG"
    return message


def _fp64() -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name="tiny")
    message.inputs.add(name="INPUT0", datatype="FP64", shape=[1, 16])
    message.raw_input_contents.append(GOOD.astype("<f8").tobytes())
    return message


def _unknown_output() -> pb.ModelInferRequest:
    message = infer_request(GOOD)
    message.outputs.add(name="NOPE")
    return message


def _sequence() -> pb.ModelInferRequest:
    message = infer_request(GOOD)
    message.parameters["sequence_id"].int64_param = 5
    return message


BAD_REQUESTS: dict[str, tuple[Callable[[], pb.ModelInferRequest], grpc.StatusCode, str]] = {
    "unknown model": (lambda: infer_request(GOOD, model="nope"), grpc.StatusCode.NOT_FOUND, "nope"),
    "unknown version": (lambda: infer_request(GOOD, model_version="7"), grpc.StatusCode.NOT_FOUND, "7"),
    "raw and typed": (_raw_and_typed, grpc.StatusCode.INVALID_ARGUMENT, "contents must not be set"),
    "raw count": (_two_raw, grpc.StatusCode.INVALID_ARGUMENT, "raw_input_contents"),
    "raw length": (_short_raw, grpc.StatusCode.INVALID_ARGUMENT, "60 bytes"),
    "input name": (_renamed, grpc.StatusCode.INVALID_ARGUMENT, "WRONG"),
    "input count": (
        lambda: pb.ModelInferRequest(model_name="tiny"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INPUT0",
    ),
    "dtype": (_fp64, grpc.StatusCode.INVALID_ARGUMENT, "FP64"),
    "shape": (lambda: infer_request(np.ones((1, 15), np.float32)), grpc.StatusCode.INVALID_ARGUMENT, "15"),
    "output name": (_unknown_output, grpc.StatusCode.INVALID_ARGUMENT, "NOPE"),
    "sequence": (_sequence, grpc.StatusCode.UNIMPLEMENTED, "sequence"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
async def test_bad_input_gets_a_status_and_the_next_request_works(stub, case):
    make, code, fragment = BAD_REQUESTS[case]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ModelInfer(make())
    assert info.value.code() == code
    assert fragment in (info.value.details() or "")
    assert output(await stub.ModelInfer(infer_request(GOOD))).shape == (1, 16)


async def test_queue_timeout_and_overload_are_unavailable(stub):
    timed = infer_request(GOOD, model="tiny_slow")
    timed.parameters["timeout"].int64_param = 20_000
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ModelInfer(timed)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "Request timeout expired" in (info.value.details() or "")

    results = await asyncio.gather(
        *(stub.ModelInfer(infer_request(GOOD, model="tiny_slow")) for _ in range(8)), return_exceptions=True
    )
    rejected = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert rejected and all(r.code() == grpc.StatusCode.UNAVAILABLE for r in rejected)
    assert all("Exceeds maximum queue size" in (r.details() or "") for r in rejected)
    assert len(rejected) < len(results)
    assert output(await stub.ModelInfer(infer_request(GOOD))).shape == (1, 16)


async def test_message_over_the_limit_is_resource_exhausted(repository):
    async with (
        EdgeperfServer(_config(repository, max_message_bytes=64 * 1024)) as small,
        grpc.aio.insecure_channel(small.address) as channel,
    ):
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ModelInfer(infer_request(np.ones((64, 16), np.float32).repeat(20, axis=0)))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert output(await stub.ModelInfer(infer_request(GOOD))).shape == (1, 16)


async def _requests(*messages: pb.ModelInferRequest) -> AsyncIterator[pb.ModelInferRequest]:
    for message in messages:
        yield message
        await asyncio.sleep(0.01)


async def test_stream_interleaves_echoes_ids_and_keeps_going_after_errors(stub, repository):
    slow = infer_request(GOOD, model="tiny_slow", request_id="slow")
    fast = [infer_request(GOOD * i, request_id=f"fast{i}") for i in range(4)]
    bad = infer_request(np.ones((1, 3), np.float32), request_id="bad")
    answers = [
        a
        async for a in stub.ModelStreamInfer(
            _requests(slow, *fast, bad, infer_request(GOOD, request_id="last"))
        )
    ]
    ids = [a.infer_response.id for a in answers]
    assert sorted(ids) == sorted(["slow", "fast0", "fast1", "fast2", "fast3", "bad", "last"])
    assert ids[-1] == "slow", "a slow request must not hold back the answers behind it"
    errors = {a.infer_response.id: a.error_message for a in answers if a.error_message}
    assert list(errors) == ["bad"] and "INPUT0" in errors["bad"]
    for answer in answers:
        assert answer.infer_response.parameters["triton_final_response"].bool_param
        if not answer.error_message and answer.infer_response.id.startswith("fast"):
            i = int(answer.infer_response.id[4:])
            np.testing.assert_array_equal(output(answer.infer_response), expected(repository, GOOD * i))


async def test_stream_with_triton_grpc_error_ends_with_a_status(stub):
    call = stub.ModelStreamInfer(
        _requests(infer_request(GOOD, request_id="ok"), infer_request(GOOD, model="nope", request_id="bad")),
        metadata=(("triton_grpc_error", "true"),),
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in call:
            pass
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_statistics_account_for_every_request(stub):
    before = (await stub.ModelStatistics(pb.ModelStatisticsRequest(name="tiny"))).model_stats[0]
    await asyncio.gather(*(stub.ModelInfer(infer_request(GOOD)) for _ in range(10)))
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.ModelInfer(infer_request(np.ones((1, 15), np.float32)))
    stats = (await stub.ModelStatistics(pb.ModelStatisticsRequest(name="tiny", version="1"))).model_stats
    assert [(s.name, s.version) for s in stats] == [("tiny", "1")]
    after = stats[0].inference_stats
    assert after.success.count - before.inference_stats.success.count == 10
    assert (
        after.queue.count
        == after.compute_input.count
        == after.compute_infer.count
        == after.compute_output.count
    )
    assert after.success.count == after.queue.count
    assert stats[0].inference_count - before.inference_count == 10
    assert sum(b.batch_size * b.compute_infer.count for b in stats[0].batch_stats) == stats[0].inference_count
    every = (await stub.ModelStatistics(pb.ModelStatisticsRequest())).model_stats
    assert sorted(s.name for s in every) == ["tiny", "tiny_slow"]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ModelStatistics(pb.ModelStatisticsRequest(name="nope"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_unserved_rpcs_are_unimplemented(stub):
    for call, request in (
        (stub.SystemSharedMemoryStatus, pb.SystemSharedMemoryStatusRequest()),
        (stub.CudaSharedMemoryRegister, pb.CudaSharedMemoryRegisterRequest()),
        (stub.TraceSetting, pb.TraceSettingRequest()),
        (stub.LogSettings, pb.LogSettingsRequest()),
        (stub.RepositoryModelLoad, pb.RepositoryModelLoadRequest(model_name="tiny")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(request)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_health_reflection_and_system_description(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "inference.GRPCInferenceService", "edgeperf.v1.EdgeperfService"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
    watch.cancel()

    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    services = {s.name async for reply in replies for s in reply.list_services_response.service}
    assert {
        "inference.GRPCInferenceService",
        "edgeperf.v1.EdgeperfService",
        "grpc.health.v1.Health",
    } <= services

    system = await epb_grpc.EdgeperfServiceStub(channel).SystemDescription(  # type: ignore[no-untyped-call]
        epb.SystemDescriptionRequest()
    )
    assert system.cpu_cores >= 1 and system.memory_bytes > 0 and system.onnxruntime_version
    assert "CPUExecutionProvider" in system.onnxruntime_providers and system.edgeperf_version


async def test_token_auth(repository):
    async with (
        EdgeperfServer(_config(repository, auth_token="s3cret")) as secured,
        grpc.aio.insecure_channel(secured.address) as channel,
    ):
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        for metadata in ((), (("authorization", "Bearer wrong"),)):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.ModelInfer(infer_request(GOOD), metadata=metadata)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in stub.ModelStreamInfer(_requests(infer_request(GOOD))):
                pass
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        response = await stub.ModelInfer(infer_request(GOOD), metadata=(("authorization", "Bearer s3cret"),))
        assert output(response).shape == (1, 16)
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING


async def test_metrics_endpoint_counts_requests(stub, server):
    await asyncio.gather(*(stub.ModelInfer(infer_request(GOOD)) for _ in range(3)))
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.ModelInfer(
            infer_request(
                GOOD, model="tiny_slow", parameters={"timeout": pb.InferParameter(int64_param=1000)}
            )
        )
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read().decode())
    assert 'nv_inference_request_success{model="tiny",version="1"} 3' in body
    assert 'nv_inference_request_failure{model="tiny_slow",version="1",reason="REJECTED"} 1' in body
    assert 'edgeperf_request_duration_seconds_count{model="tiny",version="1"} 3.0' in body
    assert 'nv_inference_pending_request_count{model="tiny",version="1"} 0' in body


async def test_stream_takes_more_requests_than_its_window(stub):
    count = STREAM_WINDOW + 76
    messages = (infer_request(GOOD, request_id=str(i)) for i in range(count))
    ids = [answer.infer_response.id async for answer in stub.ModelStreamInfer(messages)]
    assert sorted(ids, key=int) == [str(i) for i in range(count)]


async def test_concurrent_requests_are_batched_and_the_delay_bounds_a_lone_wait(stub):
    answers = await asyncio.gather(
        *(stub.ModelInfer(infer_request(GOOD * i, model="tiny_slow")) for i in range(4))
    )
    for i, answer in enumerate(answers):
        np.testing.assert_array_equal(output(answer), GOOD * i * 2 + 1)
    stats = (await stub.ModelStatistics(pb.ModelStatisticsRequest(name="tiny_slow"))).model_stats[0]
    # Four requests sent together wait in one queue window and run as one execution (a very slow machine
    # might split them; they are still batched).
    assert max(b.batch_size for b in stats.batch_stats) >= 2
    assert sum(b.batch_size * b.compute_infer.count for b in stats.batch_stats) == stats.inference_count == 4
    assert stats.execution_count < 4

    lone = await stub.ModelInfer(infer_request(GOOD, model="tiny_slow"))
    queue_ns = lone.parameters["edgeperf_queue_ns"].int64_param
    assert SLOW_DELAY_US * 1000 <= queue_ns < SLOW_DELAY_US * 1000 + 250_000_000


async def test_drain_delay_keeps_serving_while_health_says_not_serving(repository):
    server = EdgeperfServer(_config(repository, drain_delay_s=1.0))
    await server.start()
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        health = health_pb2_grpc.HealthStub(channel)
        shutdown = asyncio.create_task(server.shutdown())
        await asyncio.sleep(0.2)
        assert server.state is ServerState.DRAINING
        status = (
            await health.Check(health_pb2.HealthCheckRequest(service="inference.GRPCInferenceService"))
        ).status
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert output(await stub.ModelInfer(infer_request(GOOD))).shape == (1, 16)
        await shutdown
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ModelInfer(infer_request(GOOD), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert server.state.value == ServerState.CLOSED.value
    await server.shutdown()
