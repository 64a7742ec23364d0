"""The detail log's layout around the passes, against the official LoadGen 6.0.17.

Per loadable set LoadGen logs loaded_qsl_set, the generated_* keys and a power_begin/power_end pair
(the wall clock when that set's issuing began, and that plus the time to its last completion); time_ms
runs from the logger's start across passes; num_errors comes with the performance summary, so an
AccuracyOnly run has none. edgeperf runs the same settings through its own issue loop and must log the
same sequence of these keys, with the same loaded sets, power windows that bracket each timed pass,
and time_ms that never restarts.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from edgeperf.client.issue.fake_sut import FakeSut
from edgeperf.client.modes import run_with_sut
from edgeperf.client.plan.settings import Rules, Scenario, TestMode, TestSettings
from tests.client.oracle_run import run_oracle
from tests.client.test_run import ListQsl

LAYOUT_KEYS = {
    "loaded_qsl_set",
    "generated_query_count",
    "generated_samples_per_query",
    "generated_query_duration",
    "power_begin",
    "power_end",
    "result_validity",
    "num_errors",
}
SETTINGS: dict[str, Any] = {
    "min_duration_ms": 50,
    "min_query_count": 64,
    "single_stream_expected_latency_ns": 100_000,
}
TOTAL, PERFORMANCE = 20, 8


def _official(tmp_path: Path, mode: str) -> list[list[Any]]:
    spec = {
        "workdir": str(tmp_path / f"official-{mode}"),
        "total": TOTAL,
        "performance": PERFORMANCE,
        "settings": {"scenario": "SingleStream", "mode": mode, **SETTINGS},
    }
    lines: list[list[Any]] = run_oracle("detail_layout_oracle.py", spec, tmp_path, mode)
    return lines


async def _edgeperf(tmp_path: Path, mode: TestMode) -> list[list[Any]]:
    requested = TestSettings(scenario=Scenario.SINGLE_STREAM, mode=mode, rules=Rules.CURRENT, **SETTINGS)
    out = tmp_path / f"edgeperf-{mode.value}"
    await run_with_sut(FakeSut(), ListQsl(TOTAL, PERFORMANCE), requested, out)
    lines = []
    for line in (out / "mlperf_log_detail.txt").read_text().splitlines():
        record = json.loads(line.removeprefix(":::MLLOG "))
        lines.append([record["key"], record["value"], record["time_ms"]])
    return lines


def _layout(lines: list[list[Any]]) -> list[tuple[str, Any]]:
    return [(k, v if k == "loaded_qsl_set" else None) for k, v, _ in lines if k in LAYOUT_KEYS]


def _power(value: str) -> datetime:
    return datetime.strptime(value + "+0000", "%m-%d-%Y %H:%M:%S.%f%z")


@pytest.mark.parametrize("mode", [TestMode.SUBMISSION_RUN, TestMode.ACCURACY_ONLY])
async def test_detail_layout_and_power_windows_match_the_official_loadgen(
    tmp_path: Path, mode: TestMode
) -> None:
    official = _official(tmp_path, mode.value)
    mine = await _edgeperf(tmp_path, mode)
    assert _layout(mine) == _layout(official)
    assert ("num_errors" in [k for k, _, _ in mine]) is (mode is TestMode.SUBMISSION_RUN)

    # time_ms runs from the logger's start: nothing at 0 before the run, never going back
    times = [t for _, _, t in mine]
    assert times[0] > 0 and times == sorted(times)
    # each set's power window starts after the previous one ended: the performance pass's window
    # brackets that pass only, not the accuracy pass before it
    windows = [
        (_power(mine[i][1]), _power(mine[i + 1][1])) for i, (k, _, _) in enumerate(mine) if k == "power_begin"
    ]
    assert len(windows) == (4 if mode is TestMode.SUBMISSION_RUN else 3)
    for (begin, end), (next_begin, _) in itertools.pairwise(windows):
        assert begin <= end <= next_begin
    starts = [t for k, _, t in mine if k == "loaded_qsl_set"]
    powers = [t for k, _, t in mine if k == "power_begin"]
    assert all(s <= p for s, p in zip(starts, powers, strict=True))
