"""latencies.npz: the per-sample columns, written atomically and read back."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest

from edgeperf.client.latency_dump import read_latencies, write_latencies
from edgeperf.client.results import RunRecorder


def _result():
    rec = RunRecorder.for_schedule(np.array([[0], [1], [2]]))
    rec.mark_start(1_000)
    for q in range(3):
        rec.record_issue(q, 1_000 + q * 100, 1_000 + q * 100 + 5)
    rec.record_sample_complete(0, 0, 1_010, 1_500, server_queue_ns=20, server_compute_ns=300)
    rec.record_error(1, 0, 1_110, 1_200, "UNAVAILABLE", "queue full")
    rec.record_sample_complete(2, 0, 1_210, 1_900)
    return rec.finish(1_900)


def test_columns_round_trip_with_failures_marked(tmp_path: Path) -> None:
    path = write_latencies(tmp_path, _result())
    cols = read_latencies(tmp_path)
    assert path == tmp_path / "latencies.npz"
    assert cols["sample_latency_ns"].tolist() == [500, -1, 700]
    assert cols["ok"].tolist() == [True, False, True]
    assert cols["issued_ns"].tolist() == [5, 105, 205]
    assert cols["server_queue_ns"].tolist()[0] == 20 and cols["server_compute_ns"].tolist()[0] == 300
    # readable by others like every other result file, not mkstemp's 0600
    assert stat.S_IMODE(path.stat().st_mode) & 0o044
    assert [p.name for p in tmp_path.iterdir()] == ["latencies.npz"]


def test_a_foreign_npz_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "latencies.npz", something=np.zeros(3))
    with pytest.raises(ValueError, match="not an edgeperf latency dump"):
        read_latencies(tmp_path / "latencies.npz")
