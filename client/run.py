"""One benchmark run against a server: options, connection, QSL, then the modes (`run_benchmark`).

`run_benchmark(options)` is the programmatic entry point (the CLI and `edgeperf suite` call it), in
named steps (`edgeperf.client.run_setup`): it resolves the settings, connects to the server, builds
the QSL (a benchmark's dataset or synthetic data shaped from the model's metadata) and hands over to `edgeperf.client.modes.run_with_sut`, which runs the
mode against any `SystemUnderTest` and writes the logs (`edgeperf.client.report.finish`). A run that started
always returns an outcome; a dead server or Ctrl-C gives an INVALID outcome with complete logs.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edgeperf.client.device_probe import prepare_device
from edgeperf.client.issue.pass_result import ModeResult
from edgeperf.client.issue.sut_grpc import GrpcSut, GrpcSutConfig
from edgeperf.client.issue.workers import default_workers
from edgeperf.client.modes import effective_settings, run_with_sut
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.qsl import SerializedQsl
from edgeperf.client.plan.scoring_deps import check_can_score
from edgeperf.client.plan.settings import TestMode, TestSettings
from edgeperf.client.report.console_text import prerun_explanation
from edgeperf.client.report.finish import write_accuracy_txt
from edgeperf.client.report.run_outcome import RunOutcome
from edgeperf.client.run_setup import (
    CONNECT_TIMEOUT_S,
    GrpcWorkerFactory,
    Requested,
    RunOptions,
    build_qsl,
    check_out_dir,
    check_same_index,
    load_benchmark,
    requested_settings,
    scorer,
    size_from_server,
    sut_config,
    wait_ready,
)

if TYPE_CHECKING:
    from edgeperf.benchmarks.base import AccuracyReport
    from edgeperf.client.report.progress import ProgressDisplay

__all__ = ["ModeResult", "RunOptions", "RunOutcome", "run_benchmark", "run_with_sut"]


async def run_benchmark(
    options: RunOptions,
    *,
    stop: asyncio.Event | None = None,
    announce: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Run one scenario in one mode against `options.server` and write its logs under `options.out_dir`.

    Args:
        stop: set it to end the run early (Ctrl-C): the outcome is INVALID, the logs complete.
        announce: receives the pre-run explanation (effective minimum queries, early-stopping floor,
            expected duration and why); the CLI prints it.

    Raises:
        RunSetupError: the options cannot make a run.
        SutError: the server cannot be reached or the model is not ready before the run starts.
        ConfigError: a conf file has a line edgeperf cannot use.
    Per-sample failures and a server dying mid-run do not raise: the outcome is INVALID with the reason.
    """
    check_out_dir(options.out_dir)
    if options.official_loadgen:
        from edgeperf.client.issue.loadgen_bridge import check_rules

        check_rules(options.rules)
    bench = load_benchmark(options)
    asked = requested_settings(options, bench)
    config = sut_config(options, asked.settings, bench)
    if bench is not None and options.size_from_server:
        options, config = await size_from_server(options, config, bench, announce)
    async with GrpcSut(config) as sut:
        await wait_ready(sut, options)
        qsl, dataset = await build_qsl(sut, options, bench)
        if dataset is not None and asked.settings.mode in (TestMode.ACCURACY_ONLY, TestMode.SUBMISSION_RUN):
            check_can_score(dataset, options.benchmark)
        sut.use_qsl(qsl)
        requested = await _warm_up(sut, qsl, asked, options, announce)
        settings = effective_settings(requested, qsl)
        check_same_index(settings, asked.origins)
        if announce is not None:
            announce(prerun_explanation(settings, asked.sources))
        ready = _Ready(
            sut=sut, qsl=qsl, requested=requested, score=scorer(bench, dataset, options), stop=stop
        )
        if options.official_loadgen:
            return await _run_official(ready, options.out_dir)
        return await _run_timed(ready, settings, config, options, announce)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Ready:
    """What either path runs with: the SUT with its QSL in use, the settings asked for, the scorer and
    the caller's stop event."""

    sut: GrpcSut
    qsl: SerializedQsl
    requested: TestSettings
    score: Callable[[Path], AccuracyReport] | None
    stop: asyncio.Event | None


async def _warm_up(
    sut: GrpcSut,
    qsl: SerializedQsl,
    asked: Requested,
    options: RunOptions,
    announce: Callable[[str], None] | None,
) -> TestSettings:
    """A development run (a user.conf, no caller's settings) measures its expected latency or QPS."""
    if options.user_conf is None or options.test_settings is not None:
        return asked.settings
    from edgeperf.client.warmup import tune_expected

    tuned = await tune_expected(
        sut, qsl, asked.settings, asked.origins, options.user_conf, timeout_s=options.deadline_ms / 1000
    )
    if tuned.field is not None:
        asked.sources[tuned.field] = "warm-up"
    if tuned.note and announce is not None:
        announce(tuned.note)
    return tuned.settings


async def _run_timed(
    ready: _Ready,
    settings: EffectiveSettings,
    config: GrpcSutConfig,
    options: RunOptions,
    announce: Callable[[str], None] | None,
) -> RunOutcome:
    """The device checks (power, network), then the modes through edgeperf's own issue loop."""
    sut, qsl, requested, score, stop = ready.sut, ready.qsl, ready.requested, ready.score, ready.stop
    display: ProgressDisplay | None = None
    if options.progress:
        from edgeperf.client.report.progress import ProgressDisplay

        display = ProgressDisplay()
    messages = (
        f"edgeperf run: server {options.server} model {options.model} "
        f"{'stream' if options.streaming else 'unary'} channels {options.channels} "
        f"batch_size {options.batch_size}",
        *options.extra_log_messages,
    )
    workers = options.workers if options.workers is not None else default_workers(settings)
    side = sut.side_channel()
    try:
        device = await prepare_device(
            side,
            sut.metadata,
            options,
            settings,
            qsl.encoder,
            qsl.source,
            min(options.deadline_ms / 1000, CONNECT_TIMEOUT_S),
        )
        if announce is not None:
            for line in device.lines:
                announce(line)
        if display is not None:
            display.start()
        return await run_with_sut(
            sut,
            qsl,
            requested,
            options.out_dir,
            drain_timeout_s=options.deadline_ms / 1000 + 1.0,
            # NOTE: a dead link: nothing answers for one deadline, and the run ends then (README).
            silence_timeout_s=options.deadline_ms / 1000,
            abort_after_errors=options.abort_after_errors,
            stop=stop,
            display=display,
            info_messages=messages,
            score=score,
            system_name=options.system_name,
            workers=workers,
            # NOTE: the payload encoder is a closure (it does not pickle); each worker makes its own.
            worker_factory=(
                GrpcWorkerFactory(options, dataclasses.replace(config, log_payload=None))
                if workers > 1
                else None
            ),
            power=device.power,
            power_note=device.power_note,
            network=device.network,
        )
    finally:
        if display is not None:
            display.stop()
        await side.close()


async def _run_official(ready: _Ready, out_dir: Path) -> RunOutcome:
    from edgeperf.client.issue.loadgen_bridge import run_official

    requested, score = ready.requested, ready.score
    official = await run_official(ready.sut, ready.qsl, requested, out_dir, stop=ready.stop)
    validity = str(official.detail.get("result_validity", "VALID"))
    reasons: list[str] = []
    if official.interrupted:
        validity = "INVALID"
        reasons.append("Run interrupted by the user; the result is INVALID.")
    elif validity != "VALID":
        reasons.append(
            str(official.detail.get("result_invalid_reason", "the official LoadGen reported INVALID"))
        )
    if official.failed_samples:
        # NOTE: LoadGen has no notion of a failed sample; edgeperf still refuses to call such a run VALID.
        validity = "INVALID"
        reasons.append(f"{official.failed_samples} samples failed at the SUT")
    files, summary_text = await asyncio.to_thread(_official_files, out_dir)
    accuracy: AccuracyReport | None = None
    accuracy_log = out_dir / "mlperf_log_accuracy.json"
    scored = requested.mode in (TestMode.ACCURACY_ONLY, TestMode.SUBMISSION_RUN)
    if score is not None and scored and not official.interrupted:
        accuracy = await asyncio.to_thread(score, accuracy_log)
        accuracy_txt = out_dir / "accuracy.txt"
        await asyncio.to_thread(write_accuracy_txt, accuracy_txt, accuracy)
        files.append(accuracy_txt)
    return RunOutcome(
        validity=validity,
        invalid_reasons=tuple(reasons),
        out_dir=out_dir,
        files=tuple(files),
        summary_text=summary_text,
        result_json={
            "tool": "mlperf_loadgen",
            "failed_samples": official.failed_samples,
            "interrupted": official.interrupted,
            "detail": official.detail,
        },
        accuracy=accuracy,
        interrupted=official.interrupted,
    )


def _official_files(out_dir: Path) -> tuple[list[Path], str]:
    files = [p for p in sorted(out_dir.glob("mlperf_log_*")) if p.is_file()]
    summary = out_dir / "mlperf_log_summary.txt"
    return files, summary.read_text(encoding="utf-8") if summary.is_file() else ""
