"""GPU metrics (Triton's names, gpu_uuid label, units) and the GPU in SystemDescription, through a fake NVML."""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from pathlib import Path

import grpc
import pytest

from edgeperf.protos import edgeperf_service_pb2 as epb
from edgeperf.protos import edgeperf_service_pb2_grpc as epb_grpc
from edgeperf.server.app import EdgeperfServer
from edgeperf.server.gpu.metrics import GpuMetrics, gpu_metrics_or_none
from edgeperf.server.gpu.nvml import Nvml, describe_gpus
from edgeperf.server.metrics import ServerMetrics
from edgeperf.server.settings import ServerConfig
from edgeperf.server.system import describe_system
from tests.server.core_support import write_tiny
from tests.server.gpu.fake_nvml import FakeGpu, FakePynvml

UUID0 = "GPU-00000000-1111-2222-3333-444444444444"


def two_gpus() -> FakePynvml:
    return FakePynvml([FakeGpu(), FakeGpu(name="NVIDIA A2", uuid="GPU-b", unsupported={"power", "energy"})])


def test_exposition_has_triton_names_labels_and_units() -> None:
    fake = two_gpus()
    metrics = GpuMetrics(Nvml.open(module=fake))
    fake.gpus[0].energy_mj += 2_500  # 2.5 J since the server started
    text = metrics.render()
    assert text.splitlines() == [
        "# HELP nv_gpu_utilization GPU utilization rate [0.0 - 1.0)",
        "# TYPE nv_gpu_utilization gauge",
        f'nv_gpu_utilization{{gpu_uuid="{UUID0}"}} 0.370000',
        'nv_gpu_utilization{gpu_uuid="GPU-b"} 0.370000',
        "# HELP nv_gpu_memory_total_bytes GPU total memory, in bytes",
        "# TYPE nv_gpu_memory_total_bytes gauge",
        f'nv_gpu_memory_total_bytes{{gpu_uuid="{UUID0}"}} 150000000000.000000',
        'nv_gpu_memory_total_bytes{gpu_uuid="GPU-b"} 150000000000.000000',
        "# HELP nv_gpu_memory_used_bytes GPU used memory, in bytes",
        "# TYPE nv_gpu_memory_used_bytes gauge",
        f'nv_gpu_memory_used_bytes{{gpu_uuid="{UUID0}"}} 1000000000.000000',
        'nv_gpu_memory_used_bytes{gpu_uuid="GPU-b"} 1000000000.000000',
        "# HELP nv_gpu_power_usage GPU power usage in watts",
        "# TYPE nv_gpu_power_usage gauge",
        f'nv_gpu_power_usage{{gpu_uuid="{UUID0}"}} 123.456000',
        "# HELP nv_gpu_power_limit GPU power management limit in watts",
        "# TYPE nv_gpu_power_limit gauge",
        f'nv_gpu_power_limit{{gpu_uuid="{UUID0}"}} 700.000000',
        'nv_gpu_power_limit{gpu_uuid="GPU-b"} 700.000000',
        "# HELP nv_energy_consumption GPU energy consumption in joules since the server started",
        "# TYPE nv_energy_consumption counter",
        f'nv_energy_consumption{{gpu_uuid="{UUID0}"}} 2.500000',
    ]


def test_a_failing_gpu_is_left_out_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    fake = two_gpus()
    metrics = GpuMetrics(Nvml.open(module=fake))
    fake.gpus[1].failing.add("utilization")
    with caplog.at_level(logging.WARNING):
        first, second = metrics.render(), metrics.render()
    assert first == second
    assert "GPU-b" not in first and UUID0 in first
    assert caplog.text.count("GPU 1 utilization") == 1


def test_no_nvml_or_no_gpu_means_no_gpu_section(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert gpu_metrics_or_none(FakePynvml([], init_fails=True)) is None
        empty = FakePynvml([])
        assert gpu_metrics_or_none(empty) is None
    assert empty.shutdowns == 1
    assert "no GPU metrics" in caplog.text


def test_server_metrics_render_the_gpu_section_after_the_model_metrics() -> None:
    server_metrics = ServerMetrics()
    gpu = gpu_metrics_or_none(two_gpus())
    assert gpu is not None
    server_metrics.add_section(gpu.render)
    body = server_metrics.render().decode()
    assert body.index("nv_inference_pending_request_count") < body.index("nv_gpu_utilization")
    assert body.index("nv_energy_consumption") < body.index("edgeperf_request_duration_seconds")


def test_system_description_lists_each_gpu_with_driver_and_memory() -> None:
    assert [(g.name, d) for g, d in describe_gpus(two_gpus())] == [
        ("NVIDIA H200", "570.86.15"),
        ("NVIDIA A2", "570.86.15"),
    ]
    system = describe_system("0.0.0", two_gpus())
    gpus = [a for a in system.accelerators if a.kind == "gpu"]
    assert [(a.name, a.memory_bytes, a.driver_version, a.uuid) for a in gpus] == [
        ("NVIDIA H200", 150_000_000_000, "570.86.15", UUID0),
        ("NVIDIA A2", 150_000_000_000, "570.86.15", "GPU-b"),
    ]
    assert describe_gpus(FakePynvml([], init_fails=True)) == []


async def test_a_running_server_serves_gpu_metrics_and_describes_its_gpus(tmp_path: Path) -> None:
    write_tiny(tmp_path)
    fake = two_gpus()
    config = ServerConfig(
        model_repository=tmp_path, listen="127.0.0.1:0", metrics_listen="127.0.0.1:0", grace_s=5.0
    )
    async with (
        EdgeperfServer(config, nvml_module=fake) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        url = f"http://127.0.0.1:{server.metrics_port}/metrics"
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read().decode())
        assert f'nv_gpu_power_usage{{gpu_uuid="{UUID0}"}} 123.456000' in body
        stub = epb_grpc.EdgeperfServiceStub(channel)  # type: ignore[no-untyped-call]
        system = await stub.SystemDescription(epb.SystemDescriptionRequest())
        assert [a.name for a in system.accelerators if a.kind == "gpu"] == ["NVIDIA H200", "NVIDIA A2"]
    assert fake.shutdowns == fake.initialised  # every NVML session the server opened is closed
