"""Query generation before the run: loadable sets, sample indices and the Server schedule (§6, §7).

Reproduces LoadGen's `GenerateLoadableSets` and `GenerateQueries` (random draws in LoadGen's order,
from `edgeperf.client.plan.rng`), so the same seeds and settings give the same loaded set, the same sample
indices and the same Poisson schedule as the official LoadGen. Also the sequence generator and the
accuracy-log sampling of §7.6.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.rng import (
    CHUNK,
    DEFAULT_SEED,
    MT19937,
    canonical,
    exponential_intervals_ns,
    shuffle,
    uniform_ints,
)
from edgeperf.client.plan.settings import Rules, Scenario

__all__ = [
    "Schedule",
    "SequenceBlock",
    "SequenceGenerator",
    "accuracy_log_mask",
    "accuracy_log_probability",
    "generate_queries",
    "loadable_sets",
]

I64Array = npt.NDArray[np.int64]
I32Array = npt.NDArray[np.int32]


@dataclass(frozen=True, slots=True, eq=False)
class Schedule:
    """All queries of one `GenerateQueries` call, in issue order."""

    sample_indices: I32Array
    """QSL indices, int32 [n_queries, samples_per_query] (4 bytes a sample through the whole run; a QSL
    holds fewer than 2**31 samples)."""
    scheduled_offsets_ns: I64Array
    """Scheduled issue time of each query from test start, int64 [n_queries]; 0 for the first."""
    generated_query_duration_ns: int
    """LoadGen's `generated_query_duration`: the schedule time after the last query's interval."""
    generated_samples_per_query: int
    """LoadGen's `generated_samples_per_query` (v2.1 logs the effective value; current the one used)."""

    def __post_init__(self) -> None:
        # NOTE: frozen means frozen: the arrays are shared with the issue loop and the recorder.
        self.sample_indices.flags.writeable = False
        self.scheduled_offsets_ns.flags.writeable = False

    @property
    def query_count(self) -> int:
        """LoadGen's `generated_query_count`."""
        return int(self.sample_indices.shape[0])

    @property
    def sample_count(self) -> int:
        """Samples in all queries."""
        return int(self.sample_indices.size)


def loadable_sets(
    settings: EffectiveSettings, total_sample_count: int, *, accuracy: bool = False
) -> list[list[int]]:
    """LoadGen's `GenerateLoadableSets` (§6.1): the QSL indices loaded together, set by set.

    The performance set is the first. MultiStream sets carry `samples_per_query - 1` padding entries
    (copies of their first entries) after the `len(set) - padding` distribution range.

    Args:
        settings: the effective settings (seed, performance sample count, rules version).
        total_sample_count: the QSL's `TotalSampleCount()`.
        accuracy: the current version draws from `accuracy_sample_count` indices in accuracy mode and
            from `performance_sample_count` indices otherwise; v2.1 always uses the whole QSL.
    """
    if settings.performance_sample_count <= 0:
        raise ValueError("performance_sample_count must be at least 1")
    count = total_sample_count
    if settings.rules is Rules.CURRENT:
        wanted = settings.accuracy_sample_count if accuracy else settings.performance_sample_count
        count = min(wanted, total_sample_count)
    samples = list(range(count))
    shuffle(MT19937(settings.qsl_rng_seed), samples)
    size = settings.performance_sample_count
    sets = [samples[i : i + size] for i in range(0, count, size)]
    padding = _padding(settings)
    for s in sets:
        for i in range(padding):
            s.append(s[i])
    return sets


def _padding(settings: EffectiveSettings) -> int:
    return settings.samples_per_query - 1 if settings.scenario is Scenario.MULTI_STREAM else 0


def generate_queries(settings: EffectiveSettings, loaded: Sequence[int], *, accuracy: bool) -> Schedule:
    """LoadGen's `GenerateQueries` (§6.2, draw order §7.5) for one loaded set.

    Args:
        settings: the effective settings.
        loaded: one entry of `loadable_sets`, padding included.
        accuracy: accuracy mode (every sample once) rather than performance mode.

    Raises:
        ValueError: for settings on which LoadGen would read out of range or loop forever.
    """
    scenario = settings.scenario
    current = settings.rules is Rules.CURRENT
    loaded_arr = np.asarray(loaded, dtype=np.int64)
    set_size = len(loaded_arr)
    end = set_size - _padding(settings)
    if end <= 0:
        raise ValueError("the loaded set is empty")

    gen_duration_ns = (1 if scenario is Scenario.SERVER else 2) * settings.target_duration_ms * 1_000_000
    min_queries = settings.min_query_count
    spq = settings.samples_per_query
    if accuracy and scenario is Scenario.OFFLINE:
        spq = end
    if accuracy or settings.performance_issue_unique:
        gen_duration_ns = 0
        min_queries = set_size // spq

    sample_rng = MT19937(settings.sample_index_rng_seed)
    stride = spq if scenario is Scenario.MULTI_STREAM else 1
    # Draw order (§7.5): the accuracy list, the "unique" list (always), the equal-issue list (always).
    main_list: list[int] = []
    if accuracy:
        main_list = list(range(0, end, stride))
        shuffle(sample_rng, main_list)
    unique_list = list(range(0, end, stride))
    shuffle(sample_rng, unique_list)
    # NOTE: one int64 per query in a preallocated array (a Python list costs 8 bytes a query plus growth).
    equal_list = np.empty(len(range(0, min_queries, set_size)) * set_size, dtype=np.int64)
    permutation = list(range(set_size))
    for at in range(0, equal_list.shape[0], set_size):
        shuffle(sample_rng, permutation)
        equal_list[at : at + set_size] = permutation

    concat = settings.sample_concatenate_permutation
    grow_by: int | None = None
    # NOTE: v2.1 pads the Offline query in accuracy mode too; current pads only in performance mode.
    if concat and scenario is Scenario.OFFLINE and not (current and accuracy):
        spq += (set_size - spq % set_size) % set_size
    elif concat and current and not accuracy and scenario is not Scenario.OFFLINE:
        min_queries += (set_size - min_queries % set_size) % set_size
    if concat and current and scenario is not Scenario.OFFLINE:
        grow_by = set_size

    offsets, duration_ns = _timeline(settings, gen_duration_ns, min_queries, grow_by)
    n = len(offsets)

    same = settings.performance_issue_same_index
    if settings.performance_issue_same and same >= set_size:
        raise ValueError(f"performance_issue_same_index {same} is outside the loaded set ({set_size})")

    if scenario is Scenario.MULTI_STREAM:
        starts = _positions(settings, accuracy, n, main_list, unique_list, None, sample_rng, end, same)
        if int(starts.max(initial=0)) + spq > set_size:
            raise ValueError("MultiStream query runs past the padded loaded set")
        indices = loaded_arr[starts[:, None] + np.arange(spq)]
    elif scenario is Scenario.OFFLINE:
        indices = _offline(settings, loaded_arr, n, spq, sample_rng, same)
    else:
        use_equal = concat and (current or scenario is Scenario.SINGLE_STREAM)
        positions = _positions(
            settings,
            accuracy,
            n * spq,
            main_list,
            unique_list,
            equal_list if use_equal else None,
            sample_rng,
            end,
            same,
        )
        indices = loaded_arr[positions].reshape(n, spq)
        del positions
    logged_spq = spq if current else settings.samples_per_query
    return Schedule(
        sample_indices=indices.astype(np.int32),
        scheduled_offsets_ns=offsets,
        generated_query_duration_ns=duration_ns,
        generated_samples_per_query=logged_spq,
    )


def _positions(
    settings: EffectiveSettings,
    accuracy: bool,
    count: int,
    main_list: list[int],
    unique_list: list[int],
    equal_list: I64Array | None,
    rng: MT19937,
    end: int,
    same: int,
) -> I64Array:
    """Positions in the loaded set for `count` draws, with LoadGen's precedence of distributions."""
    if settings.performance_issue_unique:
        return _take_list(unique_list, count, "performance_issue_unique")
    if settings.performance_issue_same:
        return np.full(count, same, dtype=np.int64)
    if equal_list is not None:
        if not equal_list.size:
            raise ValueError("equal issue with min_query_count 0 has no permutation to read")
        if count <= equal_list.shape[0]:
            return equal_list[:count]  # a view: the caller only reads it
        reps = math.ceil(count / equal_list.shape[0])
        return np.tile(equal_list, reps)[:count]
    if accuracy:
        return _take_list(main_list, count, "accuracy mode")
    return uniform_ints(rng, 0, end - 1, count)


def _take_list(values: list[int], count: int, what: str) -> I64Array:
    if count > len(values):
        raise ValueError(f"{what}: {count} draws from a list of {len(values)} (LoadGen would throw)")
    return np.asarray(values[:count], dtype=np.int64)


def _offline(
    settings: EffectiveSettings, loaded: I64Array, n: int, spq: int, rng: MT19937, same: int
) -> I64Array:
    set_size = len(loaded)
    repeats, remainder = divmod(spq, set_size)
    rows = np.empty((n, spq), dtype=np.int64)
    for q in range(n):
        if settings.performance_issue_same:
            rows[q] = loaded[same]
            continue
        if settings.sample_concatenate_permutation:
            for r in range(repeats):
                block = loaded.tolist()
                shuffle(rng, block)
                rows[q, r * set_size : (r + 1) * set_size] = block
        else:
            rows[q, : repeats * set_size] = np.tile(loaded, repeats)
        rows[q, repeats * set_size :] = loaded[:remainder]
    return rows


def _timeline(
    settings: EffectiveSettings, gen_duration_ns: int, min_queries: int, grow_by: int | None
) -> tuple[I64Array, int]:
    """Scheduled offsets of every query and `generated_query_duration`, as GenerateQueries's loop.

    The loop runs while `prev < gen_duration or count < min_queries`; with equal issue (current) each
    time count reaches min_queries before gen_duration, min_queries grows by the set size.
    """
    if settings.scenario is Scenario.SERVER:
        rng = MT19937(settings.schedule_rng_seed)
        qps = settings.target_qps

        def intervals(out: I64Array) -> None:
            exponential_intervals_ns(rng, qps, out.shape[0], out=out)
    else:
        period_ns = int((1.0 / settings.target_qps) * 1e9)

        def intervals(out: I64Array) -> None:
            out.fill(period_ns)

        if period_ns <= 0 and gen_duration_ns > 0:
            raise ValueError(f"target_qps {settings.target_qps} gives a query period of 0 ns")

    # times[k] is the offset of query k, times[k + 1] = times[k] + interval k; `times[:filled]` is
    # computed, the array itself sized ahead (grown by doubling) so a long schedule is written in place.
    times = np.zeros(1, dtype=np.int64)
    filled = 1

    def ensure(count: int) -> None:
        nonlocal times, filled
        if count <= filled:
            return
        if count > times.shape[0]:
            grown = np.empty(count, dtype=np.int64)
            grown[:filled] = times[:filled]
            times = grown
        part = times[filled:count]
        intervals(part)
        np.cumsum(part, out=part)
        part += times[filled - 1]
        filled = count

    if gen_duration_ns <= 0:
        n = min_queries
    else:
        ensure(max(min_queries, int(gen_duration_ns * settings.target_qps / 1e9 * 1.05)) + 64)
        while times[filled - 1] < gen_duration_ns:
            ensure(2 * filled)
        # k_time: the first query scheduled at or after gen_duration; all earlier ones lie before it.
        k_time = int(np.searchsorted(times[:filled], gen_duration_ns, side="left"))
        if grow_by is not None:
            count_at_bump = max(min_queries, 1)
            while count_at_bump <= k_time:
                min_queries += grow_by
                count_at_bump = max(min_queries, count_at_bump + 1)
        n = max(min_queries, k_time + 1)
    ensure(n + 1)
    # NOTE: a view, not a copy: the few entries past n cost less than a second copy of the schedule.
    return times[:n], int(times[n])


@dataclass(frozen=True, slots=True, eq=False)
class SequenceBlock:
    """Sequence ids and accuracy-log values that LoadGen gives the samples of one schedule."""

    first_query_id: int
    first_sample_id: int
    """seq_id of the first sample; the others follow in row-major order of `sample_indices`."""
    accuracy_log_values: npt.NDArray[np.float64]
    """One `uniform_real(0, 1)` per sample from the sequence generator, shaped like `sample_indices`."""


class SequenceGenerator:
    """LoadGen's `SequenceGen`: one per StartTest, shared by the accuracy and performance runs.

    Every generated sample (issued or not) takes the next sequence id and the next value of an
    mt19937 with the default seed 5489.
    """

    def __init__(self) -> None:
        self._rng = MT19937(DEFAULT_SEED)
        self._query_id = 0
        self._sample_id = 0

    def assign(self, schedule: Schedule) -> SequenceBlock:
        """Number the queries and samples of `schedule`, as creating its QueryMetadata does."""
        values = canonical(self._rng, schedule.sample_count).reshape(schedule.sample_indices.shape)
        block = SequenceBlock(
            first_query_id=self._query_id,
            first_sample_id=self._sample_id,
            accuracy_log_values=values,
        )
        self._query_id += schedule.query_count
        self._sample_id += schedule.sample_count
        return block


def accuracy_log_probability(settings: EffectiveSettings) -> float:
    """The performance-mode logging probability, with `accuracy_log_sampling_target` applied (§7.6)."""
    target = settings.accuracy_log_sampling_target
    if target is None:
        return settings.accuracy_log_probability
    expected = int(settings.target_qps * settings.min_duration_ms / 1000)
    if settings.scenario is Scenario.OFFLINE:
        minimum = settings.min_sample_count
    else:
        expected *= settings.samples_per_query
        minimum = settings.min_query_count * settings.samples_per_query
    expected = max(expected, minimum)
    if expected == 0:
        raise ValueError("accuracy_log_sampling_target needs a non-zero expected sample count")
    return target / expected


def accuracy_log_mask(
    settings: EffectiveSettings, values: npt.NDArray[np.float64], *, accuracy: bool
) -> npt.NDArray[np.bool_]:
    """Which samples LoadGen writes to the accuracy log: all in accuracy mode, else a random subset.

    Args:
        settings: the effective settings (seed, probability, sampling target).
        values: `SequenceBlock.accuracy_log_values` of one IssueQueries call.
        accuracy: accuracy mode.
    """
    if accuracy:
        return np.ones(values.shape, dtype=np.bool_)
    offset = float(canonical(MT19937(settings.accuracy_log_rng_seed), 1)[0])
    probability = accuracy_log_probability(settings)
    mask: npt.NDArray[np.bool_] = np.empty(values.shape, dtype=np.bool_)
    flat_values, flat_mask = values.reshape(-1), mask.reshape(-1)
    # NOTE: in chunks, so a long run's mask costs its one byte a sample and no float temporaries.
    for lo in range(0, flat_values.shape[0], CHUNK):
        shifted = flat_values[lo : lo + CHUNK] + offset
        shifted = np.where(shifted < 1.0, shifted, shifted - 1.0)
        np.less_equal(shifted, probability, out=flat_mask[lo : lo + CHUNK])
    return mask
