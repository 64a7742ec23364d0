"""FindPeakPerformance against the official LoadGen: the same probes, to every digit LoadGen logs.

Both SUTs pass or fail each probe on cue (probes are counted by FlushQueries, which LoadGen and
edgeperf call once per probe), so the search, not the machine's speed, decides the probed QPS. Every
probe has 4 queries, far too few for early stopping at p99: LoadGen's probes pass on the latency
bound alone, and so must edgeperf's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from edgeperf.client.issue.fake_sut import FakeSut, FakeSutConfig
from edgeperf.client.modes import run_with_sut
from edgeperf.client.plan.settings import Rules, Scenario, TestMode, TestSettings
from tests.client.oracle_run import run_oracle
from tests.client.test_run import ListQsl

# base, 3 widenings pass, 800 fails, then the bisection: the peak 437.6953125 of the issue's example
PATTERN = [True] * 4 + [False] * 4 + [True] * 2 + [False] * 5 + [True] + [False]
SLOW_MS = 200
SETTINGS = {
    "server_target_qps": 50.0,
    "min_duration_ms": 0,
    "min_query_count": 4,
    "server_target_latency_ns": 120_000_000,
    "server_find_peak_qps_decimals_of_precision": 1,
    "server_find_peak_qps_boundary_step_size": 1.0,
}


class CuedSut(FakeSut):
    """Answers probe k's samples at once when PATTERN[k], else after SLOW_MS."""

    def __init__(self) -> None:
        super().__init__(FakeSutConfig(latency_ns=self._latency))
        self.probes = 0

    def _latency(self, index: int) -> int:
        fast = self.probes < len(PATTERN) and PATTERN[self.probes]
        return 0 if fast else SLOW_MS * 1_000_000

    async def flush_queries(self) -> None:
        self.probes += 1


def _official(tmp_path: Path) -> dict[str, object]:
    spec = {
        "workdir": str(tmp_path / "official"),
        "pattern": PATTERN,
        "slow_ms": SLOW_MS,
        "settings": SETTINGS,
    }
    result: dict[str, object] = run_oracle("find_peak_oracle.py", spec, tmp_path)
    return result


def _official_probes(messages: list[str]) -> tuple[list[str], str]:
    probes: list[str] = []
    peak = ""
    for message in messages:
        if (
            (
                m := re.fullmatch(
                    r"FindPeakPerformance: Check validity of the base settings field: (\S+)", message
                )
            )
            or (m := re.fullmatch(r"FindBoundaries: Checking fields \[\S+, (\S+)\)", message))
            or (
                m := re.fullmatch(
                    r"FindPeakPerformanceBinarySearch: Testing the mid value .*\): (\S+)", message
                )
            )
        ):
            probes.append(m[1])
        elif m := re.fullmatch(r"FindPeakPerformance: Found peak performance field: (\S+)", message):
            peak = m[1]
    return probes, peak


async def test_find_peak_probes_and_peak_equal_the_official_loadgen(tmp_path: Path) -> None:
    official = _official(tmp_path)
    messages = official["messages"]
    assert isinstance(messages, list)
    official_probes, official_peak = _official_probes(messages)
    assert official["probes"] == len(PATTERN) == len(official_probes)
    assert official_peak == "437.695312"

    sut = CuedSut()
    requested = TestSettings(
        scenario=Scenario.SERVER, mode=TestMode.FIND_PEAK_PERFORMANCE, rules=Rules.CURRENT, **SETTINGS
    )
    outcome = await run_with_sut(sut, ListQsl(64, 64), requested, tmp_path / "edgeperf")
    assert sut.probes == len(PATTERN)
    detail = [
        json.loads(line.removeprefix(":::MLLOG "))
        for line in (tmp_path / "edgeperf" / "mlperf_log_detail.txt").read_text().splitlines()
    ]
    probed = [
        float(d["value"].rsplit(" ", 1)[1])
        for d in detail
        if d["key"] == "generic_message" and d["value"].startswith("FindPeakPerformance: probing target_qps ")
    ]
    # std::to_string prints 6 decimals; edgeperf keeps every digit (437.6953125)
    assert [f"{q:.6f}" for q in probed] == official_probes
    assert outcome.peak_qps == 437.6953125 and f"{outcome.peak_qps:.6f}" == official_peak
    # the reported probe is INVALID for early stopping, in both
    assert official["validity"] == ["INVALID"] and outcome.validity == "INVALID"
