"""What every log writer shares: the run header, the not-official notice, LoadGen's number formats, atomic writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from edgeperf.client.files import atomic_write, file_mode
from edgeperf.client.issue.pass_result import LoadableSetLog

__all__ = [
    "MAX_ERROR_LINES",
    "NOT_OFFICIAL_NOTICE",
    "LoadableSetLog",
    "RunInfo",
    "atomic_write",
    "cpp_double",
    "file_mode",
    "fixed",
]

NOT_OFFICIAL_NOTICE = (
    "NOTE - produced by edgeperf, a LoadGen-compatible load generator. These are not official MLPerf "
    "results. MLPerf is a trademark of MLCommons; official results come only from the official MLPerf LoadGen."
)
MAX_ERROR_LINES = 100
"""Distinct failure messages listed one by one; the rest are counted together."""


def cpp_double(value: float) -> str:
    """A double as a C++ ostream prints it by default (``%g``, 6 significant digits): 1e+06, 0.9, 835.116."""
    return f"{value:g}"


def fixed(value: float, decimals: int = 2) -> str:
    """LoadGen's ``DoubleToString`` (fixed notation)."""
    return f"{value:.{decimals}f}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo:
    """What the log header needs beyond settings and results.

    Attributes:
        sut_name: the SUT's name (``sut_name``, ``SUT name :``).
        test_datetime: wall-clock start of the test, timezone-aware (logged only, never used for timing).
        qsl_name, qsl_total_count, qsl_performance_count: what the QSL reported.
        performance_set: the performance-mode loadable set, if a performance run happened.
        accuracy_sets: the accuracy-mode loadable sets, in order, if an accuracy run happened.
        version: edgeperf's version, written as ``loadgen_version``.
        messages: extra ``generic_message`` lines (e.g. the command line).
    """

    sut_name: str
    test_datetime: datetime
    qsl_name: str = "edgeperf QSL"
    qsl_total_count: int = 0
    qsl_performance_count: int = 0
    get_sut_name_duration_ns: int = 0
    performance_set: LoadableSetLog | None = None
    accuracy_sets: tuple[LoadableSetLog, ...] = ()
    probe_sets: tuple[tuple[float, LoadableSetLog], ...] = ()
    """FindPeakPerformance: each probe's target QPS and set, in order (logged instead of `performance_set`)."""
    log_start_ns: int | None = None
    """Clock ns of the logger's start, at `test_datetime`: every line's time_ms counts from it across
    passes, and power_begin/power_end are `test_datetime` plus the offset, as in LoadGen. None: each
    pass's lines count from that pass's start (logs written from results alone)."""
    header_ns: int = 0
    """When the header lines (version, settings) were logged, ns after `log_start_ns`."""
    version: str = "edgeperf"
    messages: tuple[str, ...] = field(default=())
    extra_detail: tuple[tuple[str, object], ...] = field(default=())
    extra_summary: tuple[str, ...] = field(default=())
    """Lines of the summary's edgeperf section (power, network), after LoadGen's sections."""
    """Further ``edgeperf_*`` detail-log records after the performance results (the client self-check)."""
