"""A performance pass from `--workers N` processes, shaped like a one-process pass (`ModeResult`).

`edgeperf.client.issue.passes.run_mode` hands a Server or Offline performance pass here when more than one
worker was asked for; `edgeperf.client.issue.workers` runs the processes and merges their columns.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import numpy.typing as npt

from edgeperf.client.issue.loop import EndReason
from edgeperf.client.issue.pass_result import LoadableSetLog, ModeResult, with_active_time
from edgeperf.client.issue.recorder import RecorderColumns, RunRecorder
from edgeperf.client.issue.selfcheck import client_check, issue_delays_ns
from edgeperf.client.issue.workers import SutFactory, WorkerJob, run_workers
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.schedule import Schedule
from edgeperf.client.plan.settings import Scenario

__all__ = ["run_pass_with_workers"]


async def run_pass_with_workers(
    factory: SutFactory,
    workers: int,
    settings: EffectiveSettings,
    *,
    loaded: list[int],
    schedule: Schedule,
    keep: npt.NDArray[np.bool_] | None,
    first_seq_id: int,
    drain_timeout_s: float,
    abort_after_errors: int | None,
    stop: asyncio.Event | None,
) -> ModeResult:
    """One performance pass of `schedule` over the loadable set `loaded`, issued by `workers` processes."""
    indices = schedule.sample_indices
    n_queries, spq = int(indices.shape[0]), int(indices.shape[1])

    def make_recorder(columns: RecorderColumns) -> RunRecorder:
        return RunRecorder(
            samples_per_query=spq,
            n_queries=n_queries,
            sample_indices=indices.reshape(-1),
            first_seq_id=first_seq_id,
            columns=columns,
        )

    # NOTE: the real monotonic clock: it is the one every worker process shares.
    clock_ns = time.perf_counter_ns
    job = WorkerJob(
        factory=factory,
        settings=settings,
        offsets_ns=schedule.scheduled_offsets_ns,
        sample_indices=indices,
        loaded=tuple(loaded),
        keep=keep,
        drain_timeout_s=drain_timeout_s,
        abort_after_errors=abort_after_errors,
    )
    recorder, run = await run_workers(job, workers, make_recorder=make_recorder, now_ns=clock_ns, stop=stop)
    for t, message, is_error in run.events:
        recorder.record_event(
            t, "error_runtime" if is_error else "generic_message", message, is_error=is_error
        )
    end = run.end
    end_ns = clock_ns()
    recorder.record_event(
        end_ns, "error_runtime" if end.is_error else "generic_message", end.message, is_error=end.is_error
    )
    result = recorder.finish(end_ns)
    delays = issue_delays_ns(result.issued_ns, result.scheduled_ns)
    queries = np.arange(delays.size)
    mine = [
        delays[queries % workers == w] if settings.scenario is Scenario.SERVER else delays
        for w in range(len(run.costs))
    ]
    check = client_check(
        delays,
        list(zip(run.costs, mine, strict=True)),
        samples=result.n_samples,
        late_counts=settings.scenario is Scenario.SERVER,
        in_flight_cap=run.in_flight_cap,
        in_flight_overflow=run.in_flight_overflow,
    )
    stopped_ns = end.at_ns if end.reason is EndReason.INTERRUPTED else None
    return ModeResult(
        result=result,
        sets=with_active_time(
            [
                LoadableSetLog(
                    loaded_qsl_set=tuple(loaded),
                    generated_query_count=schedule.query_count,
                    generated_samples_per_query=schedule.generated_samples_per_query,
                    generated_query_duration_ns=schedule.generated_query_duration_ns,
                    start_ns=run.start_ns,
                )
            ],
            [schedule],
            result,
        ),
        end=end,
        interrupted_after_s=None if stopped_ns is None else max(stopped_ns - run.start_ns, 0) / 1e9,
        client=check,
    )
