"""Loaded sets, sample indices, Server schedules and accuracy-log picks equal the official LoadGen's.

Each case runs `mlperf_loadgen` 6.0.17 in a fresh process (oracle/loadgen_oracle.py) with a Python SUT
that completes every query inline, and records the `s.index` list of every IssueQuery call, the detail
log (`loaded_qsl_set`, `generated_query_count`, `generated_samples_per_query`,
`generated_query_duration`), the accuracy-log seq_ids and, for Server, the trace's Sample start times
(the scheduled times, exact to the ns). The settings are set as TestSettings attributes, so the wheel's
built-in mlperf.conf plays no part. The wheel is the current LoadGen: the cases use `Rules.CURRENT`,
except the `v2.1` ones, whose settings (no equal issue, QSL total = performance count) make v2.1 and
current generate the same queries.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.schedule import (
    SequenceGenerator,
    accuracy_log_mask,
    generate_queries,
    loadable_sets,
)
from edgeperf.client.plan.settings import Rules, Scenario, TestMode, TestSettings
from tests.client.oracle_run import run_oracle

pytestmark = pytest.mark.oracle

SEEDS = {
    "qsl_rng_seed": 2085463073848966840,
    "sample_index_rng_seed": 2747215439041700203,
    "schedule_rng_seed": 16159082839903944936,
}


@dataclass(frozen=True)
class Case:
    scenario: Scenario
    mode: TestMode
    total: int
    performance: int
    settings: dict[str, Any] = field(default_factory=dict)
    rules: Rules = Rules.CURRENT
    trace: bool = False


CASES: dict[str, Case] = {
    "single_stream": Case(
        Scenario.SINGLE_STREAM,
        TestMode.PERFORMANCE_ONLY,
        2000,
        1024,
        {"min_duration_ms": 1500, "min_query_count": 1024, "single_stream_expected_latency_ns": 1e6},
    ),
    "multi_stream": Case(
        Scenario.MULTI_STREAM,
        TestMode.PERFORMANCE_ONLY,
        500,
        100,
        {"min_duration_ms": 500, "min_query_count": 300, "multi_stream_expected_latency_ns": 2e6},
    ),
    "server": Case(
        Scenario.SERVER,
        TestMode.PERFORMANCE_ONLY,
        2000,
        1024,
        {
            "min_duration_ms": 300,
            "min_query_count": 100,
            "server_target_qps": 1000.0,
            "accuracy_log_probability": 0.1,
            "accuracy_log_rng_seed": 720381539243781796,
        },
        trace=True,
    ),
    "offline": Case(
        Scenario.OFFLINE,
        TestMode.PERFORMANCE_ONLY,
        2000,
        1024,
        {"min_duration_ms": 1000, "min_query_count": 1000, "offline_expected_qps": 2000.0},
    ),
    "single_stream_accuracy": Case(Scenario.SINGLE_STREAM, TestMode.ACCURACY_ONLY, 300, 128),
    "multi_stream_accuracy": Case(Scenario.MULTI_STREAM, TestMode.ACCURACY_ONLY, 300, 128),
    "server_accuracy": Case(
        Scenario.SERVER, TestMode.ACCURACY_ONLY, 200, 128, {"server_target_qps": 20000.0}, trace=True
    ),
    "offline_accuracy": Case(Scenario.OFFLINE, TestMode.ACCURACY_ONLY, 2000, 1024),
    "single_stream_equal_issue": Case(
        Scenario.SINGLE_STREAM,
        TestMode.PERFORMANCE_ONLY,
        300,
        100,
        {"min_duration_ms": 1000, "min_query_count": 64, "sample_concatenate_permutation": True},
    ),
    "server_equal_issue": Case(
        Scenario.SERVER,
        TestMode.PERFORMANCE_ONLY,
        100,
        64,
        {
            "min_duration_ms": 200,
            "min_query_count": 100,
            "server_target_qps": 1000.0,
            "sample_concatenate_permutation": True,
        },
        trace=True,
    ),
    "multi_stream_equal_issue_same": Case(
        Scenario.MULTI_STREAM,
        TestMode.PERFORMANCE_ONLY,
        300,
        50,
        {
            "min_duration_ms": 200,
            "min_query_count": 30,
            "multi_stream_expected_latency_ns": 4e6,
            "sample_concatenate_permutation": True,
            "performance_issue_same": True,
            "performance_issue_same_index": 3,
        },
    ),
    "offline_equal_issue": Case(
        Scenario.OFFLINE,
        TestMode.PERFORMANCE_ONLY,
        500,
        300,
        {
            "min_duration_ms": 100,
            "min_query_count": 700,
            "offline_expected_qps": 10.0,
            "sample_concatenate_permutation": True,
        },
    ),
    "single_stream_unique_sampling_target": Case(
        Scenario.SINGLE_STREAM,
        TestMode.PERFORMANCE_ONLY,
        400,
        256,
        {
            "performance_issue_unique": True,
            "accuracy_log_sampling_target": 40,
            "accuracy_log_rng_seed": 7,
            "min_duration_ms": 100,
            "min_query_count": 100,
        },
    ),
    "multi_stream_submission_run": Case(
        Scenario.MULTI_STREAM,
        TestMode.SUBMISSION_RUN,
        150,
        64,
        {
            "min_duration_ms": 100,
            "min_query_count": 40,
            "accuracy_log_probability": 0.25,
            "accuracy_log_rng_seed": 99,
        },
    ),
    "v2.1_single_stream": Case(
        Scenario.SINGLE_STREAM,
        TestMode.PERFORMANCE_ONLY,
        1024,
        1024,
        {"min_duration_ms": 600, "min_query_count": 1024, "single_stream_expected_latency_ns": 1e6},
        rules=Rules.V2_1,
    ),
    "v2.1_server": Case(
        Scenario.SERVER,
        TestMode.PERFORMANCE_ONLY,
        64,
        64,
        {"min_duration_ms": 200, "min_query_count": 150, "server_target_qps": 1500.0},
        rules=Rules.V2_1,
        trace=True,
    ),
}


def _spec(name: str, case: Case, workdir: Path) -> dict[str, Any]:
    settings = {"scenario": case.scenario.value, "mode": case.mode.value, **SEEDS, **case.settings}
    return {
        "workdir": str(workdir / name),
        "total": case.total,
        "performance": case.performance,
        "settings": settings,
        "trace": case.trace,
    }


def _run(spec: dict[str, Any], workdir: Path, name: str) -> dict[str, Any]:
    result: dict[str, Any] = run_oracle("loadgen_oracle.py", spec, workdir, name)
    return result


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    # NOTE: one fresh process per case (LoadGen state is process-wide), all started at once.
    workdir = tmp_path_factory.mktemp("oracle")
    with ThreadPoolExecutor(max_workers=len(CASES)) as pool:
        futures = {
            name: pool.submit(_run, _spec(name, case, workdir), workdir, name) for name, case in CASES.items()
        }
        return {name: future.result() for name, future in futures.items()}


def _effective(case: Case) -> EffectiveSettings:
    values: dict[str, Any] = {**SEEDS, **case.settings}
    requested = TestSettings(scenario=case.scenario, mode=case.mode, rules=case.rules, **values)
    return EffectiveSettings.from_requested(
        requested, total_sample_count=case.total, performance_sample_count=case.performance
    )


@pytest.mark.parametrize("name", list(CASES))
def test_queries_match_loadgen(name: str, oracle: dict[str, dict[str, Any]]) -> None:
    case = CASES[name]
    got = oracle[name]
    detail = got["detail"]
    settings = _effective(case)
    runs = {
        TestMode.ACCURACY_ONLY: [True],
        TestMode.PERFORMANCE_ONLY: [False],
        TestMode.SUBMISSION_RUN: [True, False],
    }[case.mode]

    loaded: list[list[int]] = []
    schedules = []
    sequence = SequenceGenerator()
    logged_seq_ids: list[int] = []
    for accuracy in runs:
        sets = loadable_sets(settings, case.total, accuracy=accuracy)
        for loaded_set in sets if accuracy else sets[:1]:
            schedule = generate_queries(settings, loaded_set, accuracy=accuracy)
            block = sequence.assign(schedule)
            mask = accuracy_log_mask(settings, block.accuracy_log_values, accuracy=accuracy)
            logged_seq_ids += (block.first_sample_id + np.flatnonzero(mask.ravel())).tolist()
            loaded.append(loaded_set)
            schedules.append(schedule)

    assert detail["loaded_qsl_set"] == loaded
    _assert_effective_keys(detail, settings)
    assert detail["generated_query_count"] == [s.query_count for s in schedules]
    assert detail["generated_samples_per_query"] == [s.generated_samples_per_query for s in schedules]
    assert detail["generated_query_duration"] == [s.generated_query_duration_ns for s in schedules]

    expected = [row for s in schedules for row in s.sample_indices.tolist()]
    issued = got["issued"]
    if case.scenario in (Scenario.SINGLE_STREAM, Scenario.MULTI_STREAM) and runs == [False]:
        # A loaded machine may end the run naturally before the generated queries run out.
        assert len(issued) >= settings.min_query_count
        assert issued == expected[: len(issued)]
    else:
        assert issued == expected
    # Only completed samples reach the accuracy log; sequence ids count every generated sample.
    # The issued queries are a prefix of the generated ones, so their samples are seq_ids 0..n-1.
    issued_samples = sum(len(q) for q in issued)
    assert sorted(got["accuracy_seq_ids"]) == [i for i in logged_seq_ids if i < issued_samples]

    if case.scenario is Scenario.SERVER:
        # Sample events start at each query's scheduled time; per loadable set, relative to its first.
        starts = got["trace_sample_ts_ns"]
        first = 0
        for schedule in schedules:
            times = [starts[str(first + i)] for i in range(schedule.query_count)]
            assert [t - times[0] for t in times] == schedule.scheduled_offsets_ns.tolist()
            first += schedule.sample_count
        assert first == len(starts)


def _assert_effective_keys(detail: dict[str, list[Any]], settings: EffectiveSettings) -> None:
    """Every effective_* key LoadGen logs equals the EffectiveSettings field (doubles print 6 digits)."""
    keys = [k for k in detail if k.startswith("effective_")]
    assert len(keys) >= 24
    for key in keys:
        name = key.removeprefix("effective_").replace("test_mode", "mode")
        mine = getattr(settings, name)
        mine = 0 if mine is None else getattr(mine, "value", mine)
        theirs = detail[key][0]
        if isinstance(mine, float):
            assert theirs == pytest.approx(mine, rel=1e-5), key
        else:
            assert theirs == mine, key


def test_the_cases_exercise_what_they_claim(oracle: dict[str, dict[str, Any]]) -> None:
    # Guards against a case silently degenerating: equal issue grows the Server query count past the
    # time-based count, accuracy mode spans several loadable sets, and the log sampling picks some.
    server = oracle["server_equal_issue"]["detail"]
    assert server["generated_query_count"][0] % 64 == 0
    assert len(oracle["single_stream_accuracy"]["detail"]["loaded_qsl_set"]) == 3
    picked = len(oracle["server"]["accuracy_seq_ids"])
    assert 0 < picked < len(oracle["server"]["issued"])
