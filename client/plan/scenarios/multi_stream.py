"""MultiStream: queries of `samples_per_query` contiguous samples, each issued after the previous completes.

The query latency is the completion of its last sample minus the wake-up time (the results take the
maximum over the query's samples); the contiguous samples come from the schedule.
"""

from __future__ import annotations

from edgeperf.client.plan.scenarios.base import Clock, QueryProgress, wait_for_previous

__all__ = ["MultiStreamScheduler"]


class MultiStreamScheduler:
    """Issues query n, all its samples in one `issue_query`, once every sample of query n-1 is done."""

    def __init__(self, progress: QueryProgress, clock: Clock) -> None:
        self._progress = progress
        self._clock = clock

    async def wait(self, query: int) -> int:
        return await wait_for_previous(query, self._progress, self._clock)
