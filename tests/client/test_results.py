"""RunRecorder / RunResult: raw values, relative timestamps, failures kept and counted."""

from __future__ import annotations

import numpy as np
import pytest

from edgeperf.client.issue.raw_results import STATUS_INCOMPLETE, STATUS_OK
from edgeperf.client.issue.recorder import RunRecorder

T0 = 1_000_000_000_000


def _recorder_with_three_queries() -> RunRecorder:
    rec = RunRecorder(
        samples_per_query=2, n_queries=3, sample_indices=np.array([[5, 6], [7, 8], [9, 10]]), first_seq_id=100
    )
    rec.mark_start(T0)
    rec.record_issue(0, T0 + 0, T0 + 10)
    rec.record_sample_complete(rec.slot(0, 0), T0 + 10, T0 + 1000, 200, 300, b"\x0a\xff")
    rec.record_sample_complete(rec.slot(0, 1), T0 + 10, T0 + 1500)
    rec.record_issue(1, T0 + 2000, T0 + 2005)
    # one response for both samples of the query (a batch request): the same times for each
    for pos, data in enumerate([b"", b"\x01"]):
        rec.record_sample_complete(rec.slot(1, pos), T0 + 2005, T0 + 2600, 50, 60, data)
    rec.record_issue(2, T0 + 3000, T0 + 3001)
    rec.record_error(rec.slot(2, 0), T0 + 3001, T0 + 3100, "UNAVAILABLE", "Exceeds maximum queue size")
    rec.record_event(T0 + 4000, "error_runtime", "boom", is_error=True)
    return rec


def test_timestamps_are_relative_to_start_and_latencies_follow_the_scheduled_time():
    res = _recorder_with_three_queries().finish(T0 + 5000)
    assert res.end_ns == 5000
    assert res.n_queries == 3 and res.n_samples == 6
    assert res.scheduled_ns.tolist() == [0, 2000, 3000]
    assert res.issued_ns.tolist() == [10, 2005, 3001]
    assert res.sample_latency_ns.tolist() == [1000, 1500, 600, 600, 100, -1]
    assert res.query_completed_ns.tolist() == [1500, 2600, -1]
    assert res.query_latency_ns.tolist() == [1500, 600, -1]
    assert res.query_ok.tolist() == [True, True, False]
    assert res.server_queue_ns.tolist() == [200, -1, 50, 50, -1, -1]
    assert res.server_compute_ns.tolist() == [300, -1, 60, 60, -1, -1]
    assert res.sample_indices.tolist() == [5, 6, 7, 8, 9, 10]
    assert not res.scheduled_ns.flags.writeable


def test_failed_and_incomplete_samples_are_counted_never_dropped():
    res = _recorder_with_three_queries().finish(T0 + 5000)
    assert res.sample_status[:4].tolist() == [STATUS_OK] * 4
    assert res.sample_status[5] == STATUS_INCOMPLETE
    assert res.error_count == 2
    assert res.errors_by_status() == {"UNAVAILABLE": 1, "INCOMPLETE": 1}
    assert ("UNAVAILABLE", "Exceeds maximum queue size") in res.errors_by_message()


def test_accuracy_entries_carry_seq_id_and_qsl_index_in_order():
    res = _recorder_with_three_queries().finish(T0 + 5000)
    assert [(e.seq_id, e.qsl_idx, e.data) for e in res.accuracy] == [
        (100, 5, b"\x0a\xff"),
        (102, 7, b""),
        (103, 8, b"\x01"),
    ]
    assert [(e.time_ns, e.key, e.is_error) for e in res.events] == [(4000, "error_runtime", True)]


def test_queries_never_issued_are_left_out():
    rec = RunRecorder(samples_per_query=1, n_queries=10)
    rec.mark_start(T0)
    rec.record_issue(0, T0, T0 + 1)
    rec.record_sample_complete(rec.slot(0, 0), T0 + 1, T0 + 7)
    res = rec.finish(T0 + 9)
    assert res.n_queries == 1 and res.n_samples == 1
    assert res.sample_latency_ns.tolist() == [7]


def test_variable_query_sizes():
    rec = RunRecorder(samples_per_query=[3, 1])
    rec.mark_start(T0)
    rec.record_issue(0, T0, T0)
    rec.record_issue(1, T0, T0)
    for pos in range(3):
        rec.record_sample_complete(rec.slot(0, pos), T0, T0 + 30)
    rec.record_sample_complete(rec.slot(1, 0), T0, T0 + 40)
    res = rec.finish(T0 + 50)
    assert res.query_offsets.tolist() == [0, 3, 4]
    assert res.query_latency_ns.tolist() == [30, 40]
    assert res.sample_query.tolist() == [0, 0, 0, 1]


def test_misuse_is_rejected():
    rec = RunRecorder(samples_per_query=1, n_queries=2)
    with pytest.raises(RuntimeError):
        rec.finish(T0)
    rec.mark_start(T0)
    with pytest.raises(RuntimeError):
        rec.mark_start(T0)
    with pytest.raises(ValueError, match="in order"):
        rec.record_issue(1, T0, T0)
    with pytest.raises(ValueError, match="failure status"):
        rec.record_error(rec.slot(0, 0), T0, T0, "OK", "")
    with pytest.raises(ValueError):
        RunRecorder(samples_per_query=1)
