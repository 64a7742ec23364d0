"""The live progress display of `edgeperf run` (rich): issued and completed, time, QPS and latency."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.table import Table

if TYPE_CHECKING:
    from edgeperf.client.issue.tracker import CompletionTracker
    from edgeperf.client.plan.effective import EffectiveSettings

__all__ = ["ProgressDisplay"]

_REFRESH_S = 0.25


class ProgressDisplay:
    """Redraws a small table from the tracker's counters a few times a second (on stderr)."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console(stderr=True)
        self._live: Live | None = None
        self._task: asyncio.Task[None] | None = None
        self._tracker: CompletionTracker | None = None
        self._settings: EffectiveSettings | None = None
        self._start_ns = 0
        self._total = 0
        self._accuracy = False
        self._last_ns = 0
        self._last_completed = 0
        self._qps = 0.0
        self._latency_ms = 0.0

    def attach(
        self,
        tracker: CompletionTracker,
        settings: EffectiveSettings,
        start_ns: int,
        *,
        total_queries: int,
        accuracy: bool,
    ) -> None:
        """Follow a new pass (accuracy or performance)."""
        self._tracker = tracker
        self._settings = settings
        self._start_ns = start_ns
        self._total = total_queries
        self._accuracy = accuracy
        self._last_ns = start_ns
        self._last_completed = 0

    def detach(self) -> None:
        self._refresh()
        self._tracker = None

    def start(self) -> None:
        self._live = Live(self._render(), console=self._console, refresh_per_second=4, transient=False)
        self._live.start()
        self._task = asyncio.create_task(self._loop())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._live is not None:
            self._live.stop()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(_REFRESH_S)
            self._refresh()

    def _refresh(self) -> None:
        tracker = self._tracker
        if tracker is not None:
            now = time.perf_counter_ns()
            dt_s = (now - self._last_ns) / 1e9
            if dt_s > 0:
                self._qps = (tracker.completed_samples - self._last_completed) / dt_s
            self._last_ns, self._last_completed = now, tracker.completed_samples
            total, count = tracker.take_latency_window()
            if count:
                self._latency_ms = total / count / 1e6
        if self._live is not None:
            self._live.update(self._render())

    def _render(self) -> Table:
        table = Table(show_header=False, box=None)
        tracker, settings = self._tracker, self._settings
        if tracker is None or settings is None:
            table.add_row("edgeperf", "preparing ...")
            return table
        elapsed_s = (time.perf_counter_ns() - self._start_ns) / 1e9
        phase = "accuracy" if self._accuracy else "performance"
        table.add_row("pass", f"{settings.scenario.value} {phase}")
        table.add_row("queries issued", f"{tracker.issued_queries} of {self._total} generated")
        table.add_row(
            "samples completed",
            f"{tracker.completed_samples} of {tracker.issued_samples} issued, {tracker.failed_samples} failed",
        )
        table.add_row("elapsed", f"{elapsed_s:.1f} s of min {settings.min_duration_ms / 1000:g} s")
        table.add_row("current QPS", f"{self._qps:.1f} samples/s")
        table.add_row("recent mean latency", f"{self._latency_ms:.3f} ms")
        return table
