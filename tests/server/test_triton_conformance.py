"""Triton's own Python client (tritonclient[grpc]) against a real edgeperf-server process.

The client runs in a subprocess (tests/server/triton_conformance_client.py): tritonclient's generated
modules and edgeperf.protos cannot share a Python process. This module imports neither.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.server.edge_process import build_repository, server_process

CLIENT = Path(__file__).with_name("triton_conformance_client.py")

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    repository = build_repository(tmp_path_factory.mktemp("repo"))
    with server_process(repository) as server:
        run = subprocess.run(
            [sys.executable, str(CLIENT), "--url", server.address, "--repository", str(repository)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stderr + "".join(server.stderr_lines)
        assert server.process.poll() is None, "the server must survive the client"
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def test_live_ready_and_metadata(results):
    meta = results["metadata"]
    assert meta["live"] and meta["ready"] and meta["model_ready"]
    assert meta["unknown_model_ready"] is False
    assert meta["server_metadata"]["name"] == "edgeperf"
    assert "statistics" in meta["server_metadata"]["extensions"]
    model = meta["model_metadata"]
    assert model["name"] == "tiny" and model["versions"] == ["1"] and model["platform"] == "onnxruntime_onnx"
    assert model["inputs"] == [{"name": "INPUT0", "datatype": "FP32", "shape": ["-1", "16"]}]
    assert model["outputs"] == [{"name": "OUTPUT0", "datatype": "FP32", "shape": ["-1", "16"]}]
    config = meta["model_config"]["config"]
    assert config["name"] == "tiny" and config["max_batch_size"] == 64
    assert config["input"][0]["data_type"] == "TYPE_FP32" and config["input"][0]["dims"] == ["16"]
    assert "dynamic_batching" in config
    assert {(m["name"], m["state"]) for m in meta["index"]["models"]} == {
        ("tiny", "READY"),
        ("tiny_slow", "READY"),
    }


def test_inference_equals_onnxruntime_in_process(results):
    inference = results["inference"]
    assert inference["max_abs_diff"] == 0.0
    assert inference["shapes"] == [[1, 16], [3, 16], [8, 16]]
    assert inference["last_id"] == "u8"
    assert {"edgeperf_queue_ns", "edgeperf_compute_infer_ns"} <= set(inference["parameters"])
    assert inference["with_timeout_and_priority"]["status"] == "OK"


def test_bad_inputs_get_statuses_and_the_server_keeps_serving(results):
    bad = results["bad_inputs"]
    expected = {
        "unknown_model": "StatusCode.NOT_FOUND",
        "unknown_version": "StatusCode.NOT_FOUND",
        "wrong_input_name": "StatusCode.INVALID_ARGUMENT",
        "wrong_dtype": "StatusCode.INVALID_ARGUMENT",
        "wrong_shape": "StatusCode.INVALID_ARGUMENT",
        "unknown_output": "StatusCode.INVALID_ARGUMENT",
    }
    assert {name: case["status"] for name, case in bad.items()} == expected
    assert all(case["next_ok"] for case in bad.values())
    assert all(case["message"] for case in bad.values())


def test_streaming_interleaves_and_reports_errors_in_band(results):
    stream = results["streaming"]
    order = stream["order"]
    assert sorted(order) == sorted(
        ["slow", "fast0", "fast1", "fast2", "fast3", "fast4", "after_bad", "ERROR"]
    )
    assert order.index("fast0") < order.index("slow"), "responses must come back as they finish"
    assert len(stream["errors"]) == 1 and "INPUT0" in stream["errors"][0]


def test_health_check(results):
    assert results["health"] == {"overall": "SERVING", "inference": "SERVING", "unknown": "NOT_FOUND"}


def test_statistics_account_for_every_request(results):
    (stats,) = results["statistics"]["model_stats"]
    assert stats["name"] == "tiny" and stats["version"] == "1"
    inference = stats["inference_stats"]
    # 4 unary + 6 good-after-bad + 5 fast + 1 after_bad streamed succeeded; wrong name/dtype/shape/output and
    # the bad streamed one failed validation (unknown model/version are not the tiny model's failures).
    assert int(inference["success"]["count"]) == 4 + 6 + 5 + 1
    assert int(inference["fail"]["count"]) == 4 + 1
    counts = {
        int(inference[k]["count"]) for k in ("queue", "compute_input", "compute_infer", "compute_output")
    }
    assert counts == {16}
    assert int(stats["inference_count"]) == 1 + 3 + 8 + 1 + 6 + 5 + 1
    executions = sum(int(b["compute_infer"]["count"]) for b in stats["batch_stats"])
    assert executions == int(stats["execution_count"])
    everything = results["statistics"]["all"]["model_stats"]
    assert sorted(s["name"] for s in everything) == ["tiny", "tiny_slow"]
    assert results["statistics"]["shm"]["status"] == "StatusCode.UNIMPLEMENTED"
