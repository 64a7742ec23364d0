"""Child processes of the tests (servers, clients, relays): their output read on a thread, and their stop."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from typing import IO


class LineWatch:
    """Reads a child's text output on a thread until it ends.

    Every line goes to `sink` (by default it is kept in `lines`). `marked` is set at the first line that
    `mark` accepts, and also when the output ends, so that a waiter never waits on a child that died;
    `marked_line` tells the two apart (None: the output ended unmarked).
    """

    def __init__(
        self, stream: IO[str], mark: Callable[[str], bool], sink: Callable[[str], None] | None = None
    ) -> None:
        self.lines: list[str] = []
        self.marked = threading.Event()
        self.marked_line: str | None = None
        self._mark = mark
        self._sink = self.lines.append if sink is None else sink
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._sink(line)
            if self.marked_line is None and self._mark(line):
                self.marked_line = line
                self.marked.set()
        self.marked.set()

    def join(self, timeout_s: float = 5.0) -> None:
        self._thread.join(timeout_s)


def stop_child(process: subprocess.Popen[str], grace_s: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it is still running `grace_s` later; a child that has ended is left alone."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
