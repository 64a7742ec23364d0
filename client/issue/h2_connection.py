"""`H2Connection`: one HTTP/2 client connection carrying gRPC calls, as an asyncio protocol.

It does what a gRPC client's transport must and no more: the connection preface and SETTINGS,
flow control both ways (this side announces the largest windows and tops them up; the peer's windows
are honoured, data beyond them waits in the stream's outbox), PING and SETTINGS acknowledgements,
GOAWAY, RST_STREAM, the peer's limit on concurrent streams (calls beyond it wait their turn), and
gRPC's length-prefixed messages. Each call is a `CallListener`: it hears each response message and,
once, how the call ended. Everything runs on the event loop's thread from uvloop's callbacks; the
timed path makes no task, future or thread hop per call.
"""

from __future__ import annotations

import asyncio
import collections
import struct
import typing

import hpack

from edgeperf.client.issue.h2_frames import (
    CONNECTION_PREFACE,
    FRAME_HEADER,
    MAX_WINDOW,
    RECEIVE_FRAME_SIZE,
    ErrorCode,
    Flag,
    FrameType,
    H2Error,
    HeaderBlocks,
    Setting,
    frame,
    goaway,
    grpc_message_prefix,
    rst_stream,
    rst_stream_status,
    settings_frame,
    settings_values,
    status_from_headers,
    window_update,
)
from edgeperf.client.issue.h2_stream import CallListener, H2Stream

__all__ = ["H2Connection"]

_TOP_UP_AT = 1 << 30
"""Received bytes after which this side returns window to the peer (it announced 2**31 - 1)."""
_MAX_REFUSED = 8
"""Times one call is sent again after REFUSED_STREAM before it fails UNAVAILABLE."""


class H2Connection(asyncio.Protocol):
    """A client-side HTTP/2 connection; `H2Channel` (`edgeperf.client.issue.h2_channel`) owns and opens it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.lost: tuple[str, str] | None = None
        """Why the connection can take no more calls (lost, or the peer said GOAWAY); None while usable."""
        self.streams: dict[int, H2Stream] = {}
        self._next_id = 1
        self._retrying: set[H2Stream] = set()
        """Refused unary calls waiting to go again (`_refused`)."""
        self._waiting: collections.deque[H2Stream] = collections.deque()
        # NOTE: no stream opens before the server's SETTINGS say how many may (a server refuses, or answers
        # ENHANCE_YOUR_CALM to, streams past a limit it announced); calls wait in `_waiting` till then.
        self._max_streams = 0
        self._announced_max_streams = 2**31
        self._peer_initial_window = 65_535
        self._peer_frame_size = 16_384
        self._window = 65_535
        self._unacked = 0
        self._buffer = bytearray()
        self._need = 9
        """Bytes `_buffer` must hold before a whole frame can be in it (a large frame comes in many reads)."""
        self._header_blocks = HeaderBlocks()

    # --- asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # NOTE: uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = typing.cast(asyncio.Transport, transport)
        transport = self.transport
        settings = {
            Setting.ENABLE_PUSH: 0,
            Setting.INITIAL_WINDOW_SIZE: MAX_WINDOW,
            Setting.MAX_FRAME_SIZE: RECEIVE_FRAME_SIZE,
        }
        transport.write(CONNECTION_PREFACE + settings_frame(settings) + window_update(0, MAX_WINDOW - 65_535))

    def connection_lost(self, exc: Exception | None) -> None:
        reason = "the connection was closed" if exc is None else f"the connection was lost: {exc}"
        self._fail_all("UNAVAILABLE", reason)

    def data_received(self, data: bytes) -> None:
        try:
            self._receive(data)
        except (H2Error, hpack.HPACKError, struct.error, ValueError) as exc:
            self._fail_all("INTERNAL", f"HTTP/2 protocol error from the server: {exc}")
            if self.transport is not None:
                self.transport.close()

    # --- calls ---------------------------------------------------------------------------------------

    def start(self, listener: CallListener, headers: bytes, message: bytes | None) -> H2Stream:
        """A new call: its HEADERS, then `message` with END_STREAM if given (a unary call).

        Past the peer's concurrent-stream limit the call waits, in order, for a stream to end."""
        stream = H2Stream(listener, headers, message)
        if self.lost is not None:
            listener.closed(*self.lost)
            stream.ended = True
        elif len(self.streams) >= self._max_streams:
            self._waiting.append(stream)
        else:
            self._open(stream)
        return stream

    def _open(self, stream: H2Stream) -> None:
        assert self.transport is not None
        headers, message = stream.request
        stream.id = self._next_id
        self._next_id += 2
        stream.window = self._peer_initial_window  # NOTE: the SETTINGS may have come while it waited
        self.streams[stream.id] = stream
        opening = frame(FrameType.HEADERS, Flag.END_HEADERS, stream.id, headers)
        if message is None:
            self.transport.write(opening)
            return
        size = len(message) + 5
        if size <= self._window and size <= stream.window and size <= self._peer_frame_size:
            # NOTE: the usual unary call: HEADERS and the one DATA frame in one write (one syscall).
            self._window -= size
            stream.window -= size
            head = FRAME_HEADER.pack(size >> 8, size & 0xFF, FrameType.DATA, Flag.END_STREAM, stream.id)
            self.transport.write(opening + head + grpc_message_prefix(len(message)) + message)
            return
        self.transport.write(opening)
        self.send(stream, message, end=True)

    def send(self, stream: H2Stream, message: bytes, end: bool = False) -> None:
        """One gRPC message on `stream`; what the flow-control windows do not allow yet waits in order."""
        data = grpc_message_prefix(len(message)) + message
        size = len(data)
        if stream.id == 0:  # NOTE: still waiting for a stream slot; `_open` sends the outbox.
            stream.outbox.append((memoryview(data), end))
            return
        if (
            not stream.outbox
            and size <= self._window
            and size <= stream.window
            and size <= self._peer_frame_size
        ):
            self._window -= size
            stream.window -= size
            assert self.transport is not None
            self.transport.write(
                FRAME_HEADER.pack(
                    size >> 8, size & 0xFF, FrameType.DATA, Flag.END_STREAM if end else 0, stream.id
                )
                + data
            )
            return
        stream.outbox.append((memoryview(data), end))
        self._flush(stream)

    def end(self, stream: H2Stream) -> None:
        """Half-close: no more messages from this side."""
        stream.outbox.append((memoryview(b""), True))
        if stream.id != 0:
            self._flush(stream)

    def cancel(self, stream: H2Stream, status: str, details: str) -> None:
        """End the call now with `status` (a deadline, or the client closing): RST_STREAM to the peer."""
        if stream.ended:
            return
        if stream.id != 0:
            self._reset(stream, status, details)
            return
        self._waiting = collections.deque(w for w in self._waiting if w is not stream)
        self._finish(stream, status, details)

    def close(self) -> None:
        self._fail_all("CANCELLED", "the channel was closed")
        if self.transport is not None:
            self.transport.close()

    # --- sending -------------------------------------------------------------------------------------

    def _flush(self, stream: H2Stream) -> None:
        transport = self.transport
        assert transport is not None
        outbox = stream.outbox
        while outbox:
            data, end = outbox[0]
            size = min(len(data), self._window, stream.window, self._peer_frame_size)
            if size == 0 and len(data) > 0:
                return  # NOTE: blocked until the peer's WINDOW_UPDATE
            last = size == len(data)
            flags = Flag.END_STREAM if (last and end) else 0
            transport.write(frame(FrameType.DATA, flags, stream.id, data[:size]))
            self._window -= size
            stream.window -= size
            if last:
                outbox.popleft()
            else:
                outbox[0] = (data[size:], end)

    def _flush_all(self) -> None:
        for stream in list(self.streams.values()):
            if stream.outbox:
                self._flush(stream)

    def _finish(self, stream: H2Stream, status: str, details: str) -> None:
        stream.ended = True
        self.streams.pop(stream.id, None)
        stream.listener.closed(status, details)
        if 0 < self._max_streams < self._announced_max_streams:
            self._max_streams += 1  # NOTE: lowered by a refused stream; back up one call at a time
        self._start_waiting()

    def _start_waiting(self) -> None:
        while self._waiting and len(self.streams) < self._max_streams and self.lost is None:
            waiting = self._waiting.popleft()
            self._open(waiting)  # NOTE: a unary call's message is in its request, not its outbox
            if waiting.outbox:
                self._flush(waiting)  # NOTE: a stream's messages written while it waited

    def _fail_all(self, status: str, details: str) -> None:
        if self.lost is None:
            self.lost = (status, details)
        waiting, self._waiting = self._waiting, collections.deque()
        retrying, self._retrying = self._retrying, set()
        for stream in [*self.streams.values(), *waiting, *retrying]:
            if not stream.ended:
                self._finish(stream, status, details)

    # --- receiving -----------------------------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        buffer = self._buffer
        if buffer:
            buffer += data
            if len(buffer) < self._need:
                return  # NOTE: the frame in progress is still not whole: no copy, no parse
            view = bytes(buffer)
        else:
            view = data
        end = len(view)
        pos = 0
        unpack = FRAME_HEADER.unpack_from
        while end - pos >= 9:
            high, low, kind, flags, stream_id = unpack(view, pos)
            size = (high << 8) | low
            if end - pos - 9 < size:
                break
            payload = view[pos + 9 : pos + 9 + size]
            pos += 9 + size
            stream_id &= 0x7FFFFFFF
            if kind == FrameType.DATA:
                self._on_data(stream_id, flags, payload)
            elif kind == FrameType.HEADERS or kind == FrameType.CONTINUATION:
                self._on_headers(kind, stream_id, flags, payload)
            else:
                self._on_control(kind, stream_id, flags, payload)
        if pos < end:
            self._buffer = bytearray(view[pos:])
            self._need = 9 + int.from_bytes(view[pos : pos + 3], "big") if end - pos >= 9 else 9
        elif buffer:
            self._buffer = bytearray()

    def _on_data(self, stream_id: int, flags: int, payload: bytes) -> None:
        flow = len(payload)
        if flags & Flag.PADDED:
            payload = payload[1 : len(payload) - payload[0]]
        self._unacked += flow
        if self._unacked >= _TOP_UP_AT:
            self._send_window(0, self._unacked)
            self._unacked = 0
        stream = self.streams.get(stream_id)
        if stream is None:
            return  # NOTE: a stream this side already ended (a deadline): its late data is dropped
        stream.unacked += flow
        if stream.unacked >= _TOP_UP_AT:
            self._send_window(stream_id, stream.unacked)
            stream.unacked = 0
        if not stream.deliver(payload):
            self._reset(stream, "INTERNAL", "a compressed response message (none was asked for)")
        elif flags & Flag.END_STREAM and not stream.ended:
            self._finish(stream, "INTERNAL", "the server ended the stream without a status")

    def _on_headers(self, kind: int, stream_id: int, flags: int, payload: bytes) -> None:
        block = self._header_blocks.feed(kind, stream_id, flags, payload)
        if block is None:
            return
        stream_id, end_stream, headers = block
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        stream.headers.extend(headers)
        ended = status_from_headers(stream.headers)
        if end_stream:
            self._finish(stream, *(ended or ("INTERNAL", "the server ended the call without a grpc-status")))
        elif ended is not None and ended[0] != "OK":
            self._reset(stream, *ended)

    def _on_control(self, kind: int, stream_id: int, flags: int, payload: bytes) -> None:
        if kind == FrameType.SETTINGS:
            if not flags & Flag.ACK:
                self._apply_settings(payload)
        elif kind == FrameType.WINDOW_UPDATE:
            increment = struct.unpack(">I", payload)[0] & 0x7FFFFFFF
            if stream_id == 0:
                self._window += increment
                self._flush_all()
            elif (stream := self.streams.get(stream_id)) is not None:
                stream.window += increment
                if stream.outbox:
                    self._flush(stream)
        elif kind == FrameType.PING:
            if not flags & Flag.ACK and self.transport is not None:
                self.transport.write(frame(FrameType.PING, Flag.ACK, 0, payload))
        elif kind == FrameType.RST_STREAM:
            if (stream := self.streams.get(stream_id)) is not None:
                code = struct.unpack(">I", payload)[0]
                if (
                    code == ErrorCode.REFUSED_STREAM
                    and stream.request[1] is not None
                    and stream.refused < _MAX_REFUSED
                ):
                    self._refused(stream)
                else:
                    self._finish(stream, *rst_stream_status(code))
        elif kind == FrameType.GOAWAY:
            self._on_goaway(payload)
        elif kind == FrameType.PUSH_PROMISE:
            raise H2Error("PUSH_PROMISE although this client disabled push")

    def _apply_settings(self, payload: bytes) -> None:
        if self._max_streams == 0:
            self._max_streams = self._announced_max_streams  # NOTE: the first SETTINGS: unlimited unless said
        for key, value in settings_values(payload):
            if key == Setting.INITIAL_WINDOW_SIZE:
                delta = value - self._peer_initial_window
                self._peer_initial_window = value
                for stream in self.streams.values():
                    stream.window += delta
            elif key == Setting.MAX_FRAME_SIZE:
                self._peer_frame_size = value
            elif key == Setting.MAX_CONCURRENT_STREAMS:
                self._max_streams = self._announced_max_streams = value
        assert self.transport is not None
        self.transport.write(frame(FrameType.SETTINGS, Flag.ACK, 0))
        self._flush_all()
        self._start_waiting()

    def _on_goaway(self, payload: bytes) -> None:
        last_id, reason = goaway(payload)
        if self.lost is None:
            self.lost = ("UNAVAILABLE", reason)
        # NOTE: streams the server did not take never ran: they fail now; the others may still finish.
        for stream in [s for s in self.streams.values() if s.id > last_id]:
            self._finish(stream, "UNAVAILABLE", reason)
        waiting, self._waiting = self._waiting, collections.deque()
        for stream in waiting:
            self._finish(stream, "UNAVAILABLE", reason)

    def _refused(self, stream: H2Stream) -> None:
        """The server did not take the stream (past its concurrent-stream count, which it frees a little
        after its last frame): the call was not processed, so it goes again after 1, 2, 4 ... ms, the way
        gRPC retries a refused stream transparently (at once, it is refused again, and a server that
        refuses too often answers ENHANCE_YOUR_CALM)."""
        stream.refused += 1
        self.streams.pop(stream.id)
        stream.id = 0
        stream.outbox.clear()
        self._max_streams = max(len(self.streams), 1)
        self._retrying.add(stream)
        delay_s = 0.001 * 2 ** (stream.refused - 1)
        asyncio.get_running_loop().call_later(delay_s, self._retry, stream)

    def _retry(self, stream: H2Stream) -> None:
        self._retrying.discard(stream)
        if stream.ended:
            return  # NOTE: cancelled or failed meanwhile
        if self.lost is not None:
            self._finish(stream, *self.lost)
        elif len(self.streams) >= self._max_streams:
            self._waiting.appendleft(stream)
        else:
            self._open(stream)

    def _reset(self, stream: H2Stream, status: str, details: str) -> None:
        """End an open stream from this side: RST_STREAM(CANCEL) to the peer while the connection lasts."""
        if self.transport is not None and self.lost is None:
            self.transport.write(rst_stream(stream.id, ErrorCode.CANCEL))
        self._finish(stream, status, details)

    def _send_window(self, stream_id: int, increment: int) -> None:
        if self.transport is not None:
            self.transport.write(window_update(stream_id, increment))
