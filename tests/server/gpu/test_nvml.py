"""server/gpu/nvml.py through the fake pynvml: units, unsupported readings, errors, lazy import."""

from __future__ import annotations

import sys

import pytest

from edgeperf.server.gpu.nvml import Nvml, NvmlError, NvmlUnavailable, load_pynvml
from tests.server.gpu.fake_nvml import FakeGpu, FakePynvml


def test_devices_and_driver_are_read_and_decoded() -> None:
    fake = FakePynvml([FakeGpu(), FakeGpu(name="NVIDIA A2", uuid="GPU-b", memory_total=16 << 30)])
    nvml = Nvml.open(module=fake)
    assert fake.initialised == 1
    assert nvml.driver_version() == "570.86.15"
    devices = nvml.devices()
    assert [(d.index, d.name, d.uuid) for d in devices] == [
        (0, "NVIDIA H200", "GPU-00000000-1111-2222-3333-444444444444"),
        (1, "NVIDIA A2", "GPU-b"),
    ]
    assert devices[1].memory_total_bytes == 16 << 30


def test_sample_converts_to_triton_units() -> None:
    nvml = Nvml.open(module=FakePynvml([FakeGpu()]))
    sample = nvml.sample(0)
    assert sample.utilization == pytest.approx(0.37)
    assert sample.power_w == pytest.approx(123.456)
    assert sample.power_limit_w == pytest.approx(700.0)
    assert sample.energy_j == pytest.approx(5000.0)
    assert (sample.memory_total_bytes, sample.memory_used_bytes) == (150_000_000_000, 1_000_000_000)
    assert nvml.power_w(0) == pytest.approx(123.456)
    assert nvml.energy_j(0) == pytest.approx(5000.0)


def test_unsupported_readings_are_none_not_errors() -> None:
    gpu = FakeGpu(unsupported={"power", "energy", "utilization", "power_limit"})
    sample = Nvml.open(module=FakePynvml([gpu])).sample(0)
    assert (sample.power_w, sample.energy_j, sample.utilization, sample.power_limit_w) == (None,) * 4
    assert sample.memory_used_bytes == gpu.memory_used


def test_other_nvml_failures_name_gpu_and_reading() -> None:
    nvml = Nvml.open(module=FakePynvml([FakeGpu(failing={"power"})]))
    with pytest.raises(NvmlError, match="GPU 0 power"):
        nvml.sample(0)
    with pytest.raises(NvmlError, match="GPU 3 handle"):
        nvml.device(3)


def test_init_failure_is_unavailable() -> None:
    with pytest.raises(NvmlUnavailable, match="no NVIDIA driver or GPU"):
        Nvml.open(module=FakePynvml([], init_fails=True))


def test_close_is_idempotent_and_stops_reads() -> None:
    fake = FakePynvml([FakeGpu()])
    nvml = Nvml.open(module=fake)
    nvml.close()
    nvml.close()
    assert fake.shutdowns == 1
    with pytest.raises(NvmlError, match="closed"):
        nvml.driver_version()


def test_missing_pynvml_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # None in sys.modules makes the import fail
    with pytest.raises(NvmlUnavailable, match=r"edgeperf\[gpu\]"):
        load_pynvml()
