"""The server-wide budget for request data held in the server (queued, batching or running).

Without it, memory is bounded only by what clients send: one ModelStreamInfer stream of 80 ResNet50
batch-32 requests (19.3 MB each) took a server from 352 MB to 3.7 GB. Every request reserves the bytes
of its input tensors when the core accepts it and releases them when it is answered; a request that
would take the total over the limit is refused at once with `OverBudget` (UNAVAILABLE, like a full
queue, so clients back off and retry). A request larger than the whole budget is still accepted when
nothing else is held, so the budget never makes a valid request impossible.

Used only on the event loop thread, so no lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from edgeperf.server.errors import OverBudget

__all__ = ["ByteBudget", "request_bytes"]

_MIB: Final = 1024 * 1024


def request_bytes(inputs: Mapping[str, npt.NDArray[Any]]) -> int:
    """Bytes of the request's tensors (BYTES tensors: the sum of their elements' lengths, as sent)."""
    total = 0
    for array in inputs.values():
        if not isinstance(array, np.ndarray):
            continue  # NOTE: not a tensor; validation refuses the request right after
        if array.dtype == np.object_:
            total += sum(len(item) for item in array.flat)
        else:
            total += array.nbytes
    return total


class ByteBudget:
    """Reserve and release request bytes against a fixed limit."""

    def __init__(self, limit_bytes: int) -> None:
        if limit_bytes <= 0:
            raise ValueError(f"the byte budget must be > 0, got {limit_bytes}")
        self.limit_bytes = limit_bytes
        self.used_bytes = 0

    def reserve(self, size: int) -> None:
        """Take `size` bytes, to be given back with `release(size)`.

        Raises:
            OverBudget: the bytes held would exceed the limit (and something else is held).
        """
        if self.used_bytes and self.used_bytes + size > self.limit_bytes:
            raise OverBudget(
                f"request of {size / _MIB:.1f} MiB refused: the server holds {self.used_bytes / _MIB:.1f} MiB "
                f"of request data and its budget is {self.limit_bytes / _MIB:.0f} MiB "
                "(--max-queued-mb / EDGEPERF_MAX_QUEUED_MB); retry later"
            )
        self.used_bytes += size

    def hold(self, size: int) -> None:
        """Take `size` bytes without a check: an answer already computed, waiting to be written."""
        self.used_bytes += size

    def release(self, size: int) -> None:
        self.used_bytes -= size
