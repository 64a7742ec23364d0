"""One benchmark run end to end: settings, QSL, SUT, schedule, issue loop, summary and logs.

`run_benchmark(options)` is the programmatic entry point (the CLI and `edgeperf suite` call it): it
connects to the server, builds the QSL (a benchmark's dataset or synthetic data shaped from the
model's metadata), and hands over to `run_with_sut`, which runs the mode (accuracy, performance, both,
or the Server peak search) against any `SystemUnderTest` and writes the logs. Both always return an
outcome for a run that started; a dead server or Ctrl-C gives an INVALID outcome with complete logs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

import numpy as np

from edgeperf.client.conf import resolve_test_settings
from edgeperf.client.errors import DatasetError, RunSetupError
from edgeperf.client.issue import CompletionTracker, EndOfRun, EndReason, issue_queries
from edgeperf.client.logs import LoadableSetLog, RunInfo, atomic_write, write_logs
from edgeperf.client.qsl import QuerySampleLibrary, RequestEncoder, SerializedQsl, SyntheticSource
from edgeperf.client.report import prerun_explanation, render_outcome
from edgeperf.client.results import RunRecorder, RunResult
from edgeperf.client.scenarios import LoopClock, make_scheduler
from edgeperf.client.scenarios.base import Clock
from edgeperf.client.scenarios.server import find_peak_qps
from edgeperf.client.schedule import (
    Schedule,
    SequenceGenerator,
    accuracy_log_mask,
    generate_queries,
    loadable_sets,
)
from edgeperf.client.settings import EffectiveSettings, Scenario, TestMode, TestSettings
from edgeperf.client.summary import PerformanceSummary, summarize
from edgeperf.client.sut import SystemUnderTest
from edgeperf.client.sut_grpc import GrpcSut, GrpcSutConfig, TlsFiles

if TYPE_CHECKING:
    from edgeperf.benchmarks.base import AccuracyReport, Benchmark, Dataset
    from edgeperf.client.progress import ProgressDisplay

__all__ = ["ModeResult", "RunOptions", "RunOutcome", "run_benchmark", "run_with_sut"]

DEFAULT_SYNTHETIC_COUNT = 64
"""Samples of `--dataset synthetic` without a count (and without a benchmark)."""
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """Everything one `edgeperf run` needs; the CLI and `edgeperf suite` both build one."""

    server: str
    """`HOST:PORT` of a KServe v2 gRPC server."""
    model: str
    """Model name on the server."""
    scenario: Scenario
    mode: TestMode | None = None
    """None: the mode the conf files give (PerformanceOnly by default)."""
    out_dir: Path = Path("results")
    """Where the MLPerf log files, result.json and accuracy.txt are written (created if missing)."""
    rules: str = "v2.1"
    """Rule preset for mlperf.conf values: `v2.1` or `current`."""
    user_conf: Path | None = None
    test_settings: TestSettings | None = None
    """Settings to use as they are instead of reading the conf files (suite and tests)."""
    mlperf_model: str | None = None
    """Model name for conf lookups; default: the benchmark's `mlperf_model`, else `model`."""
    benchmark: str | None = None
    """Name in `edgeperf.benchmarks.registry`: dataset, preprocessing, rules and accuracy come from it."""
    benchmark_size: Literal["full", "small"] = "full"
    """Size of the benchmark's stand-in the server runs (`small` for tests)."""
    dataset: str = "synthetic"
    """`synthetic[:COUNT]` or a path to the dataset in its published format."""
    streaming: bool = False
    """Send over one bidirectional ModelStreamInfer stream per channel instead of unary ModelInfer."""
    channels: int = 1
    """Separate gRPC connections, used round-robin."""
    batch_size: int = 1
    """Samples per request for multi-sample queries (Offline, MultiStream); capped by the model's max batch."""
    max_in_flight: int | None = 64
    """Requests in flight at once in Offline and accuracy passes (the window); None for unlimited. The
    Server scenario stays open-loop, as in LoadGen: its queries go out on schedule whatever is pending."""
    deadline_ms: int = 30_000
    """Per-request gRPC deadline; a sample past it is recorded as DEADLINE_EXCEEDED."""
    tls_root_cert: Path | None = None
    tls_client_cert: Path | None = None
    tls_client_key: Path | None = None
    abort_after_errors: int | None = 100
    """End the run after this many failed samples in a row (a dead server); None: never."""
    progress: bool = False
    """Show the live progress display (CLI)."""
    system_name: str = "edgeperf"
    extra_log_messages: tuple[str, ...] = field(default=())
    """Notes written into the detail log (for example the command line)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutcome:
    """What a run produced; the logs under `out_dir` say the same in MLPerf's format."""

    validity: str
    """`VALID` or `INVALID` (performance part; accuracy-only runs are VALID when every sample succeeded)."""
    invalid_reasons: tuple[str, ...]
    out_dir: Path
    files: tuple[Path, ...]
    """Every file written (summary, detail, accuracy log, result.json, accuracy.txt)."""
    summary_text: str
    """The readable summary the CLI prints."""
    result_json: dict[str, object]
    """The content of result.json."""
    accuracy: AccuracyReport | None = None
    peak_qps: float | None = None
    """FindPeakPerformance only: the highest target QPS that passed."""
    interrupted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeResult:
    """One accuracy-mode or performance-mode pass."""

    result: RunResult
    sets: tuple[LoadableSetLog, ...]
    end: EndOfRun


@dataclass(frozen=True, slots=True, kw_only=True)
class _Context:
    sut: SystemUnderTest
    qsl: QuerySampleLibrary
    clock: Clock
    drain_timeout_s: float
    abort_after_errors: int | None
    keep_data: bool
    stop: asyncio.Event | None
    display: ProgressDisplay | None


async def _until_stopped(work: Awaitable[T], stop: asyncio.Event | None) -> T:
    """Await `work`; if `stop` is set first, cancel it (the issue loop then drains and returns)."""
    task = asyncio.ensure_future(work)
    if stop is None:
        return await task
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
        return await task
    finally:
        stopper.cancel()


async def _run_mode(
    ctx: _Context, settings: EffectiveSettings, seq: SequenceGenerator, *, accuracy: bool
) -> ModeResult:
    sets = loadable_sets(settings, ctx.qsl.total_sample_count, accuracy=accuracy)
    if not accuracy:
        sets = sets[:1]
    schedules: list[Schedule] = []
    masks: list[np.ndarray] = []
    first_seq_id = -1
    for loaded in sets:
        # NOTE: LoadGen's distribution range excludes MultiStream's padding entries.
        schedule = generate_queries(settings, loaded, accuracy=accuracy)
        block = seq.assign(schedule)
        if first_seq_id < 0:
            first_seq_id = block.first_sample_id
        schedules.append(schedule)
        masks.append(accuracy_log_mask(settings, block.accuracy_log_values, accuracy=accuracy).reshape(-1))
    sizes = [s.sample_indices.shape[1] for s in schedules for _ in range(s.query_count)]
    flat_indices = np.concatenate([s.sample_indices.reshape(-1) for s in schedules])
    recorder = RunRecorder(samples_per_query=sizes, sample_indices=flat_indices, first_seq_id=first_seq_id)
    keep = np.concatenate(masks) if ctx.keep_data else None
    tracker = CompletionTracker(
        recorder,
        query_sizes=sizes,
        keep_data=keep,
        abort_after_errors=ctx.abort_after_errors,
        stall_timeout_s=ctx.drain_timeout_s,
        abort_after_silence_ns=None if ctx.abort_after_errors is None else int(ctx.drain_timeout_s * 1e9),
    )
    # NOTE: samples are loaded before the test starts, as LoadGen does (later sets between passes).
    ctx.qsl.load_samples(sets[0])
    start_ns = ctx.clock.now_ns()
    recorder.mark_start(start_ns)
    if ctx.display is not None:
        ctx.display.attach(tracker, settings, start_ns, total_queries=len(sizes), accuracy=accuracy)
    end: EndOfRun | None = None
    first_query = 0
    set_logs: list[LoadableSetLog] = []
    for set_index, (loaded, schedule) in enumerate(zip(sets, schedules, strict=True)):
        set_logs.append(
            LoadableSetLog(
                loaded_qsl_set=tuple(loaded),
                generated_query_count=schedule.query_count,
                generated_samples_per_query=schedule.generated_samples_per_query,
                generated_query_duration_ns=schedule.generated_query_duration_ns,
            )
        )
        if set_index > 0:
            ctx.qsl.load_samples(loaded)
        set_start_ns = start_ns if set_index == 0 else ctx.clock.now_ns()
        scheduler = make_scheduler(
            settings.scenario,
            start_ns=set_start_ns,
            offsets_ns=schedule.scheduled_offsets_ns.tolist(),
            progress=tracker,
            clock=ctx.clock,
        )
        end = await _until_stopped(
            issue_queries(
                ctx.sut,
                scheduler=scheduler,
                sample_indices=schedule.sample_indices,
                settings=settings,
                tracker=tracker,
                recorder=recorder,
                clock=ctx.clock,
                start_ns=set_start_ns,
                accuracy=accuracy,
                first_query=first_query,
                drain_timeout_s=ctx.drain_timeout_s,
            ),
            ctx.stop,
        )
        ctx.qsl.unload_samples(loaded)
        first_query += schedule.query_count
        if end.reason in (EndReason.INTERRUPTED, EndReason.TOO_MANY_ERRORS, EndReason.STALLED):
            break
    assert end is not None
    for t, message, is_error in tracker.events:
        recorder.record_event(
            t, "error_runtime" if is_error else "generic_message", message, is_error=is_error
        )
    recorder.record_event(
        ctx.clock.now_ns(),
        "error_runtime" if end.is_error else "generic_message",
        end.message,
        is_error=end.is_error,
    )
    if ctx.display is not None:
        ctx.display.detach()
    return ModeResult(result=recorder.finish(ctx.clock.now_ns()), sets=tuple(set_logs), end=end)


def effective_settings(requested: TestSettings, qsl: QuerySampleLibrary) -> EffectiveSettings:
    return EffectiveSettings.from_requested(
        requested,
        total_sample_count=qsl.total_sample_count,
        performance_sample_count=qsl.performance_sample_count,
    )


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
) -> RunOutcome:
    """Run `requested.mode` against `sut` and write the logs under `out_dir`.

    Args:
        score: reads the accuracy log written under `out_dir` and scores it (benchmarks); its text
            becomes `accuracy.txt`.
        stop: set it to end the run early (Ctrl-C); the outcome is then INVALID and marked interrupted.
    """
    settings = effective_settings(requested, qsl)
    ctx = _Context(
        sut=sut,
        qsl=qsl,
        clock=clock or LoopClock(),
        drain_timeout_s=drain_timeout_s,
        abort_after_errors=abort_after_errors,
        keep_data=True,
        stop=stop,
        display=display,
    )
    test_datetime = datetime.now(UTC)
    seq = SequenceGenerator()
    accuracy_run: ModeResult | None = None
    performance_run: ModeResult | None = None
    peak_qps: float | None = None
    probes: list[tuple[float, bool]] = []
    mode = settings.mode
    interrupted = False
    if mode in (TestMode.ACCURACY_ONLY, TestMode.SUBMISSION_RUN):
        accuracy_run = await _run_mode(ctx, settings, seq, accuracy=True)
        interrupted = accuracy_run.end.reason is EndReason.INTERRUPTED
    accuracy_aborted = accuracy_run is not None and accuracy_run.end.reason in (
        EndReason.TOO_MANY_ERRORS,
        EndReason.STALLED,
    )
    if mode in (TestMode.PERFORMANCE_ONLY, TestMode.SUBMISSION_RUN) and not (interrupted or accuracy_aborted):
        performance_run = await _run_mode(ctx, settings, seq, accuracy=False)
        interrupted = performance_run.end.reason is EndReason.INTERRUPTED
    if mode is TestMode.FIND_PEAK_PERFORMANCE:
        if settings.scenario is not Scenario.SERVER:
            raise RunSetupError("FindPeakPerformance applies to the Server scenario only")
        best: tuple[EffectiveSettings, ModeResult] | None = None
        last: tuple[EffectiveSettings, ModeResult] | None = None

        async def probe(qps: float) -> bool:
            nonlocal best, last, interrupted
            if interrupted:
                return False
            probe_settings = effective_settings(requested.with_changes(server_target_qps=qps), qsl)
            run = await _run_mode(ctx, probe_settings, SequenceGenerator(), accuracy=False)
            interrupted = run.end.reason is EndReason.INTERRUPTED
            last = (probe_settings, run)
            passed = summarize(probe_settings, run.result).valid and not interrupted
            if passed:
                best = (probe_settings, run)
            return passed

        peak_qps, probes = await find_peak_qps(
            probe,
            start_qps=requested.server_target_qps,
            boundary_step_size=requested.server_find_peak_qps_boundary_step_size,
            decimals_of_precision=requested.server_find_peak_qps_decimals_of_precision,
        )
        chosen = best or last
        assert chosen is not None
        settings, performance_run = chosen
    summary: PerformanceSummary | None = None
    if performance_run is not None:
        summary = summarize(settings, performance_run.result)
        if interrupted and summary.valid:
            # NOTE: a stopped run is never reported as VALID, even if what it measured would pass.
            summary = dataclasses.replace(summary, samples_ok_met=False)
    messages = [f"system: {system_name}", *info_messages]
    for qps, passed in probes:
        messages.append(f"FindPeakPerformance: target_qps {qps:g} {'passed' if passed else 'failed'}")
    if peak_qps is not None:
        messages.append(f"FindPeakPerformance: highest passing target_qps {peak_qps:g}")
    if interrupted:
        messages.append("The run was interrupted; the result is INVALID.")
    info = RunInfo(
        sut_name=sut.name,
        test_datetime=test_datetime,
        qsl_name=qsl.name,
        qsl_total_count=qsl.total_sample_count,
        qsl_performance_count=qsl.performance_sample_count,
        performance_set=performance_run.sets[0] if performance_run else None,
        accuracy_sets=accuracy_run.sets if accuracy_run else (),
        messages=tuple(messages),
    )
    files = write_logs(
        out_dir,
        settings,
        info,
        performance=performance_run.result if performance_run else None,
        summary=summary,
        accuracy=accuracy_run.result if accuracy_run else None,
    )
    written = list(files.all)
    report: AccuracyReport | None = None
    if score is not None and accuracy_run is not None and not interrupted:
        report = score(files.accuracy)
        accuracy_path = out_dir / "accuracy.txt"
        atomic_write(accuracy_path, [report.text if report.text.endswith("\n") else report.text + "\n"])
        written.append(accuracy_path)
    else:
        # NOTE: an accuracy.txt left from an earlier run in the same folder would describe other logs.
        (out_dir / "accuracy.txt").unlink(missing_ok=True)
    reasons: list[str] = []
    if summary is not None and not summary.valid:
        reasons.extend(summary.recommendations)
        if not summary.early_stopping_met and summary.early_stopping is not None:
            reasons.append("Early stopping not met: " + summary.early_stopping.detail_text.strip())
    if accuracy_run is not None and accuracy_run.result.error_count:
        reasons.append(f"{accuracy_run.result.error_count} accuracy-mode samples failed.")
    if interrupted:
        reasons.append("The run was interrupted.")
    if accuracy_aborted and mode is TestMode.SUBMISSION_RUN:
        reasons.append("The accuracy pass ended early, so the performance pass was not run.")
    if mode is TestMode.FIND_PEAK_PERFORMANCE and peak_qps is None:
        reasons.append("No target QPS passed.")
    validity = "INVALID" if reasons else "VALID"
    doc = json.loads(files.result_json.read_text(encoding="utf-8"))
    doc["run"] = {
        "validity": validity,
        "invalid_reasons": reasons,
        "interrupted": interrupted,
        "peak_qps": peak_qps,
        "end_of_run": {
            name: {"reason": r.end.reason.value, "message": r.end.message}
            for name, r in (("accuracy", accuracy_run), ("performance", performance_run))
            if r is not None
        },
        "accuracy": None
        if report is None
        else {
            "metric": report.metric,
            "value": report.value,
            "target": report.target,
            "passed": report.passed,
        },
    }
    atomic_write(files.result_json, [json.dumps(doc, indent=2, allow_nan=False) + "\n"])
    outcome = RunOutcome(
        validity=validity,
        invalid_reasons=tuple(reasons),
        out_dir=out_dir,
        files=tuple(written),
        summary_text="",
        result_json=doc,
        accuracy=report,
        peak_qps=peak_qps,
        interrupted=interrupted,
    )
    text = render_outcome(settings, summary, outcome, accuracy_run.result if accuracy_run else None)
    return dataclasses.replace(outcome, summary_text=text)


def _synthetic_count(dataset: str) -> int | None:
    """`synthetic` -> None, `synthetic:COUNT` -> COUNT; anything else is not synthetic (raises)."""
    if dataset == "synthetic":
        return None
    prefix = "synthetic:"
    if dataset.startswith(prefix):
        try:
            count = int(dataset[len(prefix) :])
        except ValueError:
            raise RunSetupError(
                f"--dataset {dataset!r}: the count after 'synthetic:' must be an integer"
            ) from None
        if count < 1:
            raise RunSetupError(f"--dataset {dataset!r}: the count must be at least 1")
        return count
    raise RunSetupError(f"--dataset {dataset!r}: without --benchmark only synthetic data is available")


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
    bench: Benchmark | None = None
    if options.benchmark is not None:
        from edgeperf.benchmarks import registry

        try:
            bench = registry.get(options.benchmark)
        except KeyError as exc:
            raise RunSetupError(str(exc.args[0])) from None
    mlperf_model = options.mlperf_model or (bench.spec.mlperf_model if bench else options.model)
    sources: dict[str, str] = {}
    if options.test_settings is not None:
        requested = options.test_settings
        if options.mode is not None:
            requested = requested.with_changes(mode=options.mode)
        if requested.scenario is not options.scenario:
            requested = requested.with_changes(scenario=options.scenario)
    else:
        resolved = resolve_test_settings(
            mlperf_model,
            options.scenario,
            rules=options.rules,
            user_conf=options.user_conf,
            mode=options.mode,
        )
        requested = resolved.settings
        sources = {k: str(v) for k, v in resolved.sources.items()}
    tls = None
    if options.tls_root_cert or options.tls_client_cert or options.tls_client_key:
        tls = TlsFiles(
            root_cert=options.tls_root_cert,
            client_cert=options.tls_client_cert,
            client_key=options.tls_client_key,
        )
    keep_data = requested.mode in (TestMode.ACCURACY_ONLY, TestMode.SUBMISSION_RUN) or (
        requested.accuracy_log_probability > 0 or requested.accuracy_log_sampling_target is not None
    )
    config = GrpcSutConfig(
        address=options.server,
        model=options.model,
        streaming=options.streaming,
        channels=options.channels,
        batch_size=options.batch_size,
        max_in_flight=(
            None
            if options.scenario is Scenario.SERVER and requested.mode is not TestMode.ACCURACY_ONLY
            else options.max_in_flight
        ),
        deadline_ms=options.deadline_ms,
        tls=tls,
        collect_data=keep_data,
    )
    async with GrpcSut(config) as sut:
        await sut.check_ready()
        signature = await sut.model_signature()
        dataset: Dataset | None = None
        if bench is not None:
            served = {t.name for t in signature.inputs}
            wanted = [t.name for t in bench.spec.inputs]
            if not set(wanted) <= served:
                raise RunSetupError(
                    f"model {options.model!r} on {options.server} has inputs {sorted(served)}, but benchmark "
                    f"{options.benchmark!r} sends {wanted}: is --model the right model?"
                )
            try:
                dataset = bench.open_dataset(options.dataset, size=options.benchmark_size)
            except (OSError, ValueError) as exc:
                raise DatasetError(f"cannot open dataset {options.dataset!r}: {exc}") from exc
            source: Dataset | SyntheticSource = dataset
            performance_count = bench.spec.qsl_size
        else:
            count = _synthetic_count(options.dataset) or DEFAULT_SYNTHETIC_COUNT
            source = SyntheticSource(signature, count)
            performance_count = count
        qsl = SerializedQsl(
            source,
            RequestEncoder(signature),
            performance_sample_count=performance_count,
            name=f"{options.benchmark or 'synthetic'} QSL",
        )
        sut.use_qsl(qsl)
        settings = effective_settings(requested, qsl)
        if announce is not None:
            announce(prerun_explanation(settings, sources))
        display: ProgressDisplay | None = None
        if options.progress:
            from edgeperf.client.progress import ProgressDisplay

            display = ProgressDisplay()
        score: Callable[[Path], AccuracyReport] | None = None
        if bench is not None and dataset is not None:
            from edgeperf.benchmarks.accuracy_log import read_accuracy_log

            bench_ok, data_ok = bench, dataset

            def score(path: Path) -> AccuracyReport:
                return bench_ok.accuracy(data_ok, read_accuracy_log(path), size=options.benchmark_size)

        messages = (
            f"edgeperf run: server {options.server} model {options.model} "
            f"{'stream' if options.streaming else 'unary'} channels {options.channels} "
            f"batch_size {options.batch_size}",
            *options.extra_log_messages,
        )
        try:
            if display is not None:
                display.start()
            outcome = await run_with_sut(
                sut,
                qsl,
                requested,
                options.out_dir,
                drain_timeout_s=options.deadline_ms / 1000 + 1.0,
                abort_after_errors=options.abort_after_errors,
                stop=stop,
                display=display,
                info_messages=messages,
                score=score,
                system_name=options.system_name,
            )
        finally:
            if display is not None:
                display.stop()
        return outcome
