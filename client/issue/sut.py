"""The system-under-test seam: LoadGen's QuerySample / QuerySampleResponse / SystemUnderTest vocabulary.

The issue loop hands each query to `SystemUnderTest.issue_query(samples, complete)`; the SUT reports
every sample back, exactly once, through the `complete` callback it was given (LoadGen's
`QuerySamplesComplete`). A failed sample is still completed: its response carries the gRPC status
name and message instead of data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "STATUS_OK",
    "InFlightCounted",
    "QuerySample",
    "QuerySampleResponse",
    "QuerySamplesComplete",
    "SystemUnderTest",
]

STATUS_OK = "OK"
"""`QuerySampleResponse.status` of a sample the server answered successfully."""


@dataclass(frozen=True, slots=True)
class QuerySample:
    """One sample of a query, as LoadGen's `QuerySample{id, index}`."""

    id: int
    """Opaque response id the SUT hands back; edgeperf uses the sample's sequence number (>= 0)."""
    index: int
    """Index into the query sample library."""


@dataclass(frozen=True, slots=True, kw_only=True)
class QuerySampleResponse:
    """The answer for one sample, as LoadGen's `QuerySampleResponse{id, data}` plus what the network adds."""

    id: int
    """The `QuerySample.id` this answers."""
    data: bytes = b""
    """Raw output bytes of this sample (every output's raw contents, in the model's output order)."""
    status: str = STATUS_OK
    """`OK`, or the gRPC status name of the failure (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, ...)."""
    error: str = ""
    """The failure's message; empty when `status` is `OK`."""
    queue_ns: int = -1
    """Server-reported queue time (`edgeperf_queue_ns`), -1 when the server does not report it."""
    compute_ns: int = -1
    """Server-reported compute time (input + infer + output), -1 when unknown."""
    sent_ns: int = -1
    """`time.perf_counter_ns()` when the request carrying the sample was sent, -1 when unknown."""


class QuerySamplesComplete(Protocol):
    """LoadGen's `QuerySamplesComplete`: the SUT reports finished samples here.

    Args:
        responses: one response per finished sample; each sample is completed exactly once.
        completed_ns: `time.perf_counter_ns()` taken the moment the responses arrived, before any
            decoding; every response of the call shares it (as LoadGen's entry timestamp).
    """

    def __call__(self, responses: Sequence[QuerySampleResponse], completed_ns: int) -> None: ...


class SystemUnderTest(Protocol):
    """What the issue loop drives: `GrpcSut` over the network, `FakeSut` in tests.

    A SUT must never raise from `issue_query` for a per-sample failure: it completes the sample with
    a non-OK status instead. It raises `SutError` only when it cannot serve the run at all.
    """

    @property
    def name(self) -> str:
        """A human-readable name for the logs (`sut_name`)."""
        ...

    async def issue_query(self, samples: Sequence[QuerySample], complete: QuerySamplesComplete) -> None:
        """Send `samples`; return as soon as they are on their way, not when they are answered.

        Args:
            samples: the samples of one query (several queries when the Server scenario coalesces).
            complete: where every sample is reported when its response (or failure) arrives.
        """
        ...

    async def flush_queries(self) -> None:
        """No more queries will be issued in this run; send anything still held back."""
        ...


@runtime_checkable
class InFlightCounted(Protocol):
    """A SUT with a transport-level cap on requests in flight (`GrpcSut`), for the client self-check."""

    @property
    def in_flight_cap(self) -> int | None:
        """Requests allowed in flight at once; None: no cap."""
        ...

    @property
    def in_flight_overflow(self) -> int:
        """Requests so far that found the cap reached and waited for a free slot (never dropped)."""
        ...
