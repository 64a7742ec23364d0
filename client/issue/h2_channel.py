"""`H2Channel`: gRPC calls over one `H2Connection`, reconnecting the way a gRPC channel does.

The client's timed path (`edgeperf.client.issue.sut_grpc`) sends pre-serialized requests and wants
the response bytes and the moment they arrived; grpc.aio spends 250–370 µs of CPU per call on this
machine doing that (a task, futures and a hop from its poller thread per call), more than the
devices edgeperf measures take to answer. This channel does the same over HTTP/2 directly, from
uvloop's callbacks. The untimed RPCs (readiness, metadata) stay on grpc.aio.

Like a gRPC channel it connects on first use, fails calls UNAVAILABLE while the server cannot be
reached and tries again after a backoff (250 ms growing to 1 s, so a restarted server is found
within a second), and enforces each call's deadline on this side too (a dead link answers nothing).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import Callable

from edgeperf.client.errors import RunSetupError
from edgeperf.client.issue.h2_connection import H2Connection
from edgeperf.client.issue.h2_frames import request_headers
from edgeperf.client.issue.h2_stream import CallListener, H2Stream

__all__ = ["H2Call", "H2Channel", "parse_address"]

_CONNECT_TIMEOUT_S = 20.0
"""gRPC's minimum connect timeout: a lossy link may need it."""


def parse_address(address: str) -> tuple[str, int] | None:
    """`HOST:PORT` or `[IPV6]:PORT` as (host, port); None for anything else (e.g. `unix:` targets)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host or (":" in host.strip("[]") and not host.startswith("[")):
        return None
    return host.strip("[]"), int(port)


class H2Call:
    """A call in flight: its stream and when it must have ended."""

    __slots__ = ("connection", "deadline_ns", "stream")

    def __init__(self, stream: H2Stream, connection: H2Connection, deadline_ns: int) -> None:
        self.stream = stream
        self.connection = connection
        self.deadline_ns = deadline_ns

    def write(self, message: bytes) -> None:
        self.connection.send(self.stream, message)

    def done_writing(self) -> None:
        self.connection.end(self.stream)

    def cancel(self, status: str = "CANCELLED", details: str = "the call was cancelled") -> None:
        self.connection.cancel(self.stream, status, details)


class H2Channel:
    """Calls to one server over one HTTP/2 connection at a time; `close()` ends them all."""

    def __init__(
        self,
        address: str,
        *,
        tls: ssl.SSLContext | None = None,
        metadata: tuple[tuple[str, str], ...] = (),
        deadline_ms: int | None = None,
        backoff_ms: tuple[int, int] = (250, 1_000),
    ) -> None:
        parsed = parse_address(address)
        if parsed is None:
            raise RunSetupError(
                f"{address!r}: the HTTP/2 transport needs HOST:PORT or [IPV6]:PORT "
                "(--transport grpcio takes any gRPC target)"
            )
        self.host, self.port = parsed
        self._tls = tls
        self._scheme = "https" if tls is not None else "http"
        self._authority = address
        self._metadata = metadata
        self._deadline_ms = deadline_ms
        self._headers: dict[str, bytes] = {}
        self._connection: H2Connection | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._queued: list[Callable[[H2Connection | None, str, str], None]] = []
        self._next_attempt_ns = 0
        self._backoff_ms = backoff_ms[0]
        self._backoff_range_ms = backoff_ms
        self._last_error = ""
        self._calls: collections.OrderedDict[H2Stream, H2Call] = collections.OrderedDict()
        self._watchdog: asyncio.Task[None] | None = None
        self._draining: list[H2Connection] = []
        """Earlier connections (lost, or told GOAWAY) whose last calls may still be finishing."""
        self._closed = False

    def _headers_for(self, path: str) -> bytes:
        block = self._headers.get(path)
        if block is None:
            block = self._headers[path] = request_headers(
                self._scheme, self._authority, path, self._metadata, self._deadline_ms
            )
        return block

    # --- calls ---------------------------------------------------------------------------------------

    def call(self, path: str, listener: CallListener, message: bytes | None = None) -> None:
        """Start a call: unary when `message` is given (sent with END_STREAM), else a stream to write to.

        The listener hears how it ended, always; for a stream's handle, use `stream_call`."""
        self._start(path, listener, message, None)

    def stream_call(self, path: str, listener: CallListener, on_open: Callable[[H2Call], None]) -> None:
        """Open a bidirectional stream; `on_open` gets its handle once a connection takes it."""
        self._start(path, listener, None, on_open)

    def _start(
        self,
        path: str,
        listener: CallListener,
        message: bytes | None,
        on_open: Callable[[H2Call], None] | None,
    ) -> None:
        if self._closed:
            listener.closed("CANCELLED", "the channel was closed")
            return
        connection = self._connection
        if connection is not None and connection.lost is None:
            self._begin(connection, path, listener, message, on_open)
            return

        def when_connected(conn: H2Connection | None, status: str, error: str) -> None:
            if conn is None:
                listener.closed(status, error)
            else:
                self._begin(conn, path, listener, message, on_open)

        if time.monotonic_ns() < self._next_attempt_ns:
            when_connected(None, "UNAVAILABLE", self._last_error)  # NOTE: gRPC's fail-fast while in backoff
            return
        self._queued.append(when_connected)
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_task(self._connect())

    def _begin(
        self,
        connection: H2Connection,
        path: str,
        listener: CallListener,
        message: bytes | None,
        on_open: Callable[[H2Call], None] | None,
    ) -> None:
        stream = connection.start(listener, self._headers_for(path), message)
        if stream.ended:
            return
        deadline_ns = (
            time.perf_counter_ns() + self._deadline_ms * 1_000_000 if self._deadline_ms is not None else 0
        )
        call = H2Call(stream, connection, deadline_ns)
        if self._deadline_ms is not None and on_open is None:
            self._calls[stream] = call  # NOTE: the watchdog drops ended calls from the front
        if on_open is not None:
            on_open(call)

    # --- connecting ----------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect now rather than at the first call (a stream opened next is then open at once);
        returns when the attempt ended, whether or not it succeeded."""
        if self._closed or (self._connection is not None and self._connection.lost is None):
            return
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_task(self._connect())
        await asyncio.shield(self._connecting)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        connection: H2Connection | None = None
        error = ""
        status = "UNAVAILABLE"
        # NOTE: calls wait for the connection within their deadline, as gRPC's do (a stopped server still
        # accepts TCP connections in its kernel). Connected, they wait in the connection for the server's
        # SETTINGS (`H2Connection.start`), where the watchdog can still expire them.
        timeout_s = (
            _CONNECT_TIMEOUT_S
            if self._deadline_ms is None
            else min(_CONNECT_TIMEOUT_S, self._deadline_ms / 1000)
        )
        try:
            _, made = await asyncio.wait_for(
                loop.create_connection(
                    H2Connection,
                    self.host,
                    self.port,
                    ssl=self._tls,
                    server_hostname=self.host if self._tls is not None else None,
                ),
                timeout_s,
            )
            connection = made
            self._check_alpn(made)
        except (OSError, ConnectionError, TimeoutError, ssl.SSLError) as exc:
            if isinstance(exc, TimeoutError):
                status = "DEADLINE_EXCEEDED" if self._deadline_ms is not None else "UNAVAILABLE"
                error = f"no connection to {self._authority} within {timeout_s:g} s"
            else:
                error = f"failed to connect to {self._authority}: {type(exc).__name__}: {exc}"
            if connection is not None:
                connection.close()
            connection = None
        finally:
            self._connecting = None
        if connection is None:
            self._last_error = error
            self._next_attempt_ns = time.monotonic_ns() + self._backoff_ms * 1_000_000
            self._backoff_ms = min(int(self._backoff_ms * 1.6), self._backoff_range_ms[1])
        else:
            self._draining = [c for c in self._draining if c.streams]
            if self._connection is not None:
                self._draining.append(self._connection)
            self._connection = connection
            self._backoff_ms = self._backoff_range_ms[0]
            if self._deadline_ms is not None and self._watchdog is None:
                self._watchdog = loop.create_task(self._expire_calls())
        queued, self._queued = self._queued, []
        for when_connected in queued:
            when_connected(connection, status, error)

    def _check_alpn(self, connection: H2Connection) -> None:
        if self._tls is None or connection.transport is None:
            return
        ssl_object = connection.transport.get_extra_info("ssl_object")
        protocol = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if protocol != "h2":
            raise ConnectionError(f"the server did not agree to HTTP/2 over TLS (ALPN: {protocol})")

    # --- deadlines and closing -----------------------------------------------------------------------

    async def _expire_calls(self) -> None:
        assert self._deadline_ms is not None
        period_s = min(self._deadline_ms / 4_000, 0.5)
        while True:
            await asyncio.sleep(period_s)
            now_ns = time.perf_counter_ns()
            calls = self._calls
            while calls:
                stream, call = next(iter(calls.items()))
                if not stream.ended:
                    if now_ns < call.deadline_ns:
                        break  # NOTE: in start order, so the rest are later
                    call.cancel("DEADLINE_EXCEEDED", "Deadline Exceeded")
                del calls[stream]

    async def close(self) -> None:
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
        if self._connecting is not None:
            self._connecting.cancel()
            await asyncio.gather(self._connecting, return_exceptions=True)
        queued, self._queued = self._queued, []
        for when_connected in queued:
            when_connected(None, "CANCELLED", "the channel was closed")
        for connection in (*self._draining, self._connection):
            if connection is not None:
                connection.close()
