"""One benchmark run against a server: options, connection, QSL, then the modes (`run_benchmark`).

`run_benchmark(options)` is the programmatic entry point (the CLI and `edgeperf suite` call it): it
resolves the settings, connects to the server, builds the QSL (a benchmark's dataset or synthetic data
shaped from the model's metadata) and hands over to `edgeperf.client.modes.run_with_sut`, which runs the
mode against any `SystemUnderTest` and writes the logs (`edgeperf.client.report.finish`). A run that started
always returns an outcome; a dead server or Ctrl-C gives an INVALID outcome with complete logs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from edgeperf.client.device_probe import prepare_device
from edgeperf.client.errors import QslError, RunSetupError, ServerUnavailable
from edgeperf.client.issue.network import DEFAULT_PINGS
from edgeperf.client.issue.pass_result import ModeResult
from edgeperf.client.issue.sut import SystemUnderTest
from edgeperf.client.issue.sut_grpc import GrpcSut, GrpcSutConfig, TlsFiles
from edgeperf.client.issue.workers import default_workers
from edgeperf.client.modes import effective_settings, run_with_sut
from edgeperf.client.plan.conf import ConfigError, ConfigSource, resolve_test_settings
from edgeperf.client.plan.qsl import QuerySampleLibrary, RequestEncoder, SerializedQsl, SyntheticSource
from edgeperf.client.plan.scoring_deps import check_can_score
from edgeperf.client.plan.settings import EffectiveSettings, Scenario, TestMode, TestSettings
from edgeperf.client.report.console_text import prerun_explanation
from edgeperf.client.report.finish import write_accuracy_txt
from edgeperf.client.report.run_outcome import RunOutcome

if TYPE_CHECKING:
    from edgeperf.benchmarks.base import AccuracyReport, Benchmark, Dataset, Size
    from edgeperf.client.report.progress import ProgressDisplay

__all__ = ["ModeResult", "RunOptions", "RunOutcome", "run_benchmark", "run_with_sut"]

DEFAULT_SYNTHETIC_COUNT = 64
"""Samples of `--dataset synthetic` without a count (and without a benchmark)."""


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
    size_from_server: bool = False
    """Take the size from the served model's config (`edgeperf_size`, written by `edgeperf-server build`)
    instead of `benchmark_size`, which stays the fallback for models without it (official files: full)."""
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
    Server scenario has its own cap, `server_max_in_flight`."""
    workers: int | None = None
    """Processes that issue a Server or Offline performance pass (`edgeperf.client.issue.workers`); None:
    for Server, enough for the target rate (one per `WORKER_QPS` queries a second, at most one per
    CPU); 1 for the other scenarios (Offline's requests are batched and windowed)."""
    server_max_in_flight: int | None = 1024
    """The Server scenario's transport cap on requests in flight, which bounds the client's memory when
    the server falls behind: a query over it waits for a free slot (issued late, counted in the client
    self-check and reported), never dropped or CANCELLED. None: unlimited (open loop)."""
    deadline_ms: int = 30_000
    """Per-request gRPC deadline; a sample past it is recorded as DEADLINE_EXCEEDED."""
    tls_root_cert: Path | None = None
    tls_client_cert: Path | None = None
    tls_client_key: Path | None = None
    auth_token: str | None = None
    """Bearer token for a server started with --auth-token."""
    official_loadgen: bool = False
    """Let the official LoadGen (`mlperf_loadgen`) schedule and time the run through the same gRPC SUT and
    QSL; its own files are the logs (written by LoadGen itself, not atomically)."""
    abort_after_errors: int | None = 100
    """End the run after this many failed samples in a row (a dead server); None: never."""
    progress: bool = False
    """Show the live progress display (CLI)."""
    system_name: str = "edgeperf"
    power: bool = True
    """Measure the server's power over the performance pass when it has a power source."""
    network_pings: int = DEFAULT_PINGS
    """Round trips timed before the run (empty and with the run's request size); 0 skips the network check."""
    extra_log_messages: tuple[str, ...] = field(default=())
    """Notes written into the detail log (for example the command line)."""


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


CONNECT_TIMEOUT_S = 10.0
"""How long the readiness checks before a run may take (capped by --deadline-ms)."""


def _check_out_dir(out_dir: Path) -> None:
    """Refuse, before the run, an `--out` the logs could not be written into (found out only after it)."""
    existing = out_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "" if existing == out_dir else f" ({existing} is a file)"
        raise RunSetupError(f"--out {out_dir}: not a folder{where}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunSetupError(f"--out {out_dir}: {existing} is not writable")


def _check_fits(encoder: RequestEncoder, dataset: Dataset, options: RunOptions) -> None:
    """One benchmark sample through the encoder before the run: a stand-in of the other size fails here."""
    try:
        sample = dataset.sample(0)
    except (ValueError, OSError) as exc:  # NOTE: a file of the dataset that cannot be read or decoded
        raise QslError(f"dataset {options.dataset}: sample 0: {exc}") from None
    try:
        encoder.encode_sample(sample, 0)
    except QslError as exc:
        other = "small" if options.benchmark_size == "full" else "full"
        raise RunSetupError(
            f"{exc}: model {options.model!r} on {options.server} does not take benchmark {options.benchmark!r} "
            f"at --size {options.benchmark_size}; if the server was built with --size {other}, pass --size {other}"
        ) from None


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
    _check_out_dir(options.out_dir)
    if options.official_loadgen:
        from edgeperf.client.issue.loadgen_bridge import check_rules

        check_rules(options.rules)
    bench: Benchmark | None = None
    if options.benchmark is not None:
        from edgeperf.benchmarks import registry

        try:
            bench = registry.get(options.benchmark)
        except KeyError as exc:
            raise RunSetupError(str(exc.args[0])) from None
    mlperf_model = options.mlperf_model or (bench.spec.mlperf_model if bench else options.model)
    sources: dict[str, str] = {}
    origins: Mapping[str, ConfigSource | str] = {}
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
        origins = resolved.sources
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
            options.server_max_in_flight
            if options.scenario is Scenario.SERVER and requested.mode is not TestMode.ACCURACY_ONLY
            else options.max_in_flight
        ),
        deadline_ms=options.deadline_ms,
        tls=tls,
        auth_token=options.auth_token,
        collect_data=keep_data,
        log_payload=_payload_encoder(bench, options.benchmark_size),
    )
    if bench is not None and options.size_from_server:
        # NOTE: the size shapes the SUT's accuracy payload (RetinaNet's box scale), so it is read first.
        async with GrpcSut(config) as probe:
            await _wait_ready(probe, options)
            served = (await probe.model_parameters()).get("edgeperf_size")
        if served in ("full", "small") and served != options.benchmark_size:
            options = dataclasses.replace(options, benchmark_size="small" if served == "small" else "full")
            config = dataclasses.replace(config, log_payload=_payload_encoder(bench, options.benchmark_size))
        if announce is not None and served in ("full", "small"):
            announce(
                f"--size {served}: from the config of model {options.model} on the server (edgeperf_size)"
            )
    async with GrpcSut(config) as sut:
        await _wait_ready(sut, options)
        qsl, dataset = await _build_qsl(sut, options, bench)
        if dataset is not None and requested.mode in (TestMode.ACCURACY_ONLY, TestMode.SUBMISSION_RUN):
            check_can_score(dataset, options.benchmark)
        sut.use_qsl(qsl)
        if options.user_conf is not None and options.test_settings is None:
            from edgeperf.client.warmup import tune_expected

            tuned = await tune_expected(
                sut, qsl, requested, origins, options.user_conf, timeout_s=options.deadline_ms / 1000
            )
            requested = tuned.settings
            if tuned.field is not None:
                sources[tuned.field] = "warm-up"
            if tuned.note and announce is not None:
                announce(tuned.note)
        settings = effective_settings(requested, qsl)
        _check_same_index(settings, origins)
        if announce is not None:
            announce(prerun_explanation(settings, sources))
        display: ProgressDisplay | None = None
        if options.progress:
            from edgeperf.client.report.progress import ProgressDisplay

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
        workers = options.workers if options.workers is not None else default_workers(settings)
        if options.official_loadgen:
            return await _run_official(sut, qsl, requested, options.out_dir, score, stop)
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
            outcome = await run_with_sut(
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
                    _GrpcWorkerFactory(options, dataclasses.replace(config, log_payload=None))
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
        return outcome


def _check_same_index(settings: EffectiveSettings, origins: Mapping[str, ConfigSource | str]) -> None:
    """Refuse a repeated sample outside the loaded set, where the setting was written.

    LoadGen logs `error_invalid_test_settings` and runs on, indexing past the set; edgeperf stops
    before the run, naming the file and line (or the argument) the index came from.

    Raises:
        ConfigError: the index came from a conf file.
        RunSetupError: it came from the caller's TestSettings.
    """
    same = settings.performance_issue_same_index
    loaded = min(settings.performance_sample_count, settings.qsl_total_sample_count)
    if settings.requested.mode is TestMode.ACCURACY_ONLY or not settings.requested.performance_issue_same:
        return
    if same < loaded:
        return
    reason = (
        f"the repeated sample must be in the loaded set of {loaded} samples (indices 0 to {loaded - 1}); "
        "lower it or raise performance_sample_count_override"
    )
    origin = origins.get("performance_issue_same_index")
    if isinstance(origin, ConfigSource):
        raise ConfigError(origin.path, origin.line_no, origin.key, f"{same}: {reason}")
    raise RunSetupError(f"performance_issue_same_index {same}: {reason}")


async def _wait_ready(sut: GrpcSut, options: RunOptions) -> None:
    # NOTE: an address that accepts TCP but never answers gRPC (a stopped or wrong process) would
    # otherwise wait for gRPC's 20 s connection timeout, or longer.
    connect_s = min(options.deadline_ms / 1000, CONNECT_TIMEOUT_S)
    try:
        await asyncio.wait_for(sut.check_ready(), connect_s)
    except TimeoutError:
        raise ServerUnavailable(
            f"no answer from {options.server} within {connect_s:g} s: is it an edgeperf or Triton gRPC "
            "server, and is it running?",
            status="DEADLINE_EXCEEDED",
        ) from None


def _payload_encoder(bench: Benchmark | None, size: Size) -> Callable[[bytes, int], bytes] | None:
    """A benchmark logs its reference SUT's payload, so that the reference accuracy script scores
    edgeperf's mlperf_log_accuracy.json as edgeperf does; other models log their raw outputs."""
    if bench is None:
        return None
    chosen = bench

    def encode(raw: bytes, qsl_idx: int) -> bytes:
        return chosen.log_payload(raw, qsl_idx, size=size)

    return encode


async def _build_qsl(
    sut: GrpcSut, options: RunOptions, bench: Benchmark | None
) -> tuple[SerializedQsl, Dataset | None]:
    """The QSL of `options` shaped from the served model (the parent and every `--workers` process)."""
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
        missing = set(bench.spec.response_outputs) - {t.name for t in signature.outputs}
        if missing:
            raise RunSetupError(
                f"model {options.model!r} on {options.server} has no outputs {sorted(missing)}, which "
                f"benchmark {options.benchmark!r} requests (outputs: {[t.name for t in signature.outputs]})"
            )
        try:
            dataset = bench.open_dataset(options.dataset, size=options.benchmark_size)
        except (OSError, ValueError) as exc:
            raise QslError(f"cannot open dataset {options.dataset!r}: {exc}") from exc
        source: Dataset | SyntheticSource = dataset
        performance_count = bench.spec.qsl_size
    else:
        count = _synthetic_count(options.dataset) or DEFAULT_SYNTHETIC_COUNT
        source = SyntheticSource(signature, count)
        performance_count = count
    # NOTE: a benchmark names the outputs it scores (ResNet50: ArgMax:0, not the 1001-float softmax),
    # so the server sends and the accuracy log keeps only those; () asks for every output.
    outputs = bench.spec.response_outputs if bench is not None else ()
    encoder = RequestEncoder(signature, requested_outputs=outputs)
    if dataset is not None and len(dataset) > 0:
        _check_fits(encoder, dataset, options)
    qsl = SerializedQsl(
        source,
        encoder,
        performance_sample_count=performance_count,
        name=f"{options.benchmark or 'synthetic'} QSL",
    )
    return qsl, dataset


@dataclass(frozen=True, slots=True)
class _GrpcWorkerFactory:
    """Opens the run's SUT and QSL again inside a `--workers` process (pickled to it)."""

    options: RunOptions
    config: GrpcSutConfig

    def __call__(self) -> AbstractAsyncContextManager[tuple[SystemUnderTest, QuerySampleLibrary]]:
        return _open_worker(self.options, self.config)


@asynccontextmanager
async def _open_worker(
    options: RunOptions, config: GrpcSutConfig
) -> AsyncIterator[tuple[SystemUnderTest, QuerySampleLibrary]]:
    bench: Benchmark | None = None
    if options.benchmark is not None:
        from edgeperf.benchmarks import registry

        bench = registry.get(options.benchmark)
    config = dataclasses.replace(config, log_payload=_payload_encoder(bench, options.benchmark_size))
    async with GrpcSut(config) as sut:
        qsl, _ = await _build_qsl(sut, options, bench)
        sut.use_qsl(qsl)
        yield sut, qsl


async def _run_official(
    sut: GrpcSut,
    qsl: SerializedQsl,
    requested: TestSettings,
    out_dir: Path,
    score: Callable[[Path], AccuracyReport] | None,
    stop: asyncio.Event | None,
) -> RunOutcome:
    from edgeperf.client.issue.loadgen_bridge import run_official

    official = await run_official(sut, qsl, requested, out_dir, stop=stop)
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
