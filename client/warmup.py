"""A short warm-up before a development run: expected latency or QPS measured instead of guessed.

LoadGen generates a run's queries from the *expected* latency (SingleStream, MultiStream) or QPS
(Offline): a model faster than expected runs out of queries before `min_duration` and the run is INVALID
("Decrease the expected latency ..."). Runs with a `--user-conf` (short development runs) whose user.conf
leaves that setting to the rule preset take it from a few warm-up queries instead, and say so; a value
the user wrote is kept, with a warning when the warm-up says the run will end too early.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgeperf.client.issue.sut import QuerySample, QuerySampleResponse, SystemUnderTest
from edgeperf.client.plan.conf import ConfigSource
from edgeperf.client.plan.qsl import QuerySampleLibrary
from edgeperf.client.plan.settings import Scenario, TestMode, TestSettings

__all__ = ["Tuned", "tune_expected"]

WARMUP_QUERIES = 16
"""Queries timed one after another (SingleStream, MultiStream)."""
WARMUP_SAMPLES = 64
"""Samples in the one Offline warm-up query."""
OFFLINE_TRIES = 4
WARMUP_BUDGET_NS = 2_000_000_000
"""No more Offline warm-up queries once they took this long together (a slow model)."""
LATENCY_MARGIN = 0.5
"""Expected latency = this x the measured median: LoadGen then generates twice the queries min_duration needs."""
QPS_MARGIN = 2.0
"""Expected QPS = this x the measured throughput: the coalesced query outlasts min_duration."""

_FIELDS = {
    Scenario.SINGLE_STREAM: ("single_stream_expected_latency_ns", "target_latency"),
    Scenario.MULTI_STREAM: ("multi_stream_expected_latency_ns", "target_latency"),
    Scenario.OFFLINE: ("offline_expected_qps", "target_qps"),
}


@dataclass(frozen=True, slots=True)
class Tuned:
    settings: TestSettings
    note: str
    """One line for the pre-run explanation, or empty when nothing was measured."""
    field: str | None = None
    """The setting taken from the warm-up, if one was."""


async def _query(sut: SystemUnderTest, samples: Sequence[QuerySample], timeout_s: float) -> int:
    """Issue one query and wait for every answer; its duration in ns."""
    pending = {s.id for s in samples}
    done = asyncio.Event()

    def complete(responses: Sequence[QuerySampleResponse], completed_ns: int) -> None:
        pending.difference_update(r.id for r in responses)
        if not pending:
            done.set()

    start_ns = time.perf_counter_ns()
    await sut.issue_query(samples, complete)
    await asyncio.wait_for(done.wait(), timeout_s)
    return time.perf_counter_ns() - start_ns


async def tune_expected(
    sut: SystemUnderTest,
    qsl: QuerySampleLibrary,
    requested: TestSettings,
    origins: Mapping[str, ConfigSource | str],
    user_conf: Path,
    *,
    timeout_s: float,
) -> Tuned:
    """`requested` with the expected latency/QPS from a warm-up, where the user's conf did not set it."""
    fields = _FIELDS.get(requested.scenario)
    if fields is None or requested.mode not in (TestMode.PERFORMANCE_ONLY, TestMode.SUBMISSION_RUN):
        return Tuned(requested, "")
    field, key = fields
    origin = origins.get(field)
    user_set = isinstance(origin, ConfigSource) and Path(origin.path) == user_conf
    count = min(qsl.total_sample_count, WARMUP_SAMPLES)
    indices = list(range(count))
    qsl.load_samples(indices)
    try:
        if requested.scenario is Scenario.OFFLINE:
            # NOTE: the first query pays for connections and first batches; the fastest of a few counts.
            best_ns, spent_ns = 0, 0
            for _ in range(OFFLINE_TRIES):
                elapsed_ns = await _query(sut, [QuerySample(i, i) for i in indices], timeout_s)
                best_ns = elapsed_ns if not best_ns else min(best_ns, elapsed_ns)
                spent_ns += elapsed_ns
                if spent_ns > WARMUP_BUDGET_NS:
                    break
            measured = count / max(best_ns, 1) * 1e9
            value = QPS_MARGIN * measured
            seen = f"{measured:.1f} samples/s"
            samples = max(requested.min_query_count, 1.1 * requested.min_duration_ms / 1000 * value)
            # NOTE: the pre-run estimate divides by the expected QPS; the measured rate says how long it takes.
            seen += f"; at that rate the run takes ~{samples / measured:.1f} s"
            too_high = requested.offline_expected_qps * 1.1 < measured
        else:
            per_query = (
                requested.multi_stream_samples_per_query if requested.scenario is Scenario.MULTI_STREAM else 1
            )
            times = []
            for q in range(WARMUP_QUERIES):
                picked = [
                    QuerySample(q * per_query + j, indices[(q * per_query + j) % count])
                    for j in range(per_query)
                ]
                times.append(await _query(sut, picked, timeout_s))
            measured = sorted(times)[len(times) // 2]
            value = max(LATENCY_MARGIN * measured, 1.0)
            seen = f"median latency {measured / 1e6:.3f} ms"
            current = getattr(requested, field)
            too_high = current > 2 * measured
    except (TimeoutError, OSError):
        return Tuned(requested, "")  # NOTE: the run itself will report what is wrong with the server
    finally:
        qsl.unload_samples(indices)
    shown = f"{value:.1f}" if requested.scenario is Scenario.OFFLINE else f"{value / 1e6:.4g}"
    line = f"*.{requested.scenario.value}.{key} = {shown}"
    if user_set:
        if not too_high:
            return Tuned(requested, "")
        return Tuned(
            requested,
            f"warning: warm-up {seen}: with {user_conf}'s {key} the run will run out of queries before "
            f"min_duration (INVALID); write `{line}` there instead",
        )
    return Tuned(
        requested.with_changes(**{field: value}),
        f"{key} from a warm-up ({seen}): `{line}`; write it in {user_conf} to choose it yourself",
        field,
    )
