"""Checks that the pipeline benchmarks' tests (rnnt, 3d-unet) make alike: synthetic sets, pipelines, scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from edgeperf.benchmarks.base import AccuracyReport, Benchmark, Dataset


def small_score(
    benchmark: Benchmark, dataset: Dataset, outputs: Sequence[npt.NDArray[Any]]
) -> AccuracyReport:
    """Score `outputs`, the responses to samples 0, 1, ... in order, at the small size."""
    return benchmark.accuracy(dataset, [(i, o.tobytes()) for i, o in enumerate(outputs)], size="small")


def answers(
    benchmark: Benchmark, pipeline: Any, source: str, output: str
) -> tuple[Dataset, list[npt.NDArray[Any]]]:
    """The small dataset `source` and the pipeline's `output` for each of its samples, in order."""
    dataset = benchmark.open_dataset(source, size="small")
    return dataset, [pipeline.run(dataset.sample(i), [output])[output] for i in range(len(dataset))]


def check_unknown_output_and_close(pipeline: Any, inputs: dict[str, Any], output: str, unknown: str) -> None:
    """Asking for an output the pipeline lacks is a KeyError; a closed pipeline refuses to run."""
    with pytest.raises(KeyError):
        pipeline.run(inputs, [unknown])
    pipeline.close()
    with pytest.raises(RuntimeError, match="closed"):
        pipeline.run(inputs, [output])


def synthetic_three(
    benchmark: Benchmark, kind: type[Any], tensor: str
) -> tuple[Dataset, list[npt.NDArray[Any]]]:
    """The small `synthetic:3` set: a `kind` of three samples, each `tensor` the same in a fresh copy."""
    dataset = benchmark.open_dataset("synthetic:3", size="small")
    assert isinstance(dataset, kind) and len(dataset) == 3
    arrays = [dataset.sample(index)[tensor] for index in range(3)]
    for index, array in enumerate(arrays):
        assert np.array_equal(array, kind(3, "small").sample(index)[tensor])
    return dataset, arrays
