"""One call's stream on an `H2Connection`, and the listener that hears its responses."""

from __future__ import annotations

import collections
from typing import Protocol

__all__ = ["CallListener", "H2Stream"]


class CallListener(Protocol):
    def message(self, data: bytes) -> None:
        """One response message (its gRPC prefix removed)."""

    def closed(self, status: str, details: str) -> None:
        """The call ended: "OK" or a gRPC status name. Called exactly once, after every message."""


class H2Stream:
    """One call's stream: its send window and outbox, the response bytes not yet a whole message."""

    __slots__ = (
        "ended",
        "headers",
        "id",
        "inbox",
        "listener",
        "outbox",
        "refused",
        "request",
        "unacked",
        "window",
    )

    def __init__(self, listener: CallListener, headers: bytes, message: bytes | None) -> None:
        self.id = 0
        """0 until the stream opens (it may wait for a slot, or to go again after REFUSED_STREAM)."""
        self.request = (headers, message)
        """The header block and a unary call's one message (None for a stream), kept until it opens, and
        for a unary call until it ends (the server may refuse the stream; the call then goes again)."""
        self.refused = 0
        self.listener = listener
        self.window = 0
        """The peer's send window for this stream, from its initial window when the stream opens."""
        self.outbox: collections.deque[tuple[memoryview, bool]] = collections.deque()
        self.inbox = bytearray()
        self.unacked = 0
        self.headers: list[tuple[str, str]] = []
        self.ended = False

    def deliver(self, payload: bytes) -> bool:
        """A DATA frame's bytes: each whole gRPC message in them (with what came before) goes to the
        listener. False for a compressed message, which this client never asks for."""
        inbox = self.inbox
        if (
            not inbox
            and len(payload) >= 5
            and payload[0] == 0
            and int.from_bytes(payload[1:5], "big") == len(payload) - 5
        ):
            self.listener.message(payload[5:])  # NOTE: the usual case, one whole message in one frame
            return True
        inbox += payload
        while len(inbox) >= 5:
            if inbox[0] != 0:
                return False
            size = int.from_bytes(inbox[1:5], "big")
            if len(inbox) < 5 + size:
                break
            message = bytes(inbox[5 : 5 + size])
            del inbox[: 5 + size]
            self.listener.message(message)
        return True
