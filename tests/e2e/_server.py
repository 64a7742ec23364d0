"""A real `edgeperf-server serve` subprocess on 127.0.0.1:0, its bound address read from the ready line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from tests._child import LineWatch, stop_child

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
    assert process.stderr is not None
    watch = LineWatch(process.stderr, lambda line: '"event": "ready"' in line)
    try:
        if not watch.marked.wait(READY_TIMEOUT_S) or watch.marked_line is None:
            raise RuntimeError("edgeperf-server did not become ready:\n" + "".join(watch.lines[-20:]))
        ready = json.loads(watch.marked_line)
        port = ready.get("metrics_port")
        yield ServerProcess(process, str(ready["address"]), port if isinstance(port, int) else None)
    finally:
        if process.poll() is None:
            with suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)  # a paused server must be able to take the SIGTERM
        stop_child(process)
        watch.join()
        process.stderr.close()
