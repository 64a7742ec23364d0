"""Triton's `reshape`: a Runtime wrapper that gives the model the shapes it wants and clients the configured ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy.typing as npt

from edgeperf.server.model_config import ModelConfig
from edgeperf.server.runtime.base import Runtime

__all__ = ["ReshapingRuntime", "with_reshape"]


class ReshapingRuntime:
    """Reshapes inputs from `dims` to `reshape` before the run, and outputs from `reshape` to `dims` after."""

    def __init__(self, inner: Runtime, config: ModelConfig) -> None:
        self._inner = inner
        self._batching = config.max_batch_size > 0
        self._inputs = {t.name: t.reshape for t in config.inputs if t.reshape is not None}
        self._outputs = {t.name: t.shape for t in config.outputs if t.reshape is not None}

    def _shape(self, array: npt.NDArray[Any], per_sample: tuple[int, ...]) -> tuple[int, ...]:
        return (array.shape[0], *per_sample) if self._batching else per_sample

    def run(
        self, inputs: Mapping[str, npt.NDArray[Any]], output_names: Sequence[str]
    ) -> dict[str, npt.NDArray[Any]]:
        shaped = {
            name: a.reshape(self._shape(a, self._inputs[name])) if name in self._inputs else a
            for name, a in inputs.items()
        }
        outputs = self._inner.run(shaped, output_names)
        return {
            name: a.reshape(self._shape(a, self._outputs[name])) if name in self._outputs else a
            for name, a in outputs.items()
        }

    def warmup(self) -> None:
        """Forward a pipeline's optional warmup()."""
        warmup = getattr(self._inner, "warmup", None)
        if callable(warmup):
            warmup()

    def close(self) -> None:
        self._inner.close()


def with_reshape(runtime: Runtime, config: ModelConfig) -> Runtime:
    """`runtime` itself, or wrapped when a tensor of `config` has a reshape."""
    if any(t.reshape is not None for t in (*config.inputs, *config.outputs)):
        return ReshapingRuntime(runtime, config)
    return runtime
