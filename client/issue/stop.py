"""When the issue loop stops: LoadGen's end-of-run conditions (§6.3) in one pure function, and why it stopped."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.settings import Scenario

__all__ = ["RAN_OUT_MESSAGE", "EndOfRun", "EndReason", "end_of_run"]

RAN_OUT_MESSAGE = (
    "Ending early: Ran out of generated queries to issue before the minimum query count and test "
    "duration were reached. Please update the relevant expected latency or target qps in the "
    "TestSettings so they are more accurate."
)


class EndReason(enum.Enum):
    """Why the issue loop stopped."""

    NATURAL = "natural"
    """SingleStream/MultiStream: min query count and min duration met."""
    ALL_ISSUED = "all_issued"
    """Every generated query was issued (Server, Offline, accuracy mode)."""
    RAN_OUT = "ran_out"
    TOO_MANY_OUTSTANDING = "too_many_outstanding"
    MAX_QUERY_COUNT = "max_query_count"
    MAX_DURATION = "max_duration"
    STALLED = "stalled"
    """edgeperf: SingleStream/MultiStream waited too long for the previous query; not a LoadGen condition."""
    TOO_MANY_ERRORS = "too_many_errors"
    """edgeperf: the SUT failed this many samples in a row (a dead server); not a LoadGen condition."""
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True, kw_only=True)
class EndOfRun:
    """The end condition met, with the detail-log message LoadGen writes for it."""

    reason: EndReason
    message: str
    is_error: bool
    """LoadGen logs early ends as `error_runtime` with `is_error: true`."""
    at_ns: int | None = None
    """INTERRUPTED: when the stop arrived (absolute clock ns)."""


def end_of_run(
    settings: EffectiveSettings,
    *,
    accuracy: bool,
    issued_queries: int,
    outstanding_queries: int,
    last_issue_offset_ns: int,
) -> EndOfRun | None:
    """LoadGen's checks after each issue, in its order (§6.3); None to keep issuing.

    Args:
        issued_queries: queries issued so far (coalesced queries count one by one).
        outstanding_queries: issued queries not yet fully completed.
        last_issue_offset_ns: the last issue time relative to the test start.
    """
    if accuracy:
        return None
    if settings.scenario is Scenario.SERVER:
        limit = settings.max_async_queries
        if limit is not None and outstanding_queries > limit:
            return EndOfRun(
                reason=EndReason.TOO_MANY_OUTSTANDING,
                message=(
                    "IssueQueryThread 0 Ending early: Too many outstanding queries. "
                    f"issued {issued_queries} outstanding {outstanding_queries}"
                ),
                is_error=True,
            )
    elif (
        issued_queries >= settings.min_query_count
        and last_issue_offset_ns >= settings.target_duration_ms * 1_000_000
    ):
        return EndOfRun(
            reason=EndReason.NATURAL,
            message="Ending naturally: Minimum query count and test duration met.",
            is_error=False,
        )
    if settings.max_query_count is not None and issued_queries >= settings.max_query_count:
        return EndOfRun(
            reason=EndReason.MAX_QUERY_COUNT,
            message=f"IssueQueryThread 0 Ending early: Max query count reached. query_count {issued_queries}",
            is_error=True,
        )
    if settings.max_duration_ms is not None and last_issue_offset_ns > settings.max_duration_ms * 1_000_000:
        return EndOfRun(
            reason=EndReason.MAX_DURATION,
            message=(
                f"IssueQueryThread 0 Ending early: Max test duration reached. duration_ns {last_issue_offset_ns}"
            ),
            is_error=True,
        )
    return None
