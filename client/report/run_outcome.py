"""What a run produced, as the CLI, the suite and the tests see it; the files under `out_dir` say the same."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgeperf.client.issue.selfcheck import ClientCheck

if TYPE_CHECKING:
    from edgeperf.benchmarks.base import AccuracyReport

__all__ = ["RunOutcome"]


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
    client: ClientCheck | None = None
    """The performance pass's client self-check."""
    device_lines: tuple[str, ...] = ()
    """Power and network, as the console shows them."""
