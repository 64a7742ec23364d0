"""The Runtime protocol: what an instance thread runs, be it one ONNX Runtime session or a pipeline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy.typing as npt

__all__ = ["Runtime"]


@runtime_checkable
class Runtime(Protocol):
    """A loaded model instance. Every method is blocking and called on the instance's own thread."""

    def run(
        self, inputs: Mapping[str, npt.NDArray[Any]], output_names: Sequence[str]
    ) -> dict[str, npt.NDArray[Any]]:
        """Execute the model once.

        Args:
            inputs: input name -> array (batched when the model's max_batch_size > 0).
            output_names: outputs to compute, a subset of the model's outputs.

        Returns:
            output name -> array for every name in `output_names`.

        Raises:
            Exception: any runtime failure; the batcher turns it into RuntimeFailed for that batch only.
        """
        ...

    def close(self) -> None:
        """Release the session(s). Called once, after the last run."""
        ...
