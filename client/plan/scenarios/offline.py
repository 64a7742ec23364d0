"""Offline: one query holding every sample, issued at the start; the SUT splits it into requests.

Every sample's latency counts from the test start. The SUT (`GrpcSut`) sends the query as requests of
its batch size and keeps a bounded window of them in flight.
"""

from __future__ import annotations

__all__ = ["OfflineScheduler"]


class OfflineScheduler:
    """Every query (one in performance mode, one per loadable set in accuracy mode) is due at once."""

    def __init__(self, start_ns: int) -> None:
        self._start_ns = start_ns

    async def wait(self, query: int) -> int:
        return self._start_ns
