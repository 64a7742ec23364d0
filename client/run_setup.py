"""Before a run: `RunOptions` and what is made from them: settings, the SUT's config, the QSL.

`edgeperf.client.run.run_benchmark` calls these steps in order; each `--workers` process opens its SUT
and QSL again with `GrpcWorkerFactory`."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from edgeperf.client.connection_args import Connection
from edgeperf.client.errors import QslError, RunSetupError, ServerUnavailable
from edgeperf.client.issue.network import DEFAULT_PINGS
from edgeperf.client.issue.sut import SystemUnderTest
from edgeperf.client.issue.sut_grpc import GrpcSut, GrpcSutConfig
from edgeperf.client.plan.conf import ConfigError, ConfigSource, resolve_test_settings
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.qsl import QuerySampleLibrary, RequestEncoder, SerializedQsl, SyntheticSource
from edgeperf.client.plan.settings import Scenario, TestMode, TestSettings

if TYPE_CHECKING:
    from edgeperf.benchmarks.base import AccuracyReport, Benchmark, Dataset, Size

__all__ = [
    "CONNECT_TIMEOUT_S",
    "GrpcWorkerFactory",
    "Requested",
    "RunOptions",
    "build_qsl",
    "check_out_dir",
    "check_same_index",
    "load_benchmark",
    "requested_settings",
    "scorer",
    "size_from_server",
    "sut_config",
    "wait_ready",
]

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
    """Size of the benchmark's stand-in the server runs (`small` for tests)."""
    size_from_server: bool = False
    """Take the size from the served model's config (`edgeperf_size`, written by `edgeperf-server build`)
    instead of `benchmark_size`, which stays the fallback for models without it (official files: full)."""
    dataset: str = "synthetic"
    """`synthetic[:COUNT]` or a path to the dataset in its published format."""
    streaming: bool = False
    """Send over one bidirectional ModelStreamInfer stream per channel instead of unary ModelInfer."""
    transport: Literal["h2", "grpcio"] = "h2"
    """The timed requests' transport (`GrpcSutConfig.transport`)."""
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
    connection: Connection = field(default_factory=Connection)
    """TLS files and the bearer token for a server started with --auth-token (none: plaintext, no token)."""
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


def check_out_dir(out_dir: Path) -> None:
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


def load_benchmark(options: RunOptions) -> Benchmark | None:
    """The benchmark `options.benchmark` names, or None for a plain model."""
    if options.benchmark is None:
        return None
    from edgeperf.benchmarks import registry

    try:
        return registry.get(options.benchmark)
    except KeyError as exc:
        raise RunSetupError(str(exc.args[0])) from None


@dataclass(frozen=True, slots=True)
class Requested:
    """The requested settings and where each came from (conf file and line, or a flag)."""

    settings: TestSettings
    sources: dict[str, str]
    origins: Mapping[str, ConfigSource | str]


def requested_settings(options: RunOptions, bench: Benchmark | None) -> Requested:
    """The caller's `TestSettings` as they are, or the conf files' for the model and scenario."""
    if options.test_settings is not None:
        requested = options.test_settings
        if options.mode is not None:
            requested = requested.with_changes(mode=options.mode)
        if requested.scenario is not options.scenario:
            requested = requested.with_changes(scenario=options.scenario)
        return Requested(requested, {}, {})
    mlperf_model = options.mlperf_model or (bench.spec.mlperf_model if bench else options.model)
    resolved = resolve_test_settings(
        mlperf_model,
        options.scenario,
        rules=options.rules,
        user_conf=options.user_conf,
        mode=options.mode,
    )
    return Requested(resolved.settings, {k: str(v) for k, v in resolved.sources.items()}, resolved.sources)


def sut_config(options: RunOptions, requested: TestSettings, bench: Benchmark | None) -> GrpcSutConfig:
    """How the SUT reaches the server and shapes its requests for this run."""
    keep_data = requested.mode in (TestMode.ACCURACY_ONLY, TestMode.SUBMISSION_RUN) or (
        requested.accuracy_log_probability > 0 or requested.accuracy_log_sampling_target is not None
    )
    return GrpcSutConfig(
        address=options.server,
        model=options.model,
        streaming=options.streaming,
        transport=options.transport,
        channels=options.channels,
        batch_size=options.batch_size,
        max_in_flight=(
            options.server_max_in_flight
            if options.scenario is Scenario.SERVER and requested.mode is not TestMode.ACCURACY_ONLY
            else options.max_in_flight
        ),
        deadline_ms=options.deadline_ms,
        tls=options.connection.tls,
        auth_token=options.connection.auth_token,
        collect_data=keep_data,
        log_payload=payload_encoder(bench, options.benchmark_size),
    )


async def size_from_server(
    options: RunOptions,
    config: GrpcSutConfig,
    bench: Benchmark,
    announce: Callable[[str], None] | None,
) -> tuple[RunOptions, GrpcSutConfig]:
    """`--size` from the served model's config (`edgeperf_size`), where it records one."""
    # NOTE: the size shapes the SUT's accuracy payload (RetinaNet's box scale), so it is read first.
    async with GrpcSut(config) as probe:
        await wait_ready(probe, options)
        served = (await probe.model_parameters()).get("edgeperf_size")
    if served in ("full", "small") and served != options.benchmark_size:
        options = dataclasses.replace(options, benchmark_size="small" if served == "small" else "full")
        config = dataclasses.replace(config, log_payload=payload_encoder(bench, options.benchmark_size))
    if announce is not None and served in ("full", "small"):
        announce(f"--size {served}: from the config of model {options.model} on the server (edgeperf_size)")
    return options, config


def scorer(
    bench: Benchmark | None, dataset: Dataset | None, options: RunOptions
) -> Callable[[Path], AccuracyReport] | None:
    """Reads an accuracy log and scores it with the benchmark's metric; None without a benchmark dataset."""
    if bench is None or dataset is None:
        return None
    from edgeperf.benchmarks.accuracy_log import read_accuracy_log

    bench_ok, data_ok = bench, dataset

    def score(path: Path) -> AccuracyReport:
        return bench_ok.accuracy(data_ok, read_accuracy_log(path), size=options.benchmark_size)

    return score


def check_same_index(settings: EffectiveSettings, origins: Mapping[str, ConfigSource | str]) -> None:
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


async def wait_ready(sut: GrpcSut, options: RunOptions) -> None:
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


def payload_encoder(bench: Benchmark | None, size: Size) -> Callable[[bytes, int], bytes] | None:
    """A benchmark logs its reference SUT's payload, so that the reference accuracy script scores
    edgeperf's mlperf_log_accuracy.json as edgeperf does; other models log their raw outputs."""
    if bench is None:
        return None
    chosen = bench

    def encode(raw: bytes, qsl_idx: int) -> bytes:
        return chosen.log_payload(raw, qsl_idx, size=size)

    return encode


async def build_qsl(
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
class GrpcWorkerFactory:
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
    config = dataclasses.replace(config, log_payload=payload_encoder(bench, options.benchmark_size))
    async with GrpcSut(config) as sut:
        qsl, _ = await build_qsl(sut, options, bench)
        sut.use_qsl(qsl)
        yield sut, qsl
