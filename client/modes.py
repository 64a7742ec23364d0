"""The test modes against any `SystemUnderTest`: accuracy and performance passes and the Server peak search.

`run_with_sut` runs `requested.mode` (AccuracyOnly, PerformanceOnly, SubmissionRun or
FindPeakPerformance) pass by pass (`edgeperf.client.issue.passes.run_mode`), and hands what
they produced to `edgeperf.client.report.finish.finish_run`, which writes the logs. It always returns an
outcome for a run that started; a dead server or a stop request gives an INVALID outcome with complete logs.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from edgeperf.client.errors import RunSetupError
from edgeperf.client.issue.pass_result import LoadableSetLog, ModeResult, ModeRuns
from edgeperf.client.issue.passes import PassContext, run_mode
from edgeperf.client.issue.sut import SystemUnderTest
from edgeperf.client.issue.workers import SutFactory, check_workers
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.peak_search import find_peak_qps
from edgeperf.client.plan.qsl import QuerySampleLibrary
from edgeperf.client.plan.scenarios import LoopClock
from edgeperf.client.plan.scenarios.base import Clock
from edgeperf.client.plan.schedule import SequenceGenerator
from edgeperf.client.plan.settings import Scenario, TestMode, TestSettings
from edgeperf.client.report.finish import finish_run
from edgeperf.client.report.metrics import summarize
from edgeperf.client.report.run_outcome import RunOutcome

if TYPE_CHECKING:
    from edgeperf.benchmarks.base import AccuracyReport
    from edgeperf.client.issue.network import NetworkReport
    from edgeperf.client.issue.power import PowerMonitor
    from edgeperf.client.report.progress import ProgressDisplay

__all__ = ["effective_settings", "run_mode", "run_with_sut"]


def effective_settings(requested: TestSettings, qsl: QuerySampleLibrary) -> EffectiveSettings:
    return EffectiveSettings.from_requested(
        requested,
        total_sample_count=qsl.total_sample_count,
        performance_sample_count=qsl.performance_sample_count,
    )


async def _find_peak(ctx: PassContext, settings: EffectiveSettings) -> ModeRuns:
    """LoadGen's FindPeakPerformanceMode: every probe a performance pass on one sequence generator.

    A probe passes when it meets the latency bound (`PerfConstraintsMet`); min duration, min queries and
    early stopping decide only the reported run's validity, as in LoadGen. Only the effective target QPS
    changes between probes (LoadGen edits `TestSettingsInternal`), so the requested settings logged are
    the user's. The reported run is the highest passing probe (the start probe when none passed).
    """
    if settings.server_find_peak_qps_boundary_step_size <= 0:
        # NOTE: LoadGen would widen the bound forever.
        raise RunSetupError(
            "FindPeakPerformance needs server_find_peak_qps_boundary_step_size above 0, not "
            f"{settings.server_find_peak_qps_boundary_step_size!r}"
        )
    seq = SequenceGenerator()
    best: tuple[EffectiveSettings, ModeResult] | None = None
    last: tuple[EffectiveSettings, ModeResult] | None = None
    probe_sets: list[tuple[float, LoadableSetLog]] = []

    async def probe(qps: float) -> bool:
        nonlocal best, last
        if last is not None and (last[1].interrupted or last[1].aborted):
            return False
        probe_settings = dataclasses.replace(settings, target_qps=qps)
        run = await run_mode(ctx, probe_settings, seq, accuracy=False)
        last = (probe_settings, run)
        probe_sets.append((qps, run.sets[0]))
        summary = summarize(probe_settings, run.result)
        passed = summary.perf_constraints_met and not run.interrupted and not run.aborted
        if passed:
            best = (probe_settings, run)
        return passed

    peak_qps, probes = await find_peak_qps(
        probe,
        start_qps=settings.target_qps,
        boundary_step_size=settings.server_find_peak_qps_boundary_step_size,
        decimals_of_precision=settings.server_find_peak_qps_decimals_of_precision,
    )
    # NOTE: when the start fails the search stops there, so the last probe is the start probe.
    chosen = best or last
    assert chosen is not None and last is not None
    chosen_settings, performance = chosen
    if (last[1].interrupted or last[1].aborted) and performance is not last[1]:
        # NOTE: a stop or a dead SUT ends the whole search; the reported pass carries it (INVALID).
        performance = dataclasses.replace(
            performance, end=last[1].end, interrupted_after_s=last[1].interrupted_after_s
        )
    return ModeRuns(
        settings=chosen_settings,
        performance=performance,
        peak_qps=peak_qps,
        probes=tuple(probes),
        probe_sets=tuple(probe_sets),
    )


async def _run_modes(ctx: PassContext, settings: EffectiveSettings, requested: TestSettings) -> ModeRuns:
    mode = settings.mode
    if mode is TestMode.FIND_PEAK_PERFORMANCE:
        if settings.scenario is not Scenario.SERVER:
            raise RunSetupError("FindPeakPerformance applies to the Server scenario only")
        return await _find_peak(ctx, settings)
    seq = SequenceGenerator()
    accuracy: ModeResult | None = None
    performance: ModeResult | None = None
    if mode in (TestMode.ACCURACY_ONLY, TestMode.SUBMISSION_RUN):
        accuracy = await run_mode(ctx, settings, seq, accuracy=True)
    accuracy_ended = accuracy is not None and (accuracy.interrupted or accuracy.aborted)
    if mode in (TestMode.PERFORMANCE_ONLY, TestMode.SUBMISSION_RUN) and not accuracy_ended:
        performance = await run_mode(ctx, settings, seq, accuracy=False)
    return ModeRuns(settings=settings, accuracy=accuracy, performance=performance)


async def run_with_sut(
    sut: SystemUnderTest,
    qsl: QuerySampleLibrary,
    requested: TestSettings,
    out_dir: Path,
    *,
    clock: Clock | None = None,
    drain_timeout_s: float = 30.0,
    abort_after_errors: int | None = 100,
    stop: asyncio.Event | None = None,
    display: ProgressDisplay | None = None,
    info_messages: tuple[str, ...] = (),
    score: Callable[[Path], AccuracyReport] | None = None,
    system_name: str = "edgeperf",
    workers: int = 1,
    worker_factory: SutFactory | None = None,
    silence_timeout_s: float | None = None,
    power: PowerMonitor | None = None,
    power_note: str | None = None,
    network: NetworkReport | None = None,
) -> RunOutcome:
    """Run `requested.mode` against `sut` and write the logs under `out_dir`.

    Args:
        score: reads the accuracy log written under `out_dir` and scores it (benchmarks); its text
            becomes `accuracy.txt`.
        stop: set it to end the run early (Ctrl-C); the outcome is then INVALID and marked interrupted.
        workers: processes that issue a Server or Offline performance pass (`edgeperf.client.issue.workers`);
            each opens its own SUT and QSL with `worker_factory`.
        silence_timeout_s: end a pass once samples fail and none has succeeded for this long (a dead link
            or hung server; the request deadline); None: `drain_timeout_s`.
        power: measures the server's power over each performance pass; without it `power_note` says why.
        network: the network characterised before the run, recorded beside the results.
    """
    settings = effective_settings(requested, qsl)
    check_workers(settings, workers)
    if workers > 1 and worker_factory is None:
        raise RunSetupError("workers > 1 needs a worker_factory that opens the SUT in each process")
    own_clock: LoopClock | None = None
    if clock is None:
        clock = own_clock = LoopClock()
    ctx = PassContext(
        sut=sut,
        qsl=qsl,
        clock=clock,
        drain_timeout_s=drain_timeout_s,
        abort_after_errors=abort_after_errors,
        stop=stop,
        display=None if workers > 1 else display,
        workers=workers,
        factory=worker_factory,
        silence_timeout_s=silence_timeout_s,
        power=power,
    )
    # NOTE: the logger's start: every detail line's time_ms and both power windows count from it.
    log_start_ns = clock.now_ns()
    test_datetime = datetime.now(UTC)
    header_ns = clock.now_ns() - log_start_ns
    try:
        runs = await _run_modes(ctx, settings, requested)
    finally:
        if own_clock is not None:
            own_clock.close()
    return finish_run(
        runs,
        out_dir,
        sut_name=sut.name,
        qsl_name=qsl.name,
        qsl_total_count=qsl.total_sample_count,
        qsl_performance_count=qsl.performance_sample_count,
        test_datetime=test_datetime,
        log_start_ns=log_start_ns,
        header_ns=header_ns,
        messages=(f"system: {system_name}", *info_messages),
        score=score,
        power_note=power_note,
        network=network,
    )
