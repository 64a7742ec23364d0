"""Server work per request counted in instructions (valgrind's callgrind), for `bench_server --instructions`.

CPU seconds per request move with whatever else the machine runs (caches, frequency, the other core's
load); the instructions a server executes for a request do not. Each server runs under callgrind with
instrumentation off; after a warm-up it is switched on (`callgrind_control -i on`) for exactly the
measured requests, off again, and the dump's total is divided by their count. Everything the process
executes counts: gRPC's threads and C core, Python, protobuf, ONNX Runtime; time in the kernel does not.
Instructions are not time (cache misses and system calls cost more than their count), so this is a
second, noise-free view beside the CPU-time figures, not a replacement for them.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

__all__ = ["CALLGRIND", "instructions_per_request"]

CALLGRIND = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
"""The server's command prefix: instrumented only between `callgrind_control -i on` and `-i off`."""

Drive = Callable[[str, int], Awaitable[int]]
"""Sends `count` requests to the address, returns how many were answered."""


def _start(command: list[str], out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CALLGRIND, f"--callgrind-out-file={out}", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _edgeperf_port(process: subprocess.Popen[str]) -> int:
    """The port from the server's ready line (valgrind's own lines on stderr are skipped)."""
    assert process.stderr is not None
    for line in process.stderr:
        if '"ready"' in line and "{" in line:
            entry = json.loads(line[line.index("{") :])
            if entry.get("event") == "ready":
                return int(entry["port"])
    raise RuntimeError(f"edgeperf-server under valgrind exited with {process.wait()} before it was ready")


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def _total_instructions(out: Path) -> int:
    """The sum of the `totals:` lines of every dump callgrind wrote for `out`."""
    total = 0
    for dump in out.parent.glob(out.name + "*"):
        for line in dump.read_text().splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
    return total


async def instructions_per_request(
    server: str, repository: Path | None, drive: Drive, *, warmup: int, count: int, echo_bytes: int = 0
) -> float | None:
    """Instructions the server executes per request while `drive` sends `count` of them.

    Args:
        server: "echo" (the bench's bare grpc.aio server, answering `echo_bytes`) or "edgeperf"
            (edgeperf-server serving `repository`, without metrics).
        drive: sends the requests (after `warmup` untimed ones).

    Returns:
        None when valgrind is not installed.
    """
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        return None
    with tempfile.TemporaryDirectory(prefix="edgeperf-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        if server == "echo":
            command = [sys.executable, "-m", "tests.bench.bench_server", "--echo-server", str(echo_bytes)]
        else:
            command = [
                sys.executable, "-m", "edgeperf.server.cli", "serve", "--model-repository", str(repository),
                "--listen", "127.0.0.1:0", "--no-metrics",
            ]  # fmt: skip
        process = _start(command, out)
        try:
            if server == "echo":
                assert process.stdout is not None
                port = int(process.stdout.readline())
            else:
                port = _edgeperf_port(process)
            # NOTE: valgrind's output must keep flowing, or a full pipe stops the server.
            threading.Thread(target=lambda: [None for _ in process.stderr or ()], daemon=True).start()
            address = f"127.0.0.1:{port}"
            await drive(address, warmup)
            await asyncio.to_thread(_control, process.pid, "-i", "on")
            answered = await drive(address, count)
            await asyncio.to_thread(_control, process.pid, "-i", "off")
            await asyncio.to_thread(_control, process.pid, "-d")
        finally:
            process.terminate()
            process.wait(timeout=120)
        return _total_instructions(out) / max(answered, 1)
