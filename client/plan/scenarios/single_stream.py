"""SingleStream: one sample per query, each issued when the previous one has completed."""

from __future__ import annotations

from edgeperf.client.plan.scenarios.base import Clock, QueryProgress, wait_for_previous

__all__ = ["SingleStreamScheduler"]


class SingleStreamScheduler:
    """Issues query n once query n-1 is done; latency counts from that moment (§6.3)."""

    def __init__(self, progress: QueryProgress, clock: Clock) -> None:
        self._progress = progress
        self._clock = clock

    async def wait(self, query: int) -> int:
        return await wait_for_previous(query, self._progress, self._clock)
