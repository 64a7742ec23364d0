"""What the test-mode passes produced: each pass's raw results, loadable sets, end and client check.

The issue stage hands these to the report stage (`edgeperf.client.report.finish.finish_run`), which
writes nothing back into them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgeperf.client.issue.raw_results import RunResult
from edgeperf.client.issue.selfcheck import ClientCheck
from edgeperf.client.issue.stop import EndOfRun, EndReason
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.schedule import Schedule

if TYPE_CHECKING:
    from edgeperf.client.issue.power import PowerMeasurement

__all__ = ["LoadableSetLog", "ModeResult", "ModeRuns", "with_active_time"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadableSetLog:
    """One loadable set and the queries generated for it (the detail log's ``loaded_qsl_set`` block)."""

    loaded_qsl_set: tuple[int, ...]
    generated_query_count: int
    generated_samples_per_query: int
    generated_query_duration_ns: int
    start_ns: int | None = None
    """Clock ns when issuing this set began (LoadGen's `start_for_power`); None when not measured."""
    active_ns: int | None = None
    """From `start_ns` to the set's last completion (LoadGen's `sut_active_duration`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeResult:
    """One accuracy-mode or performance-mode pass."""

    result: RunResult
    sets: tuple[LoadableSetLog, ...]
    end: EndOfRun
    interrupted_after_s: float | None = None
    """The user stopped this pass this long after its start; None if it was not stopped."""
    client: ClientCheck | None = None
    """What the client itself cost during the pass and whether it kept up (`edgeperf.client.issue.selfcheck`)."""
    power: PowerMeasurement | None = None
    """The server's power over this (performance) pass."""
    power_note: str | None = None
    """Why a pass that was to be measured has no measurement."""

    @property
    def interrupted(self) -> bool:
        return self.end.reason is EndReason.INTERRUPTED

    @property
    def aborted(self) -> bool:
        """Ended by the SUT failing (errors in a row, a stall), not by its schedule or the user."""
        return self.end.reason in (EndReason.TOO_MANY_ERRORS, EndReason.STALLED)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeRuns:
    """Everything the mode passes of one run produced."""

    settings: EffectiveSettings
    """The effective settings of the reported performance pass (the chosen probe in FindPeakPerformance)."""
    accuracy: ModeResult | None = None
    performance: ModeResult | None = None
    peak_qps: float | None = None
    probes: tuple[tuple[float, bool], ...] = ()
    """FindPeakPerformance: (target QPS, passed) of each probe, in order."""
    probe_sets: tuple[tuple[float, LoadableSetLog], ...] = ()
    """FindPeakPerformance: (target QPS, loaded set and generated queries) of each probe, in order."""

    @property
    def interrupted_after_s(self) -> float | None:
        for run in (self.performance, self.accuracy):
            if run is not None and run.interrupted_after_s is not None:
                return run.interrupted_after_s
        return None


def with_active_time(
    set_logs: list[LoadableSetLog], schedules: list[Schedule], result: RunResult
) -> tuple[LoadableSetLog, ...]:
    """Each set's time from its start to its last completion (LoadGen's power window per set)."""
    done = result.sample_completed_ns
    out: list[LoadableSetLog] = []
    first = 0
    for ls, schedule in zip(set_logs, schedules, strict=False):
        part = done[first : first + schedule.sample_indices.size]
        first += schedule.sample_indices.size
        # NOTE: never-completed samples are -1, below every completion: no filtered copy is needed.
        last = int(part.max(initial=-1))
        last_ns = result.start_ns + last if last >= 0 else None
        start_ns = ls.start_ns if ls.start_ns is not None else result.start_ns
        active_ns = 0 if last_ns is None else max(last_ns - start_ns, 0)
        out.append(dataclasses.replace(ls, active_ns=active_ns))
    return tuple(out)
