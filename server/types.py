"""Domain values of one inference: requests, responses, and the datatype lookups that raise `InvalidInput`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from edgeperf.protos import kserve
from edgeperf.protos.kserve import DATATYPES
from edgeperf.server.errors import InvalidInput

__all__ = [
    "DATATYPES",
    "NO_TIMINGS",
    "InferRequest",
    "InferResponse",
    "ModelInfo",
    "ServerTimings",
    "datatype_of",
    "numpy_dtype",
]


def numpy_dtype(datatype: str) -> np.dtype[Any]:
    """The numpy dtype of a KServe datatype string ("FP32" -> float32).

    Raises:
        InvalidInput: for an unknown or unsupported datatype.
    """
    try:
        return DATATYPES[datatype]
    except KeyError:
        raise InvalidInput(
            f"unsupported datatype '{datatype}'; expected one of {', '.join(DATATYPES)}"
        ) from None


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The KServe datatype string of a numpy dtype (float32 -> "FP32"; str/bytes -> "BYTES").

    Raises:
        InvalidInput: for a dtype with no KServe datatype.
    """
    name = kserve.datatype_of(dtype)
    if name is None:
        raise InvalidInput(f"numpy dtype {np.dtype(dtype)} has no KServe datatype")
    return name


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerTimings:
    """Where one request's time in the server went, Triton's statistics split; one value from the batcher
    to the response parameters, the statistics and the metrics."""

    queue_ns: int
    """Time from enqueue to the start of the batch's execution."""
    compute_input_ns: int
    """Batch input preparation (concatenation) time."""
    compute_infer_ns: int
    """Batch runtime execution time."""
    compute_output_ns: int
    """Batch output extraction (split) time."""


NO_TIMINGS: Final = ServerTimings(queue_ns=0, compute_input_ns=0, compute_infer_ns=0, compute_output_ns=0)
"""The timings of a request that failed before it ran."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InferRequest:
    """One inference request as the core sees it, transport-free."""

    model_name: str
    model_version: str = ""
    """Empty selects the newest ready version."""
    id: str = ""
    inputs: Mapping[str, npt.NDArray[Any]]
    """Input name -> array; full shape including the batch dimension when max_batch_size > 0."""
    requested_outputs: tuple[str, ...] = ()
    """Output names to return; () returns all outputs."""
    timeout_us: int | None = None
    """Triton's `timeout` request parameter: queue timeout in microseconds (only lowers the configured one
    unless the config allows override; see DynamicBatchingConfig)."""
    priority: int = 0
    deadline_ns: int | None = None
    """Absolute `time.monotonic_ns()` after which the caller no longer wants the answer (gRPC deadline)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InferResponse:
    """The outputs of one request and the server-side time it cost."""

    model_name: str
    model_version: str
    id: str
    outputs: dict[str, npt.NDArray[Any]]
    """Requested outputs in model output order."""
    timings: ServerTimings


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelInfo:
    """One model of the repository, for RepositoryIndex."""

    name: str
    versions: tuple[str, ...]
    """Served versions, ascending numerically."""
    state: str
    """"READY" or "UNAVAILABLE"."""
    reason: str = ""
