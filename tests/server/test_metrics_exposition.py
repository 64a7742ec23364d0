"""Prometheus metrics: Triton-named counters, histograms, queue depth, and the HTTP endpoint."""

from __future__ import annotations

import asyncio
import urllib.request

import pytest

from edgeperf.server.metrics import ServerMetrics
from edgeperf.server.metrics_http import MetricsHttpServer
from edgeperf.server.types import NO_TIMINGS, ServerTimings


def _feed(metrics: ServerMetrics) -> None:
    for _ in range(3):
        metrics.on_request_done(
            "tiny",
            "1",
            success=True,
            reason="",
            timings=ServerTimings(
                queue_ns=2_000_000,
                compute_input_ns=1_000,
                compute_infer_ns=3_000_000,
                compute_output_ns=2_000,
            ),
            request_ns=6_000_000,
        )
    metrics.on_batch("tiny", "1", 2)
    metrics.on_batch("tiny", "1", 1)
    metrics.on_request_done(
        "tiny",
        "1",
        success=False,
        reason="REJECTED",
        timings=NO_TIMINGS,
        request_ns=10,
    )


def _sample(text: str, line_start: str) -> float:
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)]
    assert len(values) == 1, (line_start, values)
    return values[0]


def test_triton_counters_keep_their_names():
    metrics = ServerMetrics(lambda: [("tiny", "1", 5)])
    _feed(metrics)
    text = metrics.render().decode()
    labels = '{model="tiny",version="1"}'
    assert _sample(text, f"nv_inference_request_success{labels}") == 3
    assert _sample(text, f"nv_inference_count{labels}") == 3
    assert _sample(text, f"nv_inference_exec_count{labels}") == 2
    assert _sample(text, f"nv_inference_request_duration_us{labels}") == 18_000
    assert _sample(text, f"nv_inference_queue_duration_us{labels}") == 6_000
    assert _sample(text, f"nv_inference_compute_infer_duration_us{labels}") == 9_000
    assert _sample(text, 'nv_inference_request_failure{model="tiny",version="1",reason="REJECTED"}') == 1
    assert _sample(text, f"nv_inference_pending_request_count{labels}") == 5
    assert "# TYPE nv_inference_request_success counter" in text
    assert "nv_inference_request_success_total" not in text


def test_histograms():
    metrics = ServerMetrics()
    _feed(metrics)
    text = metrics.render().decode()
    assert _sample(text, 'edgeperf_request_duration_seconds_count{model="tiny",version="1"}') == 3
    assert _sample(text, 'edgeperf_queue_duration_seconds_bucket{le="0.0025",model="tiny",version="1"}') == 3
    assert _sample(text, 'edgeperf_queue_duration_seconds_bucket{le="0.001",model="tiny",version="1"}') == 0
    assert _sample(text, 'edgeperf_compute_duration_seconds_sum{model="tiny",version="1"}') == pytest.approx(
        0.009009
    )
    assert _sample(text, 'edgeperf_batch_size_bucket{le="1.0",model="tiny",version="1"}') == 1
    assert _sample(text, 'edgeperf_batch_size_count{model="tiny",version="1"}') == 2


async def test_http_endpoint_on_port_zero():
    metrics = ServerMetrics()
    _feed(metrics)
    server = MetricsHttpServer(metrics)
    port = await server.start("127.0.0.1", 0)

    def scrape() -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            body = reply.read().decode()
            assert reply.headers["Content-Type"].startswith("text/plain")
        assert 'nv_inference_exec_count{model="tiny",version="1"} 2' in body
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=10)
        info.value.close()
        assert info.value.code == 404

    try:
        await asyncio.to_thread(scrape)
    finally:
        await server.close()
        await server.close()


def test_observations_beyond_the_fold_threshold_are_all_counted():
    metrics = ServerMetrics()
    for _ in range(10_000):  # more than the pending backlog the hot path keeps before folding
        metrics.on_request_done(
            "m", "1", success=True, reason="",
            timings=ServerTimings(queue_ns=1000, compute_input_ns=0, compute_infer_ns=2000, compute_output_ns=0),
            request_ns=5000,
        )  # fmt: skip
        metrics.on_batch("m", "1", 1)
    text = metrics.render().decode()
    assert _sample(text, 'nv_inference_request_success{model="m",version="1"}') == 10_000
    assert _sample(text, 'nv_inference_exec_count{model="m",version="1"}') == 10_000
    assert _sample(text, 'nv_inference_request_duration_us{model="m",version="1"}') == 50_000
    assert _sample(text, 'edgeperf_request_duration_seconds_count{model="m",version="1"}') == 10_000
