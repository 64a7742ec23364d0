"""One execution of a batch on a runtime: concatenate the requests' inputs, run, split the outputs, timed.

Runs on an instance's thread (or on the event loop for `inline_execution` models); touches no asyncio
state, so the batcher can call it from either.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from edgeperf.server.runtime.base import Runtime
from edgeperf.server.types import ServerTimings

__all__ = ["Array", "Arrays", "BatchResult", "Timings", "run_batch", "share"]

Array = npt.NDArray[Any]
Arrays = Mapping[str, Array]


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchResult:
    """One request's share of an execution."""

    outputs: dict[str, npt.NDArray[Any]]
    timings: ServerTimings
    batch_size: int
    """Samples in the execution this request was part of."""


@dataclass(slots=True)
class Timings:
    outputs: list[dict[str, npt.NDArray[Any]]] = field(default_factory=list)
    input_ns: int = 0
    infer_ns: int = 0
    output_ns: int = 0


def run_batch(
    items: Sequence[Arrays], sizes: Sequence[int], output_names: list[str], runtime: Runtime
) -> Timings:
    """On the instance thread: concatenate, run, split; each step timed."""
    t0 = time.perf_counter_ns()
    if len(items) == 1:
        inputs: Arrays = items[0]
    else:
        inputs = {name: np.concatenate([item[name] for item in items], axis=0) for name in items[0]}
    t1 = time.perf_counter_ns()
    outputs = runtime.run(inputs, output_names)
    t2 = time.perf_counter_ns()
    if len(items) == 1:
        per_request = [outputs]
    else:
        total = sum(sizes)
        for name, array in outputs.items():
            if array.ndim == 0 or array.shape[0] != total:
                raise RuntimeError(
                    f"output '{name}' has shape {list(array.shape)}; expected a batch dimension of {total}"
                )
        bounds = np.cumsum([0, *sizes]).tolist()
        per_request = [
            {name: array[a:b] for name, array in outputs.items()} for a, b in itertools.pairwise(bounds)
        ]
    t3 = time.perf_counter_ns()
    return Timings(per_request, t1 - t0, t2 - t1, t3 - t2)


def share(
    outputs: dict[str, Array], wanted: tuple[str, ...], queue_ns: int, timings: Timings, total: int
) -> BatchResult:
    """One request's answer from its execution: the outputs it asked for and the batch's timings."""
    return BatchResult(
        outputs=outputs if tuple(outputs) == wanted else {n: outputs[n] for n in wanted},
        timings=ServerTimings(
            queue_ns=queue_ns,
            compute_input_ns=timings.input_ns,
            compute_infer_ns=timings.infer_ns,
            compute_output_ns=timings.output_ns,
        ),
        batch_size=total,
    )
