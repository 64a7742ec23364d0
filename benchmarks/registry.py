"""Names of the built-in benchmarks and models, resolved lazily so one missing dependency hides only its own."""

from __future__ import annotations

import importlib
from typing import cast

from edgeperf.benchmarks.base import Benchmark

_MODULES: dict[str, str] = {
    "resnet50": "edgeperf.benchmarks.resnet50",
    "retinanet": "edgeperf.benchmarks.retinanet",
    "3d-unet": "edgeperf.benchmarks.unet3d",
    "rnnt": "edgeperf.benchmarks.rnnt",
    "bert": "edgeperf.benchmarks.bert",
    "tiny": "edgeperf.benchmarks.tiny",
}

MLPERF_BENCHMARKS: tuple[str, ...] = ("resnet50", "retinanet", "3d-unet", "rnnt", "bert")
"""The five benchmarks of the MLPerf Inference Edge suite, in the order results tables show them."""


def names() -> tuple[str, ...]:
    """Every name `get` accepts: the five benchmarks and the `tiny` overhead model."""
    return tuple(_MODULES)


def get(name: str) -> Benchmark:
    """The benchmark called `name`; each package exposes it as `BENCHMARK` in its `__init__`.

    Raises:
        KeyError: for an unknown name, listing the known ones.
    """
    try:
        module_name = _MODULES[name]
    except KeyError:
        raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(_MODULES)}") from None
    return cast(Benchmark, importlib.import_module(module_name).BENCHMARK)
