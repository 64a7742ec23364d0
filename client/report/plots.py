"""`edgeperf plot`: latency CDFs and throughput against latency, drawn from results folders.

Each folder is one run (`edgeperf run --out DIR`, or a suite's `performance/run_1/`): its `latencies.npz`
gives the per-sample latencies for the CDF, and its `result.json` the throughput and tail latency for the
throughput-latency chart. matplotlib is imported only here, so the rest of the client does not need it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeperf.client.errors import EdgeperfClientError
from edgeperf.client.files import atomic_file
from edgeperf.client.report.latency_dump import LATENCY_DUMP_NAME, read_latencies

__all__ = ["RunCurve", "load_run", "plot_runs", "register"]


@dataclass(frozen=True, slots=True)
class RunCurve:
    """What one run contributes to the charts."""

    label: str
    latencies_ms: np.ndarray
    """Sorted latencies of the samples that succeeded, in ms."""
    throughput: float
    """Samples per second completed (scheduled for Server, as the official metric)."""
    p99_ms: float


def load_run(folder: Path, label: str | None = None) -> RunCurve:
    """Read one results folder.

    Raises:
        EdgeperfClientError: the folder holds no `latencies.npz` or `result.json` from a performance run.
    """
    if not (folder / LATENCY_DUMP_NAME).is_file() or not (folder / "result.json").is_file():
        raise EdgeperfClientError(
            f"{folder}: no {LATENCY_DUMP_NAME} and result.json here; give the folder of a performance run"
        )
    try:
        columns = read_latencies(folder)
        doc: dict[str, Any] = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EdgeperfClientError(f"{folder}: {exc}") from exc
    latencies = np.sort(columns["sample_latency_ns"][columns["ok"]]) / 1e6
    metrics = doc.get("metrics") or {}
    key = "samples_per_second" if doc.get("scenario") == "Offline" else "completed_samples_per_sec"
    throughput = float(metrics.get(key) or 0.0)
    p99 = float(np.percentile(latencies, 99)) if len(latencies) else 0.0
    return RunCurve(label or _label(folder, doc), latencies, throughput, p99)


_SUT_MODEL = re.compile(r"\(([^,()]+), ([^,()]+), \w+\)")
"""edgeperf's SUT name: `edgeperf gRPC SUT (ADDRESS, MODEL, unary|stream)`."""


def _label(folder: Path, doc: dict[str, Any]) -> str:
    """`system/benchmark/scenario` for a suite's run folder, else `model/scenario` from result.json."""
    scenario = str(doc.get("scenario", "?"))
    resolved = folder.resolve()
    if resolved.parent.name == "performance" and resolved.parent.parent.name == scenario:
        system, benchmark = resolved.parents[3].name, resolved.parents[2].name
        return f"{system}/{benchmark}/{scenario}"
    found = _SUT_MODEL.search(str(doc.get("sut_name", "")))
    return f"{found.group(2) if found else folder.name}/{scenario}"


def _distinct(runs: list[RunCurve], folders: Sequence[Path]) -> list[RunCurve]:
    """Runs of the same model and scenario get their folder added to the label, to tell them apart."""
    counts = Counter(run.label for run in runs)
    return [
        dataclasses.replace(run, label=f"{run.label} ({folder})") if counts[run.label] > 1 else run
        for run, folder in zip(runs, folders, strict=True)
    ]


def plot_runs(runs: Sequence[RunCurve], out: Path) -> Path:
    """Draw the latency CDF of every run and, beside it, each run's throughput against its p99 latency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image_format = out.suffix.lstrip(".").lower() or "png"
    supported = plt.figure().canvas.get_supported_filetypes()
    plt.close("all")
    if image_format not in supported:
        raise EdgeperfClientError(
            f"--out {out}: cannot draw a .{image_format} image; use one of {', '.join('.' + k for k in sorted(supported))}"
        )
    fig, (cdf, tput) = plt.subplots(1, 2, figsize=(12, 4.5))
    for run in runs:
        if len(run.latencies_ms):
            fraction = np.arange(1, len(run.latencies_ms) + 1) / len(run.latencies_ms)
            cdf.step(run.latencies_ms, fraction, where="post", label=run.label)
        tput.scatter([run.throughput], [run.p99_ms], label=run.label)
    cdf.set(xlabel="latency (ms)", ylabel="fraction of samples", title="Latency CDF")
    cdf.set_xscale("log")
    cdf.grid(True, which="both", alpha=0.3)
    cdf.legend(fontsize="small")
    tput.set(xlabel="throughput (samples/s)", ylabel="p99 latency (ms)", title="Throughput against latency")
    tput.grid(True, alpha=0.3)
    fig.text(0.5, 0.01, "edgeperf results are not official MLPerf results", ha="center", fontsize="small")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    try:
        with atomic_file(out) as f:
            fig.savefig(f, format=image_format, dpi=120)
    except OSError as exc:
        raise EdgeperfClientError(f"--out {out}: cannot write: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return out


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `plot` subcommand to the `edgeperf` CLI."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "plot",
        help="draw latency CDFs and throughput against latency from results folders",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "runs", nargs="+", type=Path, metavar="DIR", help="results folders of performance runs"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("edgeperf-plot.png"),
        help="image to write; its suffix picks the format (.png, .svg, .pdf, ...)",
    )
    parser.set_defaults(handler=_plot_command)
    return parser


async def _plot_command(args: argparse.Namespace) -> int:
    runs = _distinct([load_run(folder) for folder in args.runs], args.runs)
    print(f"wrote {plot_runs(runs, args.out)}")
    return 0
