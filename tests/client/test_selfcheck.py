"""The client self-check: in result.json, the detail log and the console; a slow client is named first;
the garbage collector is restored after the timed section; per-query state is a few fixed bytes."""

from __future__ import annotations

import gc
import json
import re
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgeperf.client.issue.fake_sut import FakeSut, FakeSutConfig
from edgeperf.client.issue.recorder import RunRecorder
from edgeperf.client.issue.selfcheck import GC_THRESHOLD_TIMED, TimedSection
from edgeperf.client.issue.sut import QuerySample, QuerySamplesComplete
from edgeperf.client.issue.tracker import CompletionTracker
from edgeperf.client.plan.settings import Scenario
from edgeperf.client.run import run_with_sut
from tests.client.test_run import ListQsl, settings


def _detail(path: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for line in (path / "mlperf_log_detail.txt").read_text().splitlines():
        record = json.loads(line.removeprefix(":::MLLOG "))
        out[record["key"]] = record["value"]
    return out


async def test_every_result_carries_the_self_check(tmp_path: Path) -> None:
    outcome = await run_with_sut(
        FakeSut(FakeSutConfig(latency_ns=100_000)), ListQsl(), settings(Scenario.SERVER), tmp_path
    )
    assert outcome.validity == "VALID", outcome.summary_text
    check = outcome.client
    assert check is not None and check.queries == 500
    doc = json.loads((tmp_path / "result.json").read_text())["run"]["client"]
    assert doc["queries"] == 500 and doc["cpu_per_query_us"] > 0
    assert doc["samples"] == 500 and doc["cpu_per_sample_us"] == doc["cpu_per_query_us"]
    assert doc["issue_delay_p99_ns"] >= doc["issue_delay_p50_ns"]
    assert 0.0 <= doc["late_share"] <= 1.0 and doc["in_flight_overflow"] == 0
    # NOTE: the same percentile as the summary's issue delay, so the two never disagree.
    issue_delay = json.loads((tmp_path / "result.json").read_text())["issue_delay_ns"]
    assert doc["issue_delay_p99_ns"] == issue_delay["p99_ns"]
    detail = _detail(tmp_path)
    assert detail["edgeperf_issue_delay_p99_ns"] == doc["issue_delay_p99_ns"]
    assert detail["edgeperf_late_query_share"] == round(doc["late_share"], 6)
    # NOTE: whether this run's client kept up depends on the (shared) machine; the keys must agree.
    assert detail["edgeperf_client_bottleneck"] is doc["bottleneck"]
    assert "edgeperf_client_cpu_per_query_us" in detail
    assert "Client self-check:" in outcome.summary_text


class SlowClientSut(FakeSut):
    """Burns the issuing thread for 2 ms per query: a client that cannot keep a 3,000 QPS schedule."""

    async def issue_query(self, samples: Sequence[QuerySample], complete: QuerySamplesComplete) -> None:
        until = time.perf_counter() + 0.002
        while time.perf_counter() < until:
            pass
        await super().issue_query(samples, complete)


async def test_a_client_that_falls_behind_says_so_first(tmp_path: Path) -> None:
    outcome = await run_with_sut(
        SlowClientSut(FakeSutConfig(latency_ns=100_000)),
        ListQsl(),
        settings(Scenario.SERVER, server_target_latency_ns=5_000_000, min_query_count=300),
        tmp_path,
    )
    assert outcome.validity == "INVALID"
    assert outcome.client is not None and outcome.client.bottleneck
    # NOTE: "client machine" when the shared test machine starved the issuing thread of CPU meanwhile.
    assert re.match(r"The client( machine)? was the bottleneck: ", outcome.invalid_reasons[0])
    assert _detail(tmp_path)["edgeperf_client_bottleneck"] is True
    assert re.search(r"INVALID because: The client( machine)? was the bottleneck", outcome.summary_text)


def test_the_timed_section_restores_the_collector() -> None:
    before = gc.get_threshold()
    with TimedSection() as section:
        assert gc.get_threshold() == GC_THRESHOLD_TIMED
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert section.cost is not None and section.cost.wall_s >= 0


def test_per_query_state_is_a_few_fixed_bytes() -> None:
    n = 200_000
    indices = np.arange(n, dtype=np.int64).reshape(n, 1)
    tracemalloc.start()
    try:
        recorder = RunRecorder(samples_per_query=1, n_queries=n, sample_indices=indices.reshape(-1))
        tracker = CompletionTracker(recorder)
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert tracker.total_queries == n
    assert used / n <= 64, f"{used / n:.1f} bytes per query"
