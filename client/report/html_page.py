"""`report.html`: the results page as one self-contained file: the table, then the charts.

Charts are matplotlib PNGs embedded as data: URIs (no script, no external file, opens offline in any
browser): the latency CDF per benchmark and scenario with a line per system, throughput against p99
latency, performance per watt where power was measured, and the latency breakdown per device (client,
network and serialisation, server queue, server compute; means of the samples where the server
reported its times, as shares of the mean). matplotlib is imported only here.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgeperf.client.errors import EdgeperfClientError
from edgeperf.client.report.log_format import NOT_OFFICIAL_NOTICE
from edgeperf.client.report.plots import RunCurve, load_run
from edgeperf.client.report.results_table import CellResult, page_grid

__all__ = ["render_html"]

_BREAKDOWN = (
    ("client_wait", "client"),
    ("network_and_serialization", "network + serialisation"),
    ("server_queue", "server queue"),
    ("server_compute", "server compute"),
)
_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 13px; margin-bottom: 1.5em; }
th, td { border: 1px solid #bbb; padding: 4px 8px; text-align: left; }
th { background: #e8eef7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.power { background: #fff6df; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0 1.5em; }
.note { font-size: 12px; color: #555; }
"""


def _figure_uri(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _runs(cells: Sequence[CellResult]) -> dict[tuple[str, str, str], tuple[RunCurve, dict[str, Any]]]:
    """(system, benchmark, scenario) -> its performance run's curve and result.json, where readable."""
    out: dict[tuple[str, str, str], tuple[RunCurve, dict[str, Any]]] = {}
    for cell in cells:
        if cell.performance_dir is None:
            continue
        try:
            curve = load_run(cell.performance_dir, label=cell.system)
            doc = json.loads((cell.performance_dir / "result.json").read_text(encoding="utf-8"))
        except (EdgeperfClientError, OSError, ValueError):
            continue
        out[(cell.system, cell.benchmark, cell.scenario)] = (curve, doc)
    return out


def _cdf_chart(runs: Mapping[tuple[str, str, str], tuple[RunCurve, dict[str, Any]]]) -> str | None:
    import matplotlib.pyplot as plt

    panels = sorted({(b, s) for _, b, s in runs})
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (benchmark, scenario) in zip(axes[0], panels, strict=True):
        for (system, b, s), (curve, _) in sorted(runs.items()):
            if (b, s) == (benchmark, scenario) and len(curve.latencies_ms):
                fraction = np.arange(1, len(curve.latencies_ms) + 1) / len(curve.latencies_ms)
                ax.step(curve.latencies_ms, fraction, where="post", label=system)
        ax.set(title=f"{benchmark} {scenario}", xlabel="latency (ms)", ylabel="fraction of samples")
        ax.set_xscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    return _figure_uri(fig)


def _throughput_chart(runs: Mapping[tuple[str, str, str], tuple[RunCurve, dict[str, Any]]]) -> str | None:
    import matplotlib.pyplot as plt

    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for system in sorted({k[0] for k in runs}):
        points = [(c.throughput, c.p99_ms, f"{b} {s}") for (sy, b, s), (c, _) in runs.items() if sy == system]
        ax.scatter([p[0] for p in points], [p[1] for p in points], label=system)
        for x, y, text in points:
            ax.annotate(text, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel="throughput (samples/s)", ylabel="p99 latency (ms)", title="Throughput against p99 latency")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return _figure_uri(fig)


def _per_watt_chart(runs: Mapping[tuple[str, str, str], tuple[RunCurve, dict[str, Any]]]) -> str | None:
    import matplotlib.pyplot as plt

    bars = []
    for (system, b, s), (_, doc) in sorted(runs.items()):
        power = doc.get("power")
        if isinstance(power, dict) and isinstance(power.get("samples_per_s_per_w"), int | float):
            bars.append((f"{system}\n{b} {s}", float(power["samples_per_s_per_w"])))
    if not bars:
        return None
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(bars)), 3.8))
    ax.bar([b[0] for b in bars], [b[1] for b in bars], color="#d9a400")
    ax.set(ylabel="samples/s per W (samples per J)", title="Performance per watt (measured sources only)")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return _figure_uri(fig)


def _breakdown_chart(runs: Mapping[tuple[str, str, str], tuple[RunCurve, dict[str, Any]]]) -> str | None:
    import matplotlib.pyplot as plt

    labels: list[str] = []
    parts: dict[str, list[float]] = {name: [] for name, _ in _BREAKDOWN}
    for (system, b, s), (_, doc) in sorted(runs.items()):
        breakdown = doc.get("latency_breakdown_ns") or {}
        if not all(
            isinstance(breakdown.get(name), dict) and "mean_ns" in breakdown[name] for name, _ in _BREAKDOWN
        ):
            continue
        means = [max(float(breakdown[name]["mean_ns"]), 0.0) for name, _ in _BREAKDOWN]
        total = sum(means)
        if total <= 0:
            continue
        # NOTE: shares, not milliseconds: an Offline pass's seconds would flatten every SingleStream bar.
        labels.append(f"{system} {b} {s}\n(mean {total / 1e6:.3g} ms)")
        for (name, _), mean in zip(_BREAKDOWN, means, strict=True):
            parts[name].append(100 * mean / total)
    if not labels:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.7 * len(labels) + 1.6))
    left = np.zeros(len(labels))
    for name, text in _BREAKDOWN:
        ax.barh(labels, parts[name], left=left, label=text)
        left += np.asarray(parts[name])
    ax.set(xlabel="share of the mean latency (%)", title="Latency breakdown per device", xlim=(0, 100))
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return _figure_uri(fig)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    power = [("System power" in h or "Energy per stream" in h) for h in header]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        tds = []
        for i, value in enumerate(row):
            classes = (["num"] if value[:1].isdigit() else []) + (["power"] if power[i] else [])
            attr = f' class="{" ".join(classes)}"' if classes else ""
            tds.append(f"<td{attr}>{html.escape(value)}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(
    cells: Sequence[CellResult], systems: Mapping[str, Mapping[str, Any]], *, title: str = "edgeperf results"
) -> str:
    """The whole page: one file, no script, images inline."""
    import matplotlib

    matplotlib.use("Agg")
    header, rows = page_grid(cells, systems)
    runs = _runs(cells)
    charts = [
        ("Latency CDF per benchmark and scenario", _cdf_chart(runs)),
        ("Throughput against p99 latency", _throughput_chart(runs)),
        ("Performance per watt", _per_watt_chart(runs)),
        ("Latency breakdown: client, network, queue, compute", _breakdown_chart(runs)),
    ]
    sections = [
        f'<h2>{html.escape(name)}</h2><img alt="{html.escape(name)}" src="{uri}">'
        for name, uri in charts
        if uri is not None
    ]
    missing = [name for name, uri in charts if uri is None]
    if missing:
        sections.append(
            '<p class="note">Not drawn (no data in these results): '
            + html.escape(", ".join(missing))
            + "</p>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{_table(header, rows)}"
        '<p class="note">Latency: early-stopping estimate (90th percentile SingleStream, 99th MultiStream). '
        "System power: average over the timed pass of the widest source each system has (see systems/*.json "
        "for what it covers). Energy per stream: energy per query. "
        f"{html.escape(NOT_OFFICIAL_NOTICE)}</p>" + "".join(sections) + "</body></html>\n"
    )
