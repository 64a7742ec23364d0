"""Server: Poisson arrivals issued at absolute times; latency from the scheduled time.

Query n is due at `start_ns + scheduled_offsets_ns[n]`. The scheduler sleeps, then spins while
yielding to the event loop, so completions are recorded while it waits; a late query is issued at once
and its lateness counts in its latency, as the rules define (the origin is the ideal time).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from edgeperf.client.plan.scenarios.base import Clock, wait_until

__all__ = ["ServerScheduler"]


class ServerScheduler:
    """Waits for each query's absolute scheduled time."""

    def __init__(
        self,
        start_ns: int,
        offsets_ns: Sequence[int] | npt.NDArray[np.int64],
        clock: Clock,
        *,
        spin_ns: int | None = None,
    ) -> None:
        self._start_ns = start_ns
        self._offsets_ns = offsets_ns
        self._clock = clock
        self._spin_ns = spin_ns

    def scheduled_ns(self, query: int) -> int:
        """The ideal issue time of `query` (absolute ns)."""
        return self._start_ns + int(self._offsets_ns[query])

    async def wait(self, query: int) -> int:
        due_ns = self.scheduled_ns(query)
        await wait_until(due_ns, self._clock, spin_ns=self._spin_ns)
        return due_ns
