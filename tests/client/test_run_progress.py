"""The live progress display follows a run (rendered to a string console) and the pre-run explanation."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from edgeperf.client.issue.fake_sut import FakeSut, FakeSutConfig
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.settings import Scenario, TestSettings
from edgeperf.client.report.console_text import early_stopping_floor, expected_duration_s, prerun_explanation
from edgeperf.client.report.progress import ProgressDisplay
from edgeperf.client.run import run_with_sut


class Qsl:
    name = "q"
    total_sample_count = 16
    performance_sample_count = 16

    def load_samples(self, indices: object) -> None:
        pass

    def unload_samples(self, indices: object) -> None:
        pass


async def test_progress_display_shows_counts_time_qps_and_latency(tmp_path: Path) -> None:
    buffer = io.StringIO()
    display = ProgressDisplay(Console(file=buffer, width=100, force_terminal=True, color_system=None))
    display.start()
    try:
        settings = TestSettings(
            scenario=Scenario.SINGLE_STREAM,
            min_duration_ms=400,
            min_query_count=10,
            single_stream_expected_latency_ns=1_000_000.0,
        )
        await run_with_sut(
            FakeSut(FakeSutConfig(latency_ns=1_000_000)), Qsl(), settings, tmp_path, display=display
        )
    finally:
        display.stop()
    text = buffer.getvalue()
    for label in ("queries issued", "samples completed", "elapsed", "of min 0.4 s", "current QPS", "latency"):
        assert label in text
    assert "SingleStream performance" in text


def effective(scenario: Scenario, **kw: object) -> EffectiveSettings:
    return EffectiveSettings.from_requested(
        TestSettings(scenario=scenario, **kw),  # type: ignore[arg-type]
        total_sample_count=100,
        performance_sample_count=100,
    )


def test_early_stopping_floor_per_scenario() -> None:
    assert early_stopping_floor(effective(Scenario.SINGLE_STREAM)) is not None
    assert early_stopping_floor(effective(Scenario.SINGLE_STREAM))[0] == 64  # type: ignore[index]
    assert early_stopping_floor(effective(Scenario.MULTI_STREAM))[0] == 662  # type: ignore[index]
    assert early_stopping_floor(effective(Scenario.SERVER))[0] == 459  # type: ignore[index]
    assert early_stopping_floor(effective(Scenario.OFFLINE)) is None


def test_expected_duration_and_explanation_name_their_sources() -> None:
    s = effective(
        Scenario.SINGLE_STREAM,
        min_duration_ms=1000,
        min_query_count=2000,
        single_stream_expected_latency_ns=2_000_000.0,
    )
    seconds, why = expected_duration_s(s)
    assert seconds == 4.0 and "min_query_count (2000)" in why
    text = prerun_explanation(s, {"min_query_count": "user.conf:3 (*.*.min_query_count = 2000)"})
    assert "min query count    : 2000  [min_query_count <- user.conf:3" in text
    assert "early-stopping floor: 64 queries" in text
    offline = effective(Scenario.OFFLINE, min_duration_ms=1000, offline_expected_qps=500.0, min_query_count=1)
    seconds, _ = expected_duration_s(offline)
    assert seconds == 550 / 500
    assert "samples in the query: 550" in prerun_explanation(offline)
