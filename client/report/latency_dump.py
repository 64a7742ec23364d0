"""`latencies.npz`: every sample's timestamps and latency in compact columns, for plots and later analysis.

LoadGen's answer to "what did every sample do" is a Chrome trace of gigabytes; these columns hold the
same facts in a few bytes per sample and load in one call: `numpy.load("latencies.npz")`.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.lib.format as npformat
import numpy.typing as npt

from edgeperf.client.files import atomic_file
from edgeperf.client.issue.raw_results import RunResult
from edgeperf.client.report import columns
from edgeperf.client.report.columns import Chunk, chunks

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
    n = result.n_samples

    def derived(pick: Callable[[Chunk], npt.NDArray[Any]]) -> Iterator[npt.NDArray[Any]]:
        return (pick(part) for part in chunks(result))

    members: tuple[tuple[str, np.dtype[Any], int, Iterable[npt.NDArray[Any]]], ...] = (
        (
            "sample_latency_ns",
            np.dtype(np.int64),
            n,
            derived(lambda c: np.where(c.ok, c.completed - c.scheduled, -1)),
        ),
        ("sample_query", np.dtype(np.int64), n, derived(_sample_query(result))),
        ("scheduled_ns", np.dtype(np.int64), result.n_queries, _slices(result.scheduled_ns)),
        ("issued_ns", np.dtype(np.int64), result.n_queries, _slices(result.issued_ns)),
        ("sample_completed_ns", np.dtype(np.int64), n, _slices(result.sample_completed_ns)),
        ("server_queue_ns", np.dtype(np.int64), n, _slices(result.server_queue_ns)),
        ("server_compute_ns", np.dtype(np.int64), n, _slices(result.server_compute_ns)),
        ("ok", np.dtype(np.bool_), n, derived(lambda c: c.ok)),
    )
    # NOTE: the .npz layout of np.savez_compressed, written a chunk at a time: savez needs whole
    # arrays, and the derived columns of a long run would each cost the run's length in memory.
    with atomic_file(path) as f, zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, dtype, length, parts in members:
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                header = {"descr": npformat.dtype_to_descr(dtype), "fortran_order": False, "shape": (length,)}
                npformat.write_array_header_1_0(member, header)
                for part in parts:
                    member.write(np.ascontiguousarray(part, dtype=dtype).tobytes())
    return path


def _slices(column: npt.NDArray[Any]) -> Iterator[npt.NDArray[Any]]:
    step = columns.CHUNK
    return (column[i : i + step] for i in range(0, column.shape[0], step))


def _sample_query(result: RunResult) -> Callable[[Chunk], npt.NDArray[np.int64]]:
    def pick(part: Chunk) -> npt.NDArray[np.int64]:
        return result.query_of(np.arange(part.start, part.stop, dtype=np.int64))

    return pick


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
