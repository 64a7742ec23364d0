"""Test helpers for the server edge: build small model repositories and run `edgeperf-server` as a subprocess.

The ready line (`"event": "ready"`, JSON on stderr) carries the bound port, so servers listen on
127.0.0.1:0 and tests never guess ports.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeperf.benchmarks import registry
from edgeperf.protos import grpc_service_pb2 as pb

SLOW_DELAY_US = 500_000
"""Queue delay of the `tiny_slow` model: a lone request waits this long for a fuller batch."""


def build_repository(root: Path, *, slow: bool = True, slow_delay_us: int = SLOW_DELAY_US) -> Path:
    """`root/tiny` (the tiny model) and, with `slow`, `root/tiny_slow`: the same graph whose lone requests
    wait `slow_delay_us` in the queue (preferred batch 64), so there is always something in flight; its queue
    holds at most 4 requests and requests may set their own queue timeout."""
    registry.get("tiny").write_model(root / "tiny", size="small")
    if slow:
        versions = [p for p in (root / "tiny").iterdir() if p.is_dir()]
        shutil.copytree(versions[0], root / "tiny_slow" / "1")
        (root / "tiny_slow" / "config.pbtxt").write_text(
            'name: "tiny_slow"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 64\n'
            'input [{ name: "INPUT0" data_type: TYPE_FP32 dims: [16] }]\n'
            'output [{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [16] }]\n'
            f"dynamic_batching {{ preferred_batch_size: [64] max_queue_delay_microseconds: {slow_delay_us}\n"
            "  default_queue_policy { allow_timeout_override: true max_queue_size: 4 } }\n"
            "instance_group [{ count: 1 kind: KIND_CPU }]\n"
        )
    return root


def tiny_request(model: str = "tiny", *, values: int = 16) -> pb.ModelInferRequest:
    """An INPUT0 FP32 [1, 16] request for the tiny models of `build_repository`, carrying `values` ones (fewer
    than 16: a request whose raw bytes do not match its shape)."""
    message = pb.ModelInferRequest(model_name=model)
    message.inputs.add(name="INPUT0", datatype="FP32", shape=[1, 16])
    message.raw_input_contents.append(np.ones(values, "<f4").tobytes())
    return message


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    port: int
    metrics_port: int | None
    ready: dict[str, object]
    stderr_lines: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def _pump(stream: object, lines: list[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.append(line)


@contextmanager
def server_process(repository: Path, *args: str, timeout_s: float = 120.0) -> Iterator[ServerProcess]:
    """Start `edgeperf-server serve` on 127.0.0.1:0 and yield it once ready; SIGKILL if still alive at exit."""
    command = [
        sys.executable, "-m", "edgeperf.server.cli", "serve",
        "--model-repository", str(repository), "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", *args,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEPERF_")}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    lines: list[str] = []
    pump: threading.Thread | None = None
    try:
        deadline = time.monotonic() + timeout_s
        assert process.stderr is not None
        ready: dict[str, object] | None = None
        while ready is None:
            line = process.stderr.readline()
            if not line:
                raise RuntimeError(f"server exited with {process.wait()} before ready:\n{''.join(lines)}")
            lines.append(line)
            if '"ready"' in line:
                entry = json.loads(line)
                if entry.get("event") == "ready":
                    ready = entry
            if time.monotonic() > deadline:
                raise TimeoutError(f"server not ready after {timeout_s} s:\n{''.join(lines)}")
        pump = threading.Thread(target=_pump, args=(process.stderr, lines), daemon=True)
        pump.start()
        port = int(ready["port"])  # type: ignore[call-overload]
        metrics_port = ready.get("metrics_port")
        yield ServerProcess(process, port, int(metrics_port) if metrics_port else None, ready, lines)  # type: ignore[call-overload]
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        if pump is not None:
            pump.join(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
