"""HTTP/2 framing (RFC 9113) and gRPC's wire conventions, as the client's timed path needs them.

Frames are built and read with `struct`; header blocks are encoded and decoded by the `hpack`
library. The request header blocks are encoded once per method with every field "never indexed"
(RFC 7541 §6.2.3), so a block is the same bytes for every call and never changes the peer's
dynamic table: the timed path sends stored bytes, it does no HPACK work per call.
"""

from __future__ import annotations

import enum
import struct
from urllib.parse import unquote

import grpc
import hpack

__all__ = [
    "CONNECTION_PREFACE",
    "DEFAULT_WINDOW",
    "FRAME_HEADER",
    "MAX_WINDOW",
    "ErrorCode",
    "Flag",
    "FrameType",
    "H2Error",
    "HeaderBlocks",
    "Setting",
    "frame",
    "goaway",
    "grpc_message_prefix",
    "request_headers",
    "rst_stream",
    "rst_stream_status",
    "settings_frame",
    "settings_values",
    "status_from_headers",
    "window_update",
]

CONNECTION_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_HEADER = struct.Struct(">HBBBI")
"""Length (24 bits, as 16 + 8), type, flags, stream id (the top bit is reserved)."""
DEFAULT_WINDOW = 65_535
MAX_WINDOW = 2**31 - 1
_KNOWN_BLOCKS = 64
RECEIVE_FRAME_SIZE = 1 << 20
"""SETTINGS_MAX_FRAME_SIZE this client announces: a large response arrives in fewer frames."""


class FrameType:
    """Frame types (RFC 9113 §6). Plain ints, not an enum: the receive loop compares them per frame."""

    DATA = 0
    HEADERS = 1
    PRIORITY = 2
    RST_STREAM = 3
    SETTINGS = 4
    PUSH_PROMISE = 5
    PING = 6
    GOAWAY = 7
    WINDOW_UPDATE = 8
    CONTINUATION = 9


class Flag:
    """Frame flags. Plain ints: an IntFlag's `&` builds a new member in Python, per frame."""

    END_STREAM = 0x1
    ACK = 0x1
    END_HEADERS = 0x4
    PADDED = 0x8
    PRIORITY = 0x20


class ErrorCode:
    """RST_STREAM and GOAWAY error codes (RFC 9113 §7) this client sends or acts on."""

    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC


class Setting(enum.IntEnum):
    HEADER_TABLE_SIZE = 1
    ENABLE_PUSH = 2
    MAX_CONCURRENT_STREAMS = 3
    INITIAL_WINDOW_SIZE = 4
    MAX_FRAME_SIZE = 5


class H2Error(Exception):
    """The peer broke the HTTP/2 protocol; the connection cannot go on."""


_STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
_RST_STATUS = {
    ErrorCode.REFUSED_STREAM: "UNAVAILABLE",
    ErrorCode.CANCEL: "CANCELLED",
    ErrorCode.ENHANCE_YOUR_CALM: "RESOURCE_EXHAUSTED",
    ErrorCode.INADEQUATE_SECURITY: "PERMISSION_DENIED",
}
"""RST_STREAM error codes to gRPC statuses (gRPC's HTTP/2 transport spec); any other is INTERNAL."""
_HTTP_STATUS = {400: "INTERNAL", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "UNIMPLEMENTED"}
_HTTP_UNAVAILABLE = (429, 502, 503, 504)


def frame(kind: int, flags: int, stream_id: int, payload: bytes | memoryview = b"") -> bytes:
    size = len(payload)
    return FRAME_HEADER.pack(size >> 8, size & 0xFF, kind, flags, stream_id) + payload


def settings_frame(values: dict[Setting, int]) -> bytes:
    payload = b"".join(struct.pack(">HI", key, value) for key, value in values.items())
    return frame(FrameType.SETTINGS, 0, 0, payload)


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(FrameType.WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


def rst_stream(stream_id: int, error_code: int) -> bytes:
    return frame(FrameType.RST_STREAM, 0, stream_id, struct.pack(">I", error_code))


def settings_values(payload: bytes) -> list[tuple[int, int]]:
    """A SETTINGS frame's (identifier, value) pairs."""
    return [struct.unpack_from(">HI", payload, offset) for offset in range(0, len(payload) - 5, 6)]


def goaway(payload: bytes) -> tuple[int, str]:
    """A GOAWAY frame's last stream id the server took, and why it goes away, in words."""
    last_id, code = struct.unpack_from(">II", payload)
    detail = bytes(payload[8:]).decode("utf-8", "replace")
    return (
        last_id & 0x7FFFFFFF,
        f"the server is going away (HTTP/2 GOAWAY {code}{': ' + detail if detail else ''})",
    )


def grpc_message_prefix(size: int) -> bytes:
    """gRPC's length-prefixed message header: not compressed, then the length (big-endian)."""
    return b"\x00" + size.to_bytes(4, "big")


def request_headers(
    scheme: str, authority: str, path: str, metadata: tuple[tuple[str, str], ...], timeout_ms: int | None
) -> bytes:
    """The HEADERS block of a gRPC call to `path`, the same bytes for every call (see the module doc)."""
    fields = [
        (":method", "POST"),
        (":scheme", scheme),
        (":path", path),
        (":authority", authority),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("user-agent", "edgeperf-h2"),
    ]
    if timeout_ms is not None:
        fields.append(("grpc-timeout", f"{timeout_ms}m"))
    fields.extend((key.lower(), value) for key, value in metadata)
    encoder = hpack.Encoder()
    return bytes(encoder.encode([hpack.NeverIndexedHeaderTuple(k, v) for k, v in fields], huffman=False))


def status_from_headers(headers: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The gRPC status name and message a (trailing) header block carries; None if it carries none.

    A block without grpc-status but with an HTTP error status maps the way gRPC's HTTP/2 spec says."""
    http_status = 200
    status: str | None = None
    message = ""
    for name, value in headers:
        if name == "grpc-status":
            status = _STATUS_NAMES.get(int(value), "UNKNOWN") if value.isdigit() else "UNKNOWN"
        elif name == "grpc-message":
            message = unquote(value)
        elif name == ":status":
            http_status = int(value) if value.isdigit() else 0
    if status is not None:
        return status, message
    if http_status == 200:
        return None
    if http_status in _HTTP_UNAVAILABLE:
        return "UNAVAILABLE", f"HTTP status {http_status}"
    return _HTTP_STATUS.get(http_status, "UNKNOWN"), f"HTTP status {http_status}"


def rst_stream_status(error_code: int) -> tuple[str, str]:
    return _RST_STATUS.get(error_code, "INTERNAL"), f"stream reset by the server (HTTP/2 error {error_code})"


class HeaderBlocks:
    """Header blocks as they arrive (HEADERS, then CONTINUATION frames until END_HEADERS), decoded in
    arrival order: HPACK's dynamic table is the connection's, so every block is decoded, even one for a
    stream this side already ended."""

    def __init__(self) -> None:
        self._decoder = hpack.Decoder()
        self._known: dict[bytes, list[tuple[str, str]]] = {}
        """Decoded blocks that left the dynamic table as it was: the same bytes mean the same headers until
        a block changes the table (then this is emptied). A server answers every call with the same two
        such blocks once its table is warm, so the timed path decodes almost none."""
        self._open: tuple[int, int, bytearray] | None = None
        """A block still waiting for CONTINUATION frames: stream, the HEADERS frame's flags, bytes so far."""

    def feed(
        self, kind: int, stream_id: int, flags: int, payload: bytes
    ) -> tuple[int, bool, list[tuple[str, str]]] | None:
        """One HEADERS or CONTINUATION frame; (stream, END_STREAM, headers) once a block is whole."""
        if kind == FrameType.HEADERS:
            if self._open is not None:
                raise H2Error("HEADERS inside another header block")
            if flags & Flag.PADDED:
                payload = payload[1 : len(payload) - payload[0]]
            if flags & Flag.PRIORITY:
                payload = payload[5:]
            self._open = (stream_id, flags, bytearray(payload))
        elif self._open is None or self._open[0] != stream_id:
            raise H2Error("CONTINUATION without its HEADERS")
        else:
            self._open[2].extend(payload)
        if not flags & Flag.END_HEADERS:
            return None
        stream_id, first_flags, block = self._open
        self._open = None
        raw = bytes(block)
        headers = self._known.get(raw)
        if headers is None:
            before = self._table_state()
            headers = [(str(k), str(v)) for k, v in self._decoder.decode(raw)]
            if self._table_state() == before:
                if len(self._known) < _KNOWN_BLOCKS:
                    self._known[raw] = headers
            else:
                self._known.clear()
        return stream_id, bool(first_flags & Flag.END_STREAM), headers

    def _table_state(self) -> tuple[int, int, int]:
        """What changes when a block adds to the dynamic table or resizes it (the newest entry comes first)."""
        table = self._decoder.header_table
        entries = table.dynamic_entries
        return len(entries), id(entries[0]) if entries else 0, table.maxsize
