"""latencies.npz: the per-sample columns, written atomically and read back."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest

from edgeperf.client.issue.recorder import RunRecorder
from edgeperf.client.report import columns
from edgeperf.client.report.latency_dump import read_latencies, write_latencies


def _result():
    rec = RunRecorder(samples_per_query=1, n_queries=3, sample_indices=np.array([[0], [1], [2]]))
    rec.mark_start(1_000)
    for q in range(3):
        rec.record_issue(q, 1_000 + q * 100, 1_000 + q * 100 + 5)
    rec.record_sample_complete(rec.slot(0, 0), 1_010, 1_500, server_queue_ns=20, server_compute_ns=300)
    rec.record_error(rec.slot(1, 0), 1_110, 1_200, "UNAVAILABLE", "queue full")
    rec.record_sample_complete(rec.slot(2, 0), 1_210, 1_900)
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


@pytest.mark.parametrize("spq", [1, 3])
def test_chunked_columns_equal_the_whole_array_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spq: int
) -> None:
    monkeypatch.setattr(columns, "CHUNK", 5)  # chunk boundaries inside queries
    rng = np.random.default_rng(3)
    nq = 40
    rec = RunRecorder(
        samples_per_query=spq, n_queries=nq, sample_indices=np.arange(nq * spq).reshape(nq, spq)
    )
    rec.mark_start(1_000)
    for q in range(nq):
        rec.record_issue(q, 1_000 + q * 100, 1_000 + q * 100 + 5)
        for k in range(spq):
            done = 1_200 + q * 100 + int(rng.integers(0, 1_000))
            if rng.random() < 0.2:
                rec.record_error(rec.slot(q, k), 1_010 + q * 100, done, "UNAVAILABLE", "queue full")
            else:
                rec.record_sample_complete(
                    rec.slot(q, k), 1_010 + q * 100, done, server_queue_ns=q, server_compute_ns=k
                )
    result = rec.finish(10_000_000)
    cols = read_latencies(write_latencies(tmp_path, result))
    ok = result.ok_mask
    assert 0 < ok.sum() < ok.size
    assert cols["sample_latency_ns"].tolist() == np.where(ok, result.sample_latency_ns, -1).tolist()
    assert cols["sample_query"].tolist() == result.sample_query.tolist()
    assert cols["ok"].tolist() == ok.tolist()
    for name in ("scheduled_ns", "issued_ns", "sample_completed_ns", "server_queue_ns", "server_compute_ns"):
        assert cols[name].dtype == np.int64 and cols[name].tolist() == getattr(result, name).tolist()
