"""SingleStream and MultiStream: query n is issued, all its samples in one `issue_query`, once query n-1 is done.

The two scenarios differ only in the samples per query (one, or `samples_per_query` contiguous ones from
the schedule), so they share one scheduler. The latency origin is the wake-up time; MultiStream's query
latency is the completion of its last sample minus that time (the results take the maximum over the
query's samples).
"""

from __future__ import annotations

from edgeperf.client.plan.scenarios.base import Clock, QueryProgress, wait_for_previous

__all__ = ["StreamScheduler"]


class StreamScheduler:
    """Issues query n once every sample of query n-1 is done; latency counts from that moment (§6.3)."""

    def __init__(self, progress: QueryProgress, clock: Clock) -> None:
        self._progress = progress
        self._clock = clock

    async def wait(self, query: int) -> int:
        return await wait_for_previous(query, self._progress, self._clock)
