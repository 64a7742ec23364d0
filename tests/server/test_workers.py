"""`serve --workers N`: one port, summed statistics and metrics, drain of every worker on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos import grpc_service_pb2_grpc as pb_grpc
from edgeperf.server.peers import merge_statistics
from edgeperf.server.settings import ServerConfig, SettingsError, intra_op_share
from edgeperf.server.workers import sum_expositions
from tests.server.edge_process import build_repository, server_process, tiny_request

pytestmark = pytest.mark.timeout(180)

CONNECTIONS = 16


def _stats(name: str, count: int, ns: int, batches: dict[int, int], last: int) -> pb.ModelStatistics:
    stats = pb.ModelStatistics(name=name, version="1", last_inference=last, inference_count=count)
    stats.execution_count = sum(batches.values())
    for field in ("success", "queue", "compute_input", "compute_infer", "compute_output"):
        getattr(stats.inference_stats, field).count = count
        getattr(stats.inference_stats, field).ns = ns
    for size, executions in batches.items():
        batch = stats.batch_stats.add(batch_size=size)
        batch.compute_infer.count = executions
        batch.compute_infer.ns = executions * 10
    return stats


def test_statistics_of_workers_add_up_model_by_model() -> None:
    a = pb.ModelStatisticsResponse(model_stats=[_stats("m", 3, 300, {1: 1, 2: 1}, last=50)])
    b = pb.ModelStatisticsResponse(
        model_stats=[_stats("m", 5, 700, {4: 1, 1: 1}, last=70), _stats("n", 1, 9, {1: 1}, last=1)]
    )
    merged = merge_statistics([a, b])
    m, n = merged.model_stats
    assert (m.name, m.inference_count, m.execution_count, m.last_inference) == ("m", 8, 4, 70)
    assert (m.inference_stats.success.count, m.inference_stats.success.ns) == (8, 1000)
    assert (m.inference_stats.queue.count, m.inference_stats.compute_output.ns) == (8, 1000)
    assert [(s.batch_size, s.compute_infer.count, s.compute_infer.ns) for s in m.batch_stats] == [
        (1, 2, 20),
        (2, 1, 10),
        (4, 1, 10),
    ]
    assert n == b.model_stats[1]


def test_metrics_of_workers_add_up_sample_by_sample() -> None:
    one = (
        "# HELP nv_inference_count Number of inferences\n# TYPE nv_inference_count counter\n"
        'nv_inference_count{model="m",version="1"} 3\n'
        "# HELP edgeperf_batch_size Samples\n# TYPE edgeperf_batch_size histogram\n"
        'edgeperf_batch_size_bucket{le="1.0",model="m",version="1"} 2.0\n'
        'edgeperf_batch_size_created{model="m",version="1"} 1700000005.5\n'
        '# TYPE nv_gpu_utilization gauge\nnv_gpu_utilization{gpu_uuid="GPU-1"} 0.5\n'
    )
    two = (
        "# HELP nv_inference_count Number of inferences\n# TYPE nv_inference_count counter\n"
        'nv_inference_count{model="m",version="1"} 4\n'
        'nv_inference_count{model="n",version="1"} 1\n'
        "# HELP edgeperf_batch_size Samples\n# TYPE edgeperf_batch_size histogram\n"
        'edgeperf_batch_size_bucket{le="1.0",model="m",version="1"} 0.5\n'
        'edgeperf_batch_size_created{model="m",version="1"} 1700000001.25\n'
        '# TYPE nv_gpu_utilization gauge\nnv_gpu_utilization{gpu_uuid="GPU-1"} 0.5\n'
    )
    assert sum_expositions([one, two]).splitlines() == [
        "# HELP nv_inference_count Number of inferences",
        "# TYPE nv_inference_count counter",
        'nv_inference_count{model="m",version="1"} 7',
        'nv_inference_count{model="n",version="1"} 1',
        "# HELP edgeperf_batch_size Samples",
        "# TYPE edgeperf_batch_size histogram",
        'edgeperf_batch_size_bucket{le="1.0",model="m",version="1"} 2.5',
        'edgeperf_batch_size_created{model="m",version="1"} 1700000001.25',
        "# TYPE nv_gpu_utilization gauge",
        'nv_gpu_utilization{gpu_uuid="GPU-1"} 0.5',
    ]


@pytest.mark.parametrize(("configured", "workers", "expected"), [(8, 2, 4), (3, 2, 1), (1, 4, 1), (6, 1, 6)])
def test_intra_op_threads_are_split_between_workers(configured: int, workers: int, expected: int) -> None:
    assert intra_op_share(configured, workers) == expected


def test_workers_must_be_at_least_one(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"workers \(--workers / EDGEPERF_WORKERS\) must be 1 \.\. 1024"):
        ServerConfig(model_repository=tmp_path, workers=0)
    env = {"EDGEPERF_WORKERS": "3", "EDGEPERF_MODEL_REPOSITORY": str(tmp_path)}
    assert ServerConfig.from_env(environ=env).workers == 3


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        return str(reply.read().decode())


def _success_count(exposition: str) -> float:
    prefix = 'nv_inference_request_success{model="tiny",version="1"} '
    return sum(float(line[len(prefix) :]) for line in exposition.splitlines() if line.startswith(prefix))


async def test_two_workers_share_the_port_sum_statistics_and_metrics_and_drain(tmp_path: Path) -> None:
    repository = build_repository(tmp_path, slow_delay_us=1_500_000)
    with server_process(repository, "--workers", "2", "--grace-s", "20") as server:
        assert server.ready["workers"] == 2
        # NOTE: the C protobuf (upb) parses and builds every message; the ready line says which runs.
        assert all(
            '"protobuf_backend": "upb"' in line for line in server.stderr_lines if '"worker_ready"' in line
        )
        worker_metrics = [
            int(json.loads(line)["metrics_port"]) for line in server.stderr_lines if '"worker_ready"' in line
        ]
        assert len(worker_metrics) == 2
        # NOTE: a unique channel argument makes each channel its own connection; the kernel spreads
        # connections, not requests, over the workers.
        channels = [
            grpc.aio.insecure_channel(server.address, options=[("edgeperf.test.connection", i)])
            for i in range(CONNECTIONS)
        ]
        try:
            stubs = [pb_grpc.GRPCInferenceServiceStub(c) for c in channels]  # type: ignore[no-untyped-call]
            replies = await asyncio.gather(
                *(stub.ModelInfer(tiny_request()) for stub in stubs for _ in range(2))
            )
            assert all(r.outputs[0].name == "OUTPUT0" for r in replies)
            served = [_success_count(_scrape(port)) for port in worker_metrics]
            assert sum(served) == 2 * CONNECTIONS
            assert min(served) > 0, f"one worker took every connection: {served}"
            for stub in stubs[:4]:  # any worker answers with the sum over both
                answer = await stub.ModelStatistics(pb.ModelStatisticsRequest(name="tiny"))
                (stats,) = answer.model_stats
                assert stats.inference_stats.success.count == 2 * CONNECTIONS
                assert stats.inference_stats.compute_infer.count == 2 * CONNECTIONS
                assert stats.inference_count == sum(
                    s.batch_size * s.compute_infer.count for s in stats.batch_stats
                )
            assert server.metrics_port is not None
            assert _success_count(_scrape(server.metrics_port)) == 2 * CONNECTIONS

            health = health_pb2_grpc.HealthStub(channels[0])
            assert (await health.Check(health_pb2.HealthCheckRequest())).status == (
                health_pb2.HealthCheckResponse.SERVING
            )
            in_flight = [asyncio.ensure_future(stub.ModelInfer(_request_slow())) for stub in stubs[:4]]
            await asyncio.sleep(0.3)
            server.process.send_signal(signal.SIGTERM)
            answered = await asyncio.wait_for(asyncio.gather(*in_flight), 30)
            assert all(r.model_name == "tiny_slow" for r in answered)
        finally:
            for channel in channels:
                await channel.close()
        assert await asyncio.to_thread(server.process.wait, 60) == 0
    log = "".join(server.stderr_lines)
    assert log.count('"event": "stopped"') == 2, log


def _request_slow() -> pb.ModelInferRequest:
    message = tiny_request()
    message.model_name = "tiny_slow"
    return message


def _serve_two_workers(repository: Path, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """`serve --workers 2` on `repository` to its end (these repositories keep it from starting)."""
    return subprocess.run(
        [sys.executable, "-m", "edgeperf.server.cli", "serve", "--model-repository", str(repository),
         "--listen", "127.0.0.1:0", "--no-metrics", "--workers", "2"],
        capture_output=True, text=True, timeout=timeout_s,
    )  # fmt: skip


def test_a_bad_model_config_is_one_error_before_any_worker_starts(tmp_path: Path) -> None:
    repository = build_repository(tmp_path, slow=False)
    (repository / "tiny" / "config.pbtxt").write_text("max_batch_size: -1\n")
    done = _serve_two_workers(repository, timeout_s=60)
    assert done.returncode == 2
    assert "edgeperf-server: error:" in done.stderr and "max_batch_size" in done.stderr
    assert "worker_ready" not in done.stderr


def test_a_worker_that_fails_to_load_stops_the_server_with_its_reason(tmp_path: Path) -> None:
    repository = build_repository(tmp_path, slow=False)
    (repository / "tiny" / "1" / "model.onnx").write_bytes(b"not an onnx model")
    done = _serve_two_workers(repository, timeout_s=120)
    assert done.returncode == 2
    assert '"event": "worker_failed"' in done.stderr
