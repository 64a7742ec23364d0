"""Drive an edgeperf server with Triton's own Python client and print what happened as JSON.

    python tests/server/triton_conformance_client.py --url 127.0.0.1:PORT --repository DIR

Runs in its own process: tritonclient's generated modules and edgeperf.protos define the same protobuf
names and cannot share one. Nothing from edgeperf is imported here. The pytest module
test_triton_conformance.py asserts on the printed results.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import onnxruntime
import tritonclient.grpc as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.utils import InferenceServerException

MODEL = "tiny"
SLOW = "tiny_slow"


def _input(data: np.ndarray, name: str = "INPUT0", datatype: str = "FP32") -> triton.InferInput:
    tensor = triton.InferInput(name, list(data.shape), datatype)
    tensor.set_data_from_numpy(data)
    return tensor


def _error(call: Any) -> dict[str, str]:
    try:
        call()
    except InferenceServerException as err:
        return {"status": str(err.status()), "message": err.message()}
    return {"status": "OK", "message": ""}


def _metadata(client: triton.InferenceServerClient) -> dict[str, Any]:
    return {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(MODEL),
        "unknown_model_ready": client.is_model_ready("no_such_model"),
        "server_metadata": client.get_server_metadata(as_json=True),
        "model_metadata": client.get_model_metadata(MODEL, as_json=True),
        "model_config": client.get_model_config(MODEL, as_json=True),
        "index": client.get_model_repository_index(as_json=True),
    }


def _inference(client: triton.InferenceServerClient, repository: Path) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    session = onnxruntime.InferenceSession(str(repository / MODEL / "1" / "model.onnx"))
    max_abs_diff = 0.0
    shapes = []
    for batch in (1, 3, 8):
        data = rng.standard_normal((batch, 16)).astype(np.float32)
        result = client.infer(
            MODEL, [_input(data)], request_id=f"u{batch}", outputs=[triton.InferRequestedOutput("OUTPUT0")]
        )
        got = result.as_numpy("OUTPUT0")
        (expected,) = session.run(["OUTPUT0"], {"INPUT0": data})
        max_abs_diff = max(max_abs_diff, float(np.max(np.abs(got - expected))))
        shapes.append(list(got.shape))
        response = result.get_response(as_json=True)
    return {
        "max_abs_diff": max_abs_diff,
        "shapes": shapes,
        "last_id": response["id"],
        "parameters": sorted(response.get("parameters", {})),
        "with_timeout_and_priority": _error(
            lambda: client.infer(MODEL, [_input(np.ones((1, 16), np.float32))], timeout=5_000_000, priority=1)
        ),
        "unary_count": 4,
    }


def _bad_inputs(client: triton.InferenceServerClient) -> dict[str, Any]:
    good = np.ones((1, 16), np.float32)
    cases = {
        "unknown_model": lambda: client.infer("no_such_model", [_input(good)]),
        "unknown_version": lambda: client.infer(MODEL, [_input(good)], model_version="99"),
        "wrong_input_name": lambda: client.infer(MODEL, [_input(good, name="NOPE")]),
        "wrong_dtype": lambda: client.infer(MODEL, [_input(good.astype(np.float64), datatype="FP64")]),
        "wrong_shape": lambda: client.infer(MODEL, [_input(np.ones((1, 15), np.float32))]),
        "unknown_output": lambda: client.infer(
            MODEL, [_input(good)], outputs=[triton.InferRequestedOutput("NOPE")]
        ),
    }
    results: dict[str, dict[str, Any]] = {}
    for name, call in cases.items():
        results[name] = dict(_error(call))
        # Every failure must leave the server serving: the next good request works.
        results[name]["next_ok"] = _error(lambda: client.infer(MODEL, [_input(good)]))["status"] == "OK"
    return results


def _streaming(url: str) -> dict[str, Any]:
    client = triton.InferenceServerClient(url)
    arrivals: queue.Queue[tuple[str, str | None, float]] = queue.Queue()

    def callback(result: Any, error: Any) -> None:
        if error is not None:
            arrivals.put((error.message(), "error", time.monotonic()))
        else:
            arrivals.put((result.get_response().id, None, time.monotonic()))

    client.start_stream(callback)
    data = np.ones((1, 16), np.float32)
    # A slow request (waits in tiny_slow's queue), then fast ones: the fast answers must overtake it.
    client.async_stream_infer(SLOW, [_input(data)], request_id="slow")
    for i in range(5):
        client.async_stream_infer(MODEL, [_input(data)], request_id=f"fast{i}")
    client.async_stream_infer(MODEL, [_input(np.ones((1, 3), np.float32))], request_id="bad")
    client.async_stream_infer(MODEL, [_input(data)], request_id="after_bad")
    client.stop_stream()
    client.close()
    received = []
    while not arrivals.empty():
        received.append(arrivals.get_nowait())
    return {
        "order": [item[0] if item[1] is None else "ERROR" for item in received],
        "errors": [item[0] for item in received if item[1] is not None],
    }


def _health(url: str) -> dict[str, Any]:
    with grpc.insecure_channel(url) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        overall = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
        inference = stub.Check(
            health_pb2.HealthCheckRequest(service="inference.GRPCInferenceService"), timeout=5
        ).status
        try:
            stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
            unknown = "OK"
        except grpc.RpcError as err:
            unknown = err.code().name
    return {"overall": health_pb2.HealthCheckResponse.ServingStatus.Name(overall),
            "inference": health_pb2.HealthCheckResponse.ServingStatus.Name(inference), "unknown": unknown}  # fmt: skip


def _statistics(client: triton.InferenceServerClient) -> dict[str, Any]:
    stats = client.get_inference_statistics(MODEL, as_json=True)["model_stats"]
    unimplemented = _error(lambda: client.get_system_shared_memory_status())
    return {"model_stats": stats, "all": client.get_inference_statistics(as_json=True), "shm": unimplemented}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--repository", type=Path, required=True)
    args = parser.parse_args()
    client = triton.InferenceServerClient(args.url)
    results = {
        "metadata": _metadata(client),
        "inference": _inference(client, args.repository),
        "bad_inputs": _bad_inputs(client),
        "streaming": _streaming(args.url),
        "health": _health(args.url),
    }
    results["statistics"] = _statistics(client)
    client.close()
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
