"""`latencies.npz`: every sample's timestamps and latency in compact columns, for plots and later analysis.

LoadGen's answer to "what did every sample do" is a Chrome trace of gigabytes; these columns hold the
same facts in a few bytes per sample and load in one call: `numpy.load("latencies.npz")`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeperf.client.log_format import atomic_file
from edgeperf.client.results import RunResult

__all__ = ["LATENCY_DUMP_NAME", "read_latencies", "write_latencies"]

LATENCY_DUMP_NAME = "latencies.npz"

_COLUMNS = (
    "sample_latency_ns",
    "sample_query",
    "scheduled_ns",
    "issued_ns",
    "sample_completed_ns",
    "server_queue_ns",
    "server_compute_ns",
    "ok",
)


def write_latencies(outdir: Path, result: RunResult) -> Path:
    """Write `outdir/latencies.npz` atomically; -1 marks a value that is unknown (a sample that failed).

    Columns: per sample `sample_latency_ns` (from the query's latency origin), `sample_query`,
    `sample_completed_ns`, `server_queue_ns`, `server_compute_ns`, `ok`; per query `scheduled_ns`,
    `issued_ns`. Times are ns from the test start.
    """
    path = outdir / LATENCY_DUMP_NAME
    with atomic_file(path) as f:
        np.savez_compressed(
            f,
            sample_latency_ns=np.where(result.ok_mask, result.sample_latency_ns, -1),
            sample_query=result.sample_query,
            scheduled_ns=result.scheduled_ns,
            issued_ns=result.issued_ns,
            sample_completed_ns=result.sample_completed_ns,
            server_queue_ns=result.server_queue_ns,
            server_compute_ns=result.server_compute_ns,
            ok=result.ok_mask,
        )
    return path


def read_latencies(path: Path) -> dict[str, np.ndarray]:
    """The columns of a `latencies.npz` (or of the one inside a results folder).

    Raises:
        ValueError: the file is not a latency dump written by edgeperf.
    """
    if path.is_dir():
        path = path / LATENCY_DUMP_NAME
    with np.load(path, allow_pickle=False) as data:
        missing = [c for c in _COLUMNS if c not in data.files]
        if missing:
            raise ValueError(f"{path}: not an edgeperf latency dump (missing {', '.join(missing)})")
        return {c: np.asarray(data[c]) for c in _COLUMNS}
