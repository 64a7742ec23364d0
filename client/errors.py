"""Errors raised by edgeperf.client.

EdgeperfClientError
├── SutError             the system under test cannot serve the run (connection, metadata, stream)
│   └── ServerUnavailable    the server is not live/ready, or the model is not ready
├── QslError             the query sample library cannot load a sample or serialize it for the model's inputs
└── RunSetupError        options that cannot make a run (bad address, TLS files, benchmark/model mismatch)

Per-sample failures (a rejected, failed or timed-out request) are *not* exceptions: the SUT records
them with their gRPC status, the result counts them and becomes INVALID. Transport errors
(`grpc.aio.AioRpcError`) are translated into these classes only in `edgeperf.client.issue.sut_grpc`.
"""

from __future__ import annotations

__all__ = [
    "EdgeperfClientError",
    "QslError",
    "RunSetupError",
    "ServerUnavailable",
    "SutError",
]


class EdgeperfClientError(Exception):
    """Root of every error edgeperf.client raises on purpose."""


class SutError(EdgeperfClientError):
    """The system under test cannot serve the run at all (not one sample: those are recorded)."""

    def __init__(self, message: str, *, status: str = "UNKNOWN") -> None:
        super().__init__(message)
        self.status = status
        """gRPC status name (`UNAVAILABLE`, `NOT_FOUND`, ...) or `UNKNOWN` when there is none."""


class ServerUnavailable(SutError):
    """The server is not live or ready, or the model is not ready."""


class QslError(EdgeperfClientError):
    """The query sample library cannot load a sample or serialize it for the model's inputs.

    Not `edgeperf.benchmarks._common.DatasetError` (a dataset's files are missing or malformed): a QSL over a
    dataset that opened fine raises this when a sample does not fit the model (a missing tensor, a
    wrong dtype or shape) or is issued without having been loaded.
    """


class RunSetupError(EdgeperfClientError):
    """The run options cannot make a run (bad address, unreadable TLS files, model/benchmark mismatch)."""
