"""Fake sysfs trees for the power adapters: the same files and units the kernel drivers expose."""

from __future__ import annotations

import os
from pathlib import Path


def write(path: Path, value: object) -> None:
    """Replace a sysfs-like file atomically, so a reader in another thread never sees half a value."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{value}\n", encoding="ascii")
    os.replace(tmp, path)


def rapl_zone(root: Path, folder: str, name: str, energy_uj: int, max_range_uj: int = 262143328850) -> Path:
    zone = root / folder
    write(zone / "name", name)
    write(zone / "energy_uj", energy_uj)
    write(zone / "max_energy_range_uj", max_range_uj)
    return zone


def hwmon_chip(root: Path, folder: str, name: str, **files: object) -> Path:
    chip = root / folder
    write(chip / "name", name)
    for file_name, value in files.items():
        write(chip / file_name, value)
    return chip


def jetson_hwmon(root: Path, rails: dict[str, tuple[int, int]]) -> Path:
    """JetPack 5 layout: ina3221/1-0040/hwmon/hwmon3/inN_label, inN_input (mV), currN_input (mA)."""
    chip = root / "ina3221" / "1-0040" / "hwmon" / "hwmon3"
    write(chip / "name", "ina3221")
    for n, (rail, (millivolts, milliamps)) in enumerate(rails.items(), start=1):
        write(chip / f"in{n}_label", rail)
        write(chip / f"in{n}_input", millivolts)
        write(chip / f"curr{n}_input", milliamps)
    return chip


def jetson_iio(root: Path, rails: dict[str, int]) -> Path:
    """JetPack 4 layout: ina3221x/6-0040/iio:device0/rail_name_N, in_powerN_input (mW)."""
    device = root / "ina3221x" / "6-0040" / "iio:device0"
    for n, (rail, milliwatts) in enumerate(rails.items()):
        write(device / f"rail_name_{n}", rail)
        write(device / f"in_power{n}_input", milliwatts)
    return device
