"""Query generation: loadable sets, sample selection, the schedule loop and accuracy-log sampling.

Exact agreement with the official LoadGen is tested in test_oracle_schedule.py; these tests pin the
structure (§6.1, §6.2) and the examples the spec marks as checked against 6.0.17.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.rng import MT19937, canonical
from edgeperf.client.plan.schedule import (
    SequenceGenerator,
    accuracy_log_mask,
    accuracy_log_probability,
    generate_queries,
    loadable_sets,
)
from edgeperf.client.plan.settings import Rules, Scenario, TestSettings


def _settings(total: int = 2000, performance: int = 1024, **fields: Any) -> EffectiveSettings:
    fields.setdefault("rules", Rules.CURRENT)
    return EffectiveSettings.from_requested(
        TestSettings(**fields), total_sample_count=total, performance_sample_count=performance
    )


def _reference_count(
    intervals: list[int], gen_ns: int, min_queries: int, grow_by: int | None
) -> tuple[int, int]:
    """GenerateQueries's loop, written literally: (query count, generated_query_duration)."""
    count, timestamp, prev = 0, 0, 0
    while prev < gen_ns or count < min_queries:
        count += 1
        prev = timestamp
        timestamp += intervals[count - 1]
        if grow_by is not None and count >= min_queries and prev < gen_ns:
            min_queries += grow_by
    return count, timestamp


def test_loadable_sets_partition_a_shuffle_and_pad_multistream() -> None:
    settings = _settings(total=300, performance=128, scenario=Scenario.MULTI_STREAM)
    sets = loadable_sets(settings, 300, accuracy=True)
    assert [len(s) for s in sets] == [128 + 7, 128 + 7, 44 + 7]
    assert sorted(i for s in sets for i in s[: len(s) - 7]) == list(range(300))
    for s in sets:
        assert s[-7:] == s[:7]  # padding repeats the first entries
    tiny = loadable_sets(_settings(total=3, performance=3, scenario=Scenario.MULTI_STREAM), 3)
    assert len(tiny[0]) == 10 and tiny[0][3:] == tiny[0][:3] * 2 + tiny[0][:1]


def test_current_performance_set_is_a_permutation_of_the_first_indices_v2_1_of_all() -> None:
    current = loadable_sets(_settings(total=5000, performance=100, qsl_rng_seed=3), 5000)
    assert sorted(current[0]) == list(range(100)) and len(current) == 1
    v21 = loadable_sets(_settings(total=5000, performance=100, qsl_rng_seed=3, rules=Rules.V2_1), 5000)
    assert len(v21) == 50 and max(v21[0]) >= 100
    accuracy = loadable_sets(_settings(total=500, performance=100), 500, accuracy=True)
    assert [len(s) for s in accuracy] == [100] * 5


def test_single_stream_example_checked_against_6_0_17() -> None:
    # 1 ms hint, 1.5 s min duration: 2 x 1.5 s of queries at 1000 QPS, plus the query at 0.
    settings = _settings(min_duration_ms=1500, min_query_count=1024, single_stream_expected_latency_ns=1e6)
    schedule = generate_queries(settings, loadable_sets(settings, 2000)[0], accuracy=False)
    assert (schedule.query_count, schedule.generated_query_duration_ns) == (3001, 3_001_000_000)
    assert schedule.scheduled_offsets_ns[:3].tolist() == [0, 1_000_000, 2_000_000]
    assert schedule.sample_indices.shape == (3001, 1)
    with pytest.raises(ValueError, match="read-only"):
        schedule.scheduled_offsets_ns[0] = 5


def test_min_queries_win_over_duration() -> None:
    settings = _settings(min_duration_ms=10, min_query_count=500)
    schedule = generate_queries(settings, list(range(64)), accuracy=False)
    assert schedule.query_count == 500
    assert set(schedule.sample_indices.ravel().tolist()) <= set(range(64))


def test_multistream_queries_take_contiguous_samples() -> None:
    settings = _settings(total=300, performance=100, scenario=Scenario.MULTI_STREAM, min_duration_ms=100)
    loaded = loadable_sets(settings, 300)[0]
    schedule = generate_queries(settings, loaded, accuracy=False)
    position = {v: i for i, v in enumerate(loaded[:100])}
    for row in schedule.sample_indices.tolist():
        start = position[row[0]]
        assert row == loaded[start : start + 8]


def test_offline_repeats_the_loaded_set_in_order() -> None:
    settings = _settings(
        scenario=Scenario.OFFLINE, min_duration_ms=1000, offline_expected_qps=2000.0, min_query_count=1
    )
    loaded = loadable_sets(settings, 2000)[0]
    schedule = generate_queries(settings, loaded, accuracy=False)
    row = schedule.sample_indices[0].tolist()
    assert schedule.query_count == 1 and len(row) == 2200
    assert row == loaded * 2 + loaded[:152]


def test_offline_accuracy_example_checked_against_6_0_17() -> None:
    settings = _settings(scenario=Scenario.OFFLINE)
    sets = loadable_sets(settings, 2000, accuracy=True)
    schedules = [generate_queries(settings, s, accuracy=True) for s in sets]
    assert [s.sample_indices.shape for s in schedules] == [(1, 1024), (1, 976)]
    assert sorted(np.concatenate([s.sample_indices.ravel() for s in schedules]).tolist()) == list(range(2000))


@pytest.mark.parametrize("scenario", list(Scenario))
def test_accuracy_mode_issues_every_loaded_sample(scenario: Scenario) -> None:
    settings = _settings(total=250, performance=100, scenario=scenario, server_target_qps=1e5)
    issued: list[int] = []
    for s in loadable_sets(settings, 250, accuracy=True):
        schedule = generate_queries(settings, s, accuracy=True)
        issued += schedule.sample_indices.ravel().tolist()
    if scenario is Scenario.MULTI_STREAM:
        assert set(issued) == set(range(250))  # starts every spq; the last queries reach the padding
    else:
        assert sorted(issued) == list(range(250))


def test_issue_same_and_unique() -> None:
    same = _settings(
        scenario=Scenario.MULTI_STREAM, performance_issue_same=True, performance_issue_same_index=3
    )
    loaded = loadable_sets(same, 2000)[0]
    rows = generate_queries(same, loaded, accuracy=False).sample_indices
    assert (rows == np.array(loaded[3:11])).all()
    offline = _settings(
        scenario=Scenario.OFFLINE, performance_issue_same=True, performance_issue_same_index=5
    )
    assert set(generate_queries(offline, loaded[:1024], accuracy=False).sample_indices.ravel()) == {loaded[5]}
    unique = _settings(performance_issue_unique=True)
    schedule = generate_queries(unique, loaded[:1024], accuracy=False)
    assert sorted(schedule.sample_indices.ravel().tolist()) == sorted(loaded[:1024])


def test_equal_issue_single_stream_covers_permutations() -> None:
    settings = _settings(total=100, performance=100, sample_concatenate_permutation=True, min_duration_ms=50)
    loaded = loadable_sets(settings, 100)[0]
    schedule = generate_queries(settings, loaded, accuracy=False)
    assert schedule.query_count == 200
    blocks = schedule.sample_indices.reshape(2, 100)
    for block in blocks:
        assert sorted(block.tolist()) == sorted(loaded)


def test_equal_issue_pads_the_offline_query_to_whole_sets() -> None:
    offline: dict[str, Any] = {"scenario": Scenario.OFFLINE, "sample_concatenate_permutation": True}
    settings = _settings(total=300, performance=300, min_query_count=700, **offline)
    loaded = loadable_sets(settings, 300)[0]
    schedule = generate_queries(settings, loaded, accuracy=False)
    row = schedule.sample_indices[0]
    assert len(row) == 900 and schedule.generated_samples_per_query == 900
    for k in range(3):
        assert sorted(row[k * 300 : (k + 1) * 300].tolist()) == sorted(loaded)
    v21 = _settings(total=300, performance=300, min_query_count=700, rules=Rules.V2_1, **offline)
    assert generate_queries(v21, loaded, accuracy=False).generated_samples_per_query == 700  # v2.1 logs this


@pytest.mark.parametrize("seed", range(6))
def test_timeline_matches_the_literal_loop(seed: int) -> None:
    rng = np.random.default_rng(
        seed
    )  # only picks settings; the schedule itself uses edgeperf.client.plan.rng
    qps = float(rng.choice([50.0, 333.3, 1000.0]))
    grow = bool(seed % 2)
    settings = _settings(
        total=64,
        performance=int(rng.integers(7, 64)),
        scenario=Scenario.SERVER,
        server_target_qps=qps,
        min_duration_ms=int(rng.integers(0, 400)),
        min_query_count=int(rng.integers(0, 150)),
        sample_concatenate_permutation=grow,
        schedule_rng_seed=seed,
    )
    loaded = loadable_sets(settings, 64)[0]
    schedule = generate_queries(settings, loaded, accuracy=False)
    from edgeperf.client.plan.rng import exponential_intervals_ns

    intervals = exponential_intervals_ns(MT19937(seed), qps, 5000).tolist()
    min_queries = settings.min_query_count
    if grow:
        min_queries += (len(loaded) - min_queries % len(loaded)) % len(loaded)
    count, duration = _reference_count(
        intervals, settings.min_duration_ms * 1_000_000, min_queries, len(loaded) if grow else None
    )
    assert (schedule.query_count, schedule.generated_query_duration_ns) == (count, duration)
    assert schedule.scheduled_offsets_ns.tolist() == np.cumsum([0, *intervals[: count - 1]]).tolist()


def test_270k_server_queries_generate_quickly() -> None:
    settings = _settings(
        rules=Rules.V2_1,
        scenario=Scenario.SERVER,
        server_target_qps=450.0,
        min_duration_ms=600_000,
        min_query_count=270336,
        qsl_rng_seed=14284205019438841327,
        sample_index_rng_seed=4163916728725999944,
        schedule_rng_seed=299063814864929621,
    )
    loaded = loadable_sets(settings, 50000)[0]
    start = time.perf_counter()
    schedule = generate_queries(settings, loaded, accuracy=False)
    elapsed_s = time.perf_counter() - start
    assert schedule.query_count == 270336
    assert schedule.scheduled_offsets_ns.dtype == np.int64 and schedule.sample_indices.dtype == np.int32
    assert elapsed_s < 5.0, f"generating 270k Server queries took {elapsed_s:.2f} s"


def test_impossible_settings_are_errors() -> None:
    with pytest.raises(ValueError, match="outside the loaded set"):
        generate_queries(
            _settings(performance_issue_same=True, performance_issue_same_index=10),
            list(range(10)),
            accuracy=False,
        )
    with pytest.raises(ValueError, match="period of 0 ns"):
        generate_queries(_settings(single_stream_expected_latency_ns=0.5), list(range(10)), accuracy=False)
    with pytest.raises(ValueError, match="empty"):
        generate_queries(_settings(), [], accuracy=False)


def test_sequence_generator_numbers_samples_across_runs() -> None:
    settings = _settings(scenario=Scenario.MULTI_STREAM, min_duration_ms=10, min_query_count=5)
    schedule = generate_queries(settings, list(range(40)), accuracy=False)
    seq = SequenceGenerator()
    first, second = seq.assign(schedule), seq.assign(schedule)
    assert (first.first_query_id, first.first_sample_id) == (0, 0)
    assert (second.first_query_id, second.first_sample_id) == (schedule.query_count, schedule.sample_count)
    both = canonical(MT19937(5489), 2 * schedule.sample_count)
    assert np.array_equal(
        np.concatenate([first.accuracy_log_values.ravel(), second.accuracy_log_values.ravel()]), both
    )


def test_accuracy_log_sampling() -> None:
    settings = _settings(
        accuracy_log_probability=0.1, accuracy_log_rng_seed=5, min_query_count=5000, min_duration_ms=0
    )
    values = canonical(MT19937(1), 5000)
    mask = accuracy_log_mask(settings, values, accuracy=False)
    offset = canonical(MT19937(5), 1)[0]
    shifted = (values + offset) % 1.0
    assert np.array_equal(mask, shifted <= 0.1) and 300 < mask.sum() < 700
    assert accuracy_log_mask(settings, values, accuracy=True).all()
    targeted = _settings(
        scenario=Scenario.MULTI_STREAM, accuracy_log_sampling_target=4096, min_query_count=662
    )
    # expected = max(int(125 QPS x 10 s) x 8, 662 x 8) samples
    assert accuracy_log_probability(targeted) == 4096 / (1250 * 8)
    offline = _settings(scenario=Scenario.OFFLINE, accuracy_log_sampling_target=64, min_query_count=24576)
    assert accuracy_log_probability(offline) == 64 / 24576
