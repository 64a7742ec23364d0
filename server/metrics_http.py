"""The Prometheus port: `GET /metrics` served from the event loop, with bounded connections and timeouts.

A thread per connection with no timeout (http.server's ThreadingHTTPServer) let 2,000 idle
connections make 2,016 threads and push gRPC latency to 3.3 s. Here a connection costs a socket and a
small coroutine: at most `max_connections` are open at once (a new one closes the oldest connection
that has not sent its request yet; only when every one is being answered is it refused with 503), each
must send its request head within `timeout_s` and take its answer within `timeout_s`, and one request
is served per connection (`Connection: close`, which Prometheus handles). Rendering runs on the default
executor (a small fixed pool), because exporters such as NVML's may block for a moment.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import threading
from typing import Final

from edgeperf.server.metrics import CONTENT_TYPE, Exposition

__all__ = ["MetricsHttpServer", "MetricsHttpThread"]

_MAX_HEAD_BYTES: Final = 8192
"""Request line plus headers; a scrape sends a few hundred bytes."""

_REASONS: Final = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 400: "Bad Request", 503: "Busy"}


def _response(status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class MetricsHttpServer:
    """Serves `GET /metrics` (and `/`) on the running event loop; `start()` returns the bound port."""

    def __init__(self, metrics: Exposition, *, max_connections: int = 64, timeout_s: float = 10.0) -> None:
        """
        Args:
            metrics: what a scrape renders.
            max_connections: open connections at once; beyond it a new one closes the oldest silent one
                (503 when none is silent).
            timeout_s: how long a client may take to send its request, and to read the answer.
        """
        if max_connections < 1 or not timeout_s > 0:
            raise ValueError("max_connections must be >= 1 and timeout_s > 0")
        self._metrics = metrics
        self._max_connections = max_connections
        self._timeout_s = timeout_s
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._silent: dict[asyncio.Task[None], None] = {}
        """Connections still waiting for their request head, oldest first."""

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    async def start(self, host: str, port: int) -> int:
        """Bind HOST:PORT (port 0 picks one) and serve; returns the bound port.

        Raises:
            OSError: the address cannot be bound.
        """
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host.strip("[]"), port))
            sock.listen(128)
            sock.setblocking(False)
            self._server = await asyncio.start_server(self._accept, sock=sock, limit=_MAX_HEAD_BYTES)
        except BaseException:
            sock.close()
            raise
        return int(sock.getsockname()[1])

    async def close(self) -> None:
        """Stop listening and drop open connections; idempotent."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= self._max_connections:
            # NOTE: idle connections must not lock scrapers out: the oldest one still silent makes room.
            victim = next(iter(self._silent), None)
            if victim is None:
                writer.write(_response(503, b"too many open connections to the metrics port\n"))
                writer.close()
                return
            self._silent.pop(victim)
            victim.cancel()
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # NOTE: a slow, idle or vanished client; nothing to answer
        finally:
            self._connections.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._silent[task] = None
        try:
            async with asyncio.timeout(self._timeout_s):
                head = await reader.readuntil(b"\r\n\r\n")
        finally:
            self._silent.pop(task, None)
        method, _, rest = head.split(b"\r\n", 1)[0].partition(b" ")
        target = rest.partition(b" ")[0]
        path = target.split(b"?", 1)[0]
        if not target:
            answer = _response(400, b"malformed request line\n")
        elif method != b"GET":
            answer = _response(405, b"only GET /metrics is served\n")
        elif path not in (b"/metrics", b"/"):
            answer = _response(404, b"only /metrics is served\n")
        else:
            answer = _response(200, await asyncio.to_thread(self._metrics.render), CONTENT_TYPE)
        writer.write(answer)
        async with asyncio.timeout(self._timeout_s):
            await writer.drain()


class MetricsHttpThread:
    """A MetricsHttpServer on an event loop of its own thread, for a process without a loop (the parent
    of `serve --workers N`): one thread in all, however many connections."""

    def __init__(self, metrics: Exposition, *, max_connections: int = 64, timeout_s: float = 10.0) -> None:
        self._server = MetricsHttpServer(metrics, max_connections=max_connections, timeout_s=timeout_s)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str, port: int) -> int:
        """Bind and serve; returns the bound port.

        Raises:
            OSError: the address cannot be bound.
        """
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="metrics-http", daemon=True)
        self._thread.start()
        try:
            return asyncio.run_coroutine_threadsafe(self._server.start(host, port), loop).result(timeout=30)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop serving and end the thread; idempotent."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            asyncio.run_coroutine_threadsafe(self._server.close(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=30)
        loop.close()
