"""Errors raised by edgeperf.server, each carrying the gRPC status the edge maps it to.

EdgeperfServerError                       INTERNAL
├── ModelNotFound                         NOT_FOUND
├── InvalidInput                          INVALID_ARGUMENT
├── Overloaded                            UNAVAILABLE        ("<request> Exceeds maximum queue size")
├── OverBudget                            UNAVAILABLE        (the server-wide budget for request data is spent)
├── QueueTimeout                          UNAVAILABLE        ("Request timeout expired")
├── ShuttingDown                          UNAVAILABLE        (new work refused while draining)
├── PeerUnavailable                       UNAVAILABLE        (serve --workers: a worker did not answer)
├── DeadlineExceeded                      DEADLINE_EXCEEDED  (the caller's deadline passed while queued)
├── MessageTooLarge                       RESOURCE_EXHAUSTED (message over the configured limit)
├── Busy                                  RESOURCE_EXHAUSTED (--max-inflight inference RPCs already in the server)
├── Unsupported                           UNIMPLEMENTED
├── RuntimeFailed                         INTERNAL           (ONNX Runtime failed; carries its message)
└── ModelConfigError                      INTERNAL           (bad config.pbtxt/config.yaml; names file, model, field)
    └── RepositoryError                   INTERNAL           (bad repository layout)

Only `grpc.StatusCode` is imported from grpc: the edge (server/grpc_service.py) maps an error with
`context.abort(err.grpc_code, str(err))`; nothing here knows about servicers or contexts.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Final

import grpc

__all__ = [
    "SHUTDOWN_MESSAGE",
    "Busy",
    "DeadlineExceeded",
    "EdgeperfServerError",
    "InvalidInput",
    "MessageTooLarge",
    "ModelConfigError",
    "ModelNotFound",
    "OverBudget",
    "Overloaded",
    "PeerUnavailable",
    "QueueTimeout",
    "RepositoryError",
    "RuntimeFailed",
    "ShuttingDown",
    "Unsupported",
]


class EdgeperfServerError(Exception):
    """Root of every error the server raises on purpose."""

    grpc_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL
    reason: ClassVar[str] = "OTHER"
    """Triton's failure reason label for metrics: REJECTED, CANCELED, BACKEND or OTHER."""


class ModelNotFound(EdgeperfServerError):
    """Unknown model, unknown version, or a model that is not ready."""

    grpc_code = grpc.StatusCode.NOT_FOUND


class InvalidInput(EdgeperfServerError):
    """The request does not match the model: input names, count, dtype, shape, outputs."""

    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class Overloaded(EdgeperfServerError):
    """The model's queue is full (`max_queue_size`); message ends in "Exceeds maximum queue size"."""

    grpc_code = grpc.StatusCode.UNAVAILABLE
    reason = "REJECTED"


class OverBudget(EdgeperfServerError):
    """Accepting the request would take the request data held by the server over its byte budget."""

    grpc_code = grpc.StatusCode.UNAVAILABLE
    reason = "REJECTED"


class QueueTimeout(EdgeperfServerError):
    """The request waited longer than its queue timeout; message "Request timeout expired"."""

    grpc_code = grpc.StatusCode.UNAVAILABLE
    reason = "REJECTED"


SHUTDOWN_MESSAGE: Final = "GRPC server is shutting down and has stopped accepting new requests."
"""Triton's exact message for requests that arrive while the server drains."""


class ShuttingDown(EdgeperfServerError):
    """The server is draining and refuses new requests (message SHUTDOWN_MESSAGE)."""

    grpc_code = grpc.StatusCode.UNAVAILABLE
    reason = "REJECTED"


class PeerUnavailable(EdgeperfServerError):
    """Under `serve --workers N`: another worker did not answer for its share of the statistics."""

    grpc_code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(EdgeperfServerError):
    """The request's deadline passed before it ran; it was dropped from the queue."""

    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "CANCELED"


class MessageTooLarge(EdgeperfServerError):
    """A message exceeds the configured size limit."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Busy(EdgeperfServerError):
    """The server already holds its limit of inference RPCs (`--max-inflight`); refused before any work.

    RESOURCE_EXHAUSTED (HTTP 429's counterpart), not UNAVAILABLE: the server is up and answering, it
    has no room for more right now, and the client should slow down rather than fail over."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "REJECTED"


class Unsupported(EdgeperfServerError):
    """A feature or RPC edgeperf does not serve."""

    grpc_code = grpc.StatusCode.UNIMPLEMENTED


class RuntimeFailed(EdgeperfServerError):
    """The runtime (ONNX Runtime or a pipeline) failed on a batch; the message is the runtime's."""

    grpc_code = grpc.StatusCode.INTERNAL
    reason = "BACKEND"


class ModelConfigError(EdgeperfServerError):
    """A model configuration is invalid; the message names the file, the model and the field."""

    def __init__(self, path: Path | str, field: str, reason: str, *, model: str = "") -> None:
        self.path = Path(path)
        self.field = field
        self.model = model or self.path.parent.name
        self.detail = reason
        super().__init__(f"{self.path}: model '{self.model}': field '{field}': {reason}")


class RepositoryError(ModelConfigError):
    """The model repository layout is invalid (missing folder, no versions, no model file)."""
