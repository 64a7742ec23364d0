"""The stand-in's size for each `--size`: the dataset needs its patch edge too, so it lives apart from the
ONNX model builder (the client needs no onnx for performance runs)."""

from __future__ import annotations

from dataclasses import dataclass

from edgeperf.benchmarks.base import Size
from edgeperf.benchmarks.unet3d.spec import ROI_SHAPE

__all__ = ["FULL", "SMALL", "UnetConfig", "config_for"]


@dataclass(frozen=True, slots=True, kw_only=True)
class UnetConfig:
    """The stand-in's size."""

    filters: tuple[int, ...]
    """Channels per level; the last one is also the bottleneck's."""
    roi: int
    """Edge of the cubic patch; divisible by 2 ** len(filters)."""


FULL = UnetConfig(filters=(32, 64, 128, 256, 320), roi=ROI_SHAPE[0])
SMALL = UnetConfig(filters=(8, 16), roi=32)


def config_for(size: Size) -> UnetConfig:
    return FULL if size == "full" else SMALL
