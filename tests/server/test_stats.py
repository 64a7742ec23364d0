"""Statistics with Triton's semantics, and the observer hook."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edgeperf.server.stats import BatchStatistics, Duration, StatsRecorder, wall_clock_ms
from edgeperf.server.types import ServerTimings


class Calls:
    def __init__(self) -> None:
        self.log: list[tuple[object, ...]] = []

    def on_request_done(self, model: str, version: str, **kw: object) -> None:
        timings = kw["timings"]
        assert isinstance(timings, ServerTimings)
        self.log.append(
            ("request", model, version, kw["success"], kw["reason"], timings.queue_ns, kw["request_ns"])
        )

    def on_batch(self, model: str, version: str, batch_size: int) -> None:
        self.log.append(("batch", model, version, batch_size))


def succeed(
    recorder: StatsRecorder, request_ns: int, queue_ns: int, compute_ns: tuple[int, int, int]
) -> None:
    """Record one successful request that waited `queue_ns` and ran in a batch timed `compute_ns`."""
    compute_input_ns, compute_infer_ns, compute_output_ns = compute_ns
    recorder.record_success(
        request_ns=request_ns,
        timings=ServerTimings(
            queue_ns=queue_ns,
            compute_input_ns=compute_input_ns,
            compute_infer_ns=compute_infer_ns,
            compute_output_ns=compute_output_ns,
        ),
    )


def test_executions_and_requests_are_counted_with_triton_semantics() -> None:
    calls = Calls()
    recorder = StatsRecorder("m", "2", calls, wall_ms=lambda: 1234)
    # One execution of 3 samples from two requests (batch 1 and batch 2), then one of 1 sample.
    recorder.record_execution(3, 10, 100, 20)
    for queue_ns in (5, 7):
        succeed(recorder, 200, queue_ns, (10, 100, 20))
    recorder.record_execution(1, 1, 50, 2)
    succeed(recorder, 60, 0, (1, 50, 2))
    recorder.record_failure(request_ns=9, reason="REJECTED")
    snap = recorder.snapshot()
    assert (snap.name, snap.version, snap.last_inference_ms) == ("m", "2", 1234)
    assert snap.inference_count == 4
    assert snap.execution_count == 2
    stats = snap.inference_stats
    assert stats.success == Duration(3, 460)
    assert stats.fail == Duration(1, 9)
    assert stats.queue == Duration(3, 12)
    assert stats.compute_input == Duration(3, 21)
    assert stats.compute_infer == Duration(3, 250)
    assert stats.compute_output == Duration(3, 42)
    assert snap.batch_stats == (
        BatchStatistics(
            batch_size=1,
            compute_input=Duration(1, 1),
            compute_infer=Duration(1, 50),
            compute_output=Duration(1, 2),
        ),
        BatchStatistics(
            batch_size=3,
            compute_input=Duration(1, 10),
            compute_infer=Duration(1, 100),
            compute_output=Duration(1, 20),
        ),
    )
    assert calls.log == [
        ("batch", "m", "2", 3),
        ("request", "m", "2", True, "", 5, 200),
        ("request", "m", "2", True, "", 7, 200),
        ("batch", "m", "2", 1),
        ("request", "m", "2", True, "", 0, 60),
        ("request", "m", "2", False, "REJECTED", 0, 9),
    ]


def test_snapshots_are_independent_of_later_updates() -> None:
    recorder = StatsRecorder("m", "1")
    before = recorder.snapshot()
    recorder.record_execution(2, 1, 1, 1)
    assert before.execution_count == 0 and before.batch_stats == () and before.last_inference_ms == 0
    assert recorder.snapshot().execution_count == 1


def test_wall_clock_is_milliseconds_since_the_epoch() -> None:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    assert abs(wall_clock_ms() - now_ms) < 5_000


class Broken:
    def on_request_done(self, model: str, version: str, **kw: object) -> None:
        raise KeyError("label")

    def on_batch(self, model: str, version: str, batch_size: int) -> None:
        raise KeyError("label")


def test_a_failing_observer_is_logged_and_never_fails_the_recording(caplog: pytest.LogCaptureFixture) -> None:
    recorder = StatsRecorder("m", "1", Broken())
    recorder.record_execution(1, 1, 1, 1)
    succeed(recorder, 5, 1, (1, 1, 1))
    recorder.record_failure(request_ns=5, reason="OTHER")
    snap = recorder.snapshot()
    assert (snap.execution_count, snap.inference_stats.success.count, snap.inference_stats.fail.count) == (
        1,
        1,
        1,
    )
    assert caplog.text.count("statistics observer failed") == 3
