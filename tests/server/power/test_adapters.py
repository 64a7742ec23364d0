"""Each power adapter on a fake sysfs tree (wrap-around, resets, permissions), NVML through the fake
pynvml, SCPI through pyvisa-sim's simulated meter; the spec parser and detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeperf.server.power import PowerError, Scope, detect_sources, open_sources, parse_power_spec
from edgeperf.server.power.base import EnergyCounter
from edgeperf.server.power.hwmon import HwmonChannel, find_channels
from edgeperf.server.power.jetson import JetsonRail
from edgeperf.server.power.nvml import open_gpus
from edgeperf.server.power.rapl import RaplZone, find_zones
from edgeperf.server.power.registry import PowerItem
from tests.server.gpu.fake_nvml import FakeGpu, FakePynvml
from tests.server.power.sysfs import hwmon_chip, jetson_hwmon, jetson_iio, rapl_zone, write

SIM_METER = Path(__file__).with_name("sim_meter.yaml")


def test_rapl_package_and_dram_zones_with_wrap_around(tmp_path: Path) -> None:
    package = rapl_zone(tmp_path, "intel-rapl:0", "package-0", 900_000, max_range_uj=1_000_000)
    rapl_zone(tmp_path, "intel-rapl:0:0", "core", 5)
    dram = rapl_zone(tmp_path, "intel-rapl:0:2", "dram", 10)
    assert find_zones(tmp_path) == [package, dram]
    zone = RaplZone(package)
    assert zone.info.name == "rapl:package-0"
    assert zone.info.covers == "CPU package only" and zone.info.scope is Scope.COMPONENT
    write(package / "energy_uj", 950_000)
    assert zone.read() == pytest.approx(0.05)
    write(package / "energy_uj", 30_000)  # passed 1_000_000 and restarted at 0
    assert zone.read() == pytest.approx(0.05 + 0.05 + 0.03)
    assert zone.counter.wraps == 1
    assert RaplZone(dram).info.name == "rapl:dram-0" and RaplZone(dram).info.covers == "DRAM only"


def test_rapl_missing_permission_through_the_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # NOTE: tests may run as root, where chmod 000 does not stop reads; the kernel's answer is emulated.
    package = rapl_zone(tmp_path, "intel-rapl:0", "package-0", 1)
    real = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", read_text)
    with pytest.raises(PowerError, match="permission denied"):
        RaplZone(package)
    sources, skipped = detect_sources(
        roots={"rapl": tmp_path, "hwmon": tmp_path / "x", "jetson": tmp_path / "y"}
    )
    assert not [s for s in sources if s.info.name.startswith("rapl")]
    assert any("permission denied" in reason for reason in skipped)


def test_counter_reset_without_a_known_range_counts_from_zero() -> None:
    counter = EnergyCounter(1e-6)
    counter.update(5_000_000)
    assert counter.update(7_000_000) == pytest.approx(2.0)
    assert counter.update(1_000_000) == pytest.approx(3.0)  # reset: 1 J since it restarted
    assert counter.resets == 1 and counter.wraps == 0


def test_rapl_value_above_its_range_is_a_reset_not_a_wrap() -> None:
    counter = EnergyCounter(1e-6, max_range=1_000)
    counter.update(5_000)  # a counter beyond its advertised range cannot have wrapped at it
    assert counter.update(10) == pytest.approx(10e-6)
    assert counter.resets == 1


def test_hwmon_power_and_energy_channels(tmp_path: Path) -> None:
    hwmon_chip(tmp_path, "hwmon0", "amdgpu", power1_input=15_500_000, power1_label="PPT")
    hwmon_chip(tmp_path, "hwmon1", "acpi_power_meter", power1_input=1, energy1_input=2_000_000)
    hwmon_chip(tmp_path, "hwmon2", "ina3221", power1_input=3)
    hwmon_chip(tmp_path, "hwmon3", "k10temp", temp1_input=40_000)
    channels = find_channels(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in channels] == [
        "hwmon0/power1_input",
        "hwmon1/energy1_input",
    ]
    power = HwmonChannel(channels[0])
    assert power.info.kind == "power" and power.info.covers == "amdgpu PPT only"
    assert power.read() == pytest.approx(15.5)
    energy = HwmonChannel(channels[1])
    assert energy.info.kind == "energy" and energy.read() == 0.0
    write(tmp_path / "hwmon1" / "energy1_input", 2_500_000)
    assert energy.read() == pytest.approx(0.5)
    write(tmp_path / "hwmon1" / "energy1_input", 100_000)  # driver reloaded
    assert energy.read() == pytest.approx(0.6)
    assert energy.counter.resets == 1


def test_hwmon_garbage_and_missing_files_name_the_file(tmp_path: Path) -> None:
    chip = hwmon_chip(tmp_path, "hwmon0", "x", power1_input="n/a")
    with pytest.raises(PowerError, match=r"hwmon:hwmon0:power1: .*power1_input: not an integer"):
        HwmonChannel(chip / "power1_input")
    with pytest.raises(PowerError, match="cannot read"):
        HwmonChannel(chip / "power2_input")


def test_jetson_input_rail_in_both_layouts(tmp_path: Path) -> None:
    jetson_hwmon(tmp_path / "a", {"VDD_IN": (5000, 1500), "VDD_CPU_GPU_CV": (5000, 600)})
    board = JetsonRail(root=tmp_path / "a")
    assert board.info.name == "jetson:VDD_IN" and board.info.scope is Scope.BOARD
    assert board.info.covers == "whole board (VDD_IN input rail)"
    assert board.read() == pytest.approx(7.5)
    rail = JetsonRail("VDD_CPU_GPU_CV", root=tmp_path / "a")
    assert rail.info.scope is Scope.COMPONENT and rail.read() == pytest.approx(3.0)
    jetson_iio(tmp_path / "b", {"POM_5V_IN": 4200, "POM_5V_GPU": 800})
    nano = JetsonRail(root=tmp_path / "b")
    assert nano.info.name == "jetson:POM_5V_IN" and nano.read() == pytest.approx(4.2)
    with pytest.raises(PowerError, match=r"no rail 'VDD_SOC'.*rails found: POM_5V_IN, POM_5V_GPU"):
        JetsonRail("VDD_SOC", root=tmp_path / "b")
    with pytest.raises(PowerError, match="no INA3221 input rail"):
        JetsonRail(root=tmp_path / "none")


def test_nvml_energy_counter_or_power_samples() -> None:
    fake = FakePynvml([FakeGpu(energy_mj=5_000_000), FakeGpu(unsupported={"energy"}, power_mw=150_000)])
    gpus = open_gpus(module=fake)
    assert [g.info.kind for g in gpus] == ["energy", "power"]
    assert gpus[0].info.covers == "GPU 0 board only (NVIDIA H200)"
    fake.gpus[0].energy_mj += 2_500
    assert gpus[0].read() == pytest.approx(2.5)
    assert gpus[1].read() == pytest.approx(150.0)
    for gpu in gpus:
        gpu.close()
    assert fake.shutdowns == 1


def test_nvml_without_power_readings_or_driver_is_a_clear_error() -> None:
    with pytest.raises(PowerError, match="reports neither an energy counter nor power"):
        open_gpus(module=FakePynvml([FakeGpu(unsupported={"energy", "power"})]))
    with pytest.raises(PowerError, match="nvml: NVML cannot start"):
        open_gpus(module=FakePynvml([], init_fails=True))
    with pytest.raises(PowerError, match=r"nvml:3: no such GPU \(1 found\)"):
        open_gpus(3, module=FakePynvml([FakeGpu()]))


def test_scpi_wall_meter_through_pyvisa_sim() -> None:
    from edgeperf.server.power.scpi import ScpiMeter

    meter = ScpiMeter(f"TCPIP::127.0.0.1::INSTR@{SIM_METER}@sim")
    try:
        assert meter.info.scope is Scope.WALL
        assert meter.info.covers == "wall (EDGEPERF,SIM-WALL-METER,0,1.0)"
        assert meter.read() == pytest.approx(42.5)
    finally:
        meter.close()
    with pytest.raises(PowerError, match=r"answered 'NAN'|not watts"):
        ScpiMeter(f"TCPIP::127.0.0.1::INSTR@{SIM_METER}@sim;query=:NUMERIC:NORMAL:VALUE? 3")
    with pytest.raises(PowerError, match="scpi: VISA backend"):
        ScpiMeter(f"TCPIP::127.0.0.1::INSTR@{SIM_METER.with_name('missing.yaml')}@sim")
    with pytest.raises(PowerError, match="expected ';query=COMMAND'"):
        ScpiMeter("TCPIP::127.0.0.1::INSTR;timeout=5")


def test_power_spec_grammar(tmp_path: Path) -> None:
    assert parse_power_spec("auto") is None
    assert parse_power_spec("none") == []
    assert parse_power_spec("rapl,nvml:1,jetson:VDD_IN=/x,scpi=TCPIP::h::INSTR;query=A? 1,2") == [
        PowerItem("rapl"),
        PowerItem("nvml", "1"),
        PowerItem("jetson", "VDD_IN", "/x"),
        PowerItem("scpi", None, "TCPIP::h::INSTR;query=A? 1,2"),
    ]
    for bad, message in (
        ("watts", "unknown source 'watts'"),
        ("nvml:x", "needs a GPU index"),
        ("rapl:1", "takes no ':SELECT'"),
        ("scpi", "scpi needs =RESOURCE"),
        ("hwmon=", "needs a value"),
    ):
        with pytest.raises(PowerError, match=message):
            parse_power_spec(bad)
    with pytest.raises(PowerError, match="no package or dram zone"):
        open_sources([PowerItem("rapl", None, str(tmp_path))])


def test_detection_finds_what_the_tree_has(tmp_path: Path) -> None:
    rapl_zone(tmp_path / "powercap", "intel-rapl:0", "package-0", 1)
    jetson_hwmon(tmp_path / "i2c", {"VDD_IN": (5000, 1000)})
    sources, skipped = detect_sources(
        roots={"rapl": tmp_path / "powercap", "hwmon": tmp_path / "hwmon", "jetson": tmp_path / "i2c"},
        nvml_module=FakePynvml([], init_fails=True),
    )
    assert [s.info.name for s in sources] == ["rapl:package-0", "jetson:VDD_IN"]
    assert len(skipped) == 2 and any(s.startswith("hwmon:") for s in skipped)


def test_a_bad_power_setting_is_refused_with_the_flag(tmp_path: Path) -> None:
    from edgeperf.server.settings import ServerConfig, SettingsError

    with pytest.raises(SettingsError, match=r"power \(--power / EDGEPERF_POWER\): .*unknown source 'volts'"):
        ServerConfig(model_repository=tmp_path, power="volts")
    assert (
        ServerConfig.from_env(environ={"EDGEPERF_POWER": "none"}, model_repository=tmp_path).power == "none"
    )
