"""One benchmark run end to end: settings, QSL, SUT, schedule, issue loop, summary and logs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from edgeperf.benchmarks.base import AccuracyReport
    from edgeperf.client.settings import Scenario, TestMode, TestSettings

__all__ = ["RunOptions", "RunOutcome", "run_benchmark"]


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
    """Requests in flight at once (the Offline window); None for unlimited."""
    deadline_ms: int = 30_000
    """Per-request gRPC deadline; a sample past it is recorded as DEADLINE_EXCEEDED."""
    tls_root_cert: Path | None = None
    tls_client_cert: Path | None = None
    tls_client_key: Path | None = None
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


async def run_benchmark(options: RunOptions) -> RunOutcome:
    """Run one scenario in one mode against `options.server` and write its logs under `options.out_dir`.

    Raises:
        RunSetupError: the options cannot make a run.
        SutError: the server cannot be reached or the model is not ready before the run starts.
        ConfigError: a conf file has a line edgeperf cannot use.
    Per-sample failures and a server dying mid-run do not raise: the outcome is INVALID with the reason.
    """
    raise NotImplementedError
