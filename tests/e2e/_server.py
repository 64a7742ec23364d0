"""A real `edgeperf-server serve` subprocess on 127.0.0.1:0, its bound address read from the ready line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

READY_TIMEOUT_S = 60.0


class ServerProcess:
    """A running server; `address` is `127.0.0.1:PORT`."""

    def __init__(self, process: subprocess.Popen[str], address: str, metrics_port: int | None = None) -> None:
        self.process = process
        self.address = address
        self.metrics_port = metrics_port

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)


@contextmanager
def serve(model_repository: Path, *extra: str) -> Iterator[ServerProcess]:
    """Start the server on port 0 and yield once it logged its ready line; terminate it afterwards."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgeperf.server.cli",
            "serve",
            "--model-repository",
            str(model_repository),
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    found: list[dict[str, object]] = []
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if not found and '"event": "ready"' in line:
                found.append(json.loads(line))
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not ready.wait(READY_TIMEOUT_S) or not found:
            raise RuntimeError("edgeperf-server did not become ready:\n" + "".join(lines[-20:]))
        port = found[0].get("metrics_port")
        yield ServerProcess(process, str(found[0]["address"]), port if isinstance(port, int) else None)
    finally:
        if process.poll() is None:
            with suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        reader.join(5)
        if process.stderr is not None:
            process.stderr.close()
