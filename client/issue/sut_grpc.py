"""`GrpcSut`: the SUT over KServe v2 gRPC (unary ModelInfer or ModelStreamInfer), for any compatible server.

The timed path sends pre-serialized request bytes (see `edgeperf.client.plan.qsl`) and takes the
completion timestamp the moment the response bytes arrive, before protobuf decoding. It runs over
edgeperf's own HTTP/2 transport (`edgeperf.client.issue.h2_channel`, the default: a third of grpc.aio's
CPU per call) or, with `transport="grpcio"`, through grpc.aio multicallables with no serializers
 (`edgeperf.client.issue.grpc_response` then reads
the server's timings and splits the outputs per sample). Every sample is completed exactly once: a failed, rejected or timed-out request
completes its samples with the gRPC status name. `grpc.aio.AioRpcError` is translated here and in
`edgeperf.client.issue.grpc_connection` (the untimed RPCs: readiness, model signature, always on
grpc.aio) only.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from typing import Any

import grpc
import grpc.aio

from edgeperf.client.errors import RunSetupError
from edgeperf.client.issue.grpc_connection import SERVICE, GrpcConnection, GrpcSutConfig, SutState, TlsFiles
from edgeperf.client.issue.grpc_response import decode_response
from edgeperf.client.issue.h2_channel import H2Channel
from edgeperf.client.issue.sut import QuerySample, QuerySampleResponse, QuerySamplesComplete
from edgeperf.client.issue.sut_calls import StreamCall, StreamListener, UnaryCall
from edgeperf.client.plan.qsl import EncodedSample, SerializedQsl
from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos.kserve import request_id_field

__all__ = ["GrpcSut", "GrpcSutConfig", "SutState", "TlsFiles"]

_FAIL_FAST_AFTER = 16
"""Unary requests answered UNAVAILABLE in a row after which the rest of a query is failed unsent."""
RECONNECT_BACKOFF_MS = 250
MAX_RECONNECT_BACKOFF_MS = 1_000


_INFER = SERVICE + "ModelInfer"
_STREAM_INFER = SERVICE + "ModelStreamInfer"


class GrpcSut(GrpcConnection):
    """A `SystemUnderTest` over gRPC; an async context manager (`async with GrpcSut(cfg) as sut`).

    What the server and the model are (readiness, ModelMetadata, ModelConfig) comes
    from `GrpcConnection`; this class adds the channels' timed data path."""

    def __init__(self, config: GrpcSutConfig) -> None:
        if config.channels < 1 or config.batch_size < 1:
            raise RunSetupError("channels and batch_size must be at least 1")
        if config.max_in_flight is not None and config.max_in_flight < 1:
            raise RunSetupError("max_in_flight must be at least 1 (or None for unlimited)")
        super().__init__(config)
        self._infer: list[Any] = []
        self._h2: list[H2Channel] = []
        self._streams: list[StreamCall] = []
        self._rr = itertools.count()
        self._request_ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._window = asyncio.Semaphore(config.max_in_flight) if config.max_in_flight else None
        self._overflow = 0
        self._qsl: SerializedQsl | None = None
        self._max_batch = 0
        self._watchdog: asyncio.Task[None] | None = None
        self._unavailable_in_a_row = 0
        self._last_unavailable = ""

    @property
    def name(self) -> str:
        mode = "stream" if self.config.streaming else "unary"
        return (
            f"edgeperf gRPC SUT ({self.config.address}, {self.config.model}, {mode}, {self.config.transport})"
        )

    @property
    def in_flight_cap(self) -> int | None:
        return self.config.max_in_flight

    @property
    def in_flight_overflow(self) -> int:
        """Requests that found `max_in_flight` reached and waited for a slot (sent late, never dropped)."""
        return self._overflow

    async def __aenter__(self) -> GrpcSut:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the channels (and streams). Connection problems show up at the first RPC."""
        if self._state is not SutState.UNOPENED:
            raise RuntimeError(f"GrpcSut cannot be opened when {self._state.value}")
        credentials = self._credentials()
        if self.config.transport == "h2":
            tls = self._tls_context()
            self._h2 = [
                H2Channel(
                    self.config.address,
                    tls=tls,
                    metadata=self._metadata or (),
                    deadline_ms=self.config.deadline_ms,
                    backoff_ms=(RECONNECT_BACKOFF_MS, MAX_RECONNECT_BACKOFF_MS),
                )
                for _ in range(self.config.channels)
            ]
        # NOTE: with the HTTP/2 transport, grpc.aio carries only the untimed RPCs, on one channel.
        grpcio_channels = 1 if self._h2 else self.config.channels
        for i in range(grpcio_channels):
            options = [
                ("grpc.max_send_message_length", -1),
                ("grpc.max_receive_message_length", -1),
                # NOTE: gRPC's reconnect backoff grows to 120 s; a run must find a restarted server within a
                # second, not after the run has ended (fault suite: server SIGKILL and restart). The minimum
                # stays at gRPC's 20 s: it is also the connect timeout, which a lossy link needs.
                ("grpc.initial_reconnect_backoff_ms", RECONNECT_BACKOFF_MS),
                ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
                # NOTE: a unique argument keeps gRPC from sharing one connection between channels.
                ("grpc.edgeperf_channel_index", i),
            ]
            if credentials is None:
                channel = grpc.aio.insecure_channel(self.config.address, options=options)
            else:
                channel = grpc.aio.secure_channel(self.config.address, credentials, options=options)
            self._channels.append(channel)
            self._infer.append(channel.unary_unary(_INFER))
        self._state = SutState.OPENED
        if self.config.streaming and self._h2:
            for h2 in self._h2:
                await h2.connect()  # NOTE: so that the stream is open (or broken) before the first write
                stream = StreamCall()
                self._streams.append(stream)
                h2.stream_call(
                    _STREAM_INFER,
                    StreamListener(stream, self._stream_response, self._break_stream),
                    stream.opened,
                )
        elif self.config.streaming:
            for channel in self._channels:
                stream = StreamCall(channel.stream_stream(_STREAM_INFER)(metadata=self._metadata))
                stream.reader = asyncio.create_task(self._read_stream(stream))
                self._streams.append(stream)
            if self._timeout_s is not None:
                self._watchdog = asyncio.create_task(self._expire_stream_requests(self._timeout_s))

    async def close(self) -> None:
        """Fail what is still pending, cancel the tasks and close the channels. Safe to call twice."""
        if self._state is SutState.CLOSED:
            return
        self._state = SutState.CLOSED
        for stream in self._streams:
            self._fail_stream(stream, "CANCELLED", "the SUT was closed")
            if stream.call is not None:
                stream.call.cancel()
            if stream.h2 is not None:
                stream.h2.cancel()
        for h2 in self._h2:
            await h2.close()
        tasks = [
            t for t in (*self._tasks, self._watchdog, *(s.reader for s in self._streams)) if t is not None
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for channel in self._channels:
            await channel.close()

    def use_qsl(self, qsl: SerializedQsl) -> None:
        """The library whose serialized samples `issue_query` sends."""
        self._qsl = qsl
        self._max_batch = qsl.encoder.signature.max_batch_size

    # --- the timed path ---------------------------------------------------------------------------

    def _chunks(self, samples: Sequence[QuerySample]) -> list[tuple[list[QuerySample], list[EncodedSample]]]:
        assert self._qsl is not None, "use_qsl() before issue_query()"
        qsl = self._qsl
        size = min(self.config.batch_size, self._max_batch) if self._max_batch > 0 else 1
        out: list[tuple[list[QuerySample], list[EncodedSample]]] = []
        group: list[QuerySample] = []
        encoded: list[EncodedSample] = []
        for sample in samples:
            enc = qsl.get(sample.index)
            if group and (len(group) >= size or enc.shapes != encoded[0].shapes):
                out.append((group, encoded))
                group, encoded = [], []
            group.append(sample)
            encoded.append(enc)
        if group:
            out.append((group, encoded))
        return out

    async def issue_query(self, samples: Sequence[QuerySample], complete: QuerySamplesComplete) -> None:
        self._require_open()
        qsl = self._qsl
        assert qsl is not None, "use_qsl() before issue_query()"
        if len(samples) == 1:
            # NOTE: the Server and SingleStream path: the sample's prebuilt request bytes go out as they are.
            # Always sent, even after many UNAVAILABLE: it is what lets gRPC reach a restarted server again.
            sample = samples[0]
            await self._send(qsl.get(sample.index).request, [sample], complete)
            return
        encoder = qsl.encoder
        for n, (group, encoded) in enumerate(self._chunks(samples)):
            if n > 0 and self._unavailable_in_a_row >= _FAIL_FAST_AFTER:
                # NOTE: the server is gone; the rest of a large (Offline) query fails now, not request by request.
                # The query's first request still goes out, so a server that came back is found again.
                self._complete_failed(
                    group,
                    time.perf_counter_ns(),
                    complete,
                    "UNAVAILABLE",
                    "not sent: " + self._last_unavailable,
                )
                continue
            await self._send(encoder.batch_request(encoded), group, complete)

    async def _send(self, request: bytes, group: list[QuerySample], complete: QuerySamplesComplete) -> None:
        window = self._window
        if window is not None:
            if window.locked():
                self._overflow += 1
            await window.acquire()
        channels = len(self._h2) or len(self._channels)
        channel = next(self._rr) % channels if channels > 1 else 0
        if self.config.streaming:
            await self._send_stream(self._streams[channel], request, group, complete)
        elif self._h2:
            self._h2[channel].call(_INFER, UnaryCall(self._unary_done, group, complete), request)
        else:
            task = asyncio.create_task(self._send_unary(channel, request, group, complete))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def flush_queries(self) -> None:
        return None

    async def _send_unary(
        self, channel: int, request: bytes, samples: list[QuerySample], complete: QuerySamplesComplete
    ) -> None:
        sent_ns = time.perf_counter_ns()
        try:
            raw = await self._infer[channel](request, timeout=self._timeout_s, metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            status = exc.code().name
            if status == "UNAVAILABLE":
                self._unavailable_in_a_row += 1
                self._last_unavailable = exc.details() or "UNAVAILABLE"
            self._complete_failed(samples, sent_ns, complete, status, exc.details() or "")
            return
        except asyncio.CancelledError:
            self._complete_failed(samples, sent_ns, complete, "CANCELLED", "the request was cancelled")
            raise
        except Exception as exc:  # NOTE: a sample must complete even when the channel misbehaves.
            self._complete_failed(samples, sent_ns, complete, "UNKNOWN", f"{type(exc).__name__}: {exc}")
            return
        finally:
            if self._window is not None:
                self._window.release()
        completed_ns = time.perf_counter_ns()
        self._unavailable_in_a_row = 0
        self._complete_ok(pb.ModelInferResponse.FromString(raw), samples, sent_ns, completed_ns, complete)

    def _unary_done(self, call: UnaryCall, status: str, details: str) -> None:
        if self._window is not None:
            self._window.release()
        if status != "OK" or call.response is None:
            if status == "OK":
                status, details = "INTERNAL", "the server answered OK without a response message"
            elif status == "UNAVAILABLE":
                self._unavailable_in_a_row += 1
                self._last_unavailable = details or "UNAVAILABLE"
            self._complete_failed(call.samples, call.sent_ns, call.complete, status, details)
            return
        self._unavailable_in_a_row = 0
        self._complete_ok(
            pb.ModelInferResponse.FromString(call.response),
            call.samples,
            call.sent_ns,
            call.completed_ns,
            call.complete,
        )

    def _complete_ok(
        self,
        response: pb.ModelInferResponse,
        samples: list[QuerySample],
        sent_ns: int,
        completed_ns: int,
        complete: QuerySamplesComplete,
    ) -> None:
        try:
            results = decode_response(
                response, samples, sent_ns, self.config.collect_data, self.config.log_payload
            )
        except ValueError as exc:
            # NOTE: outputs the benchmark cannot log (wrong size or type) fail their samples, never the loop.
            self._complete_failed(samples, sent_ns, complete, "UNKNOWN", f"cannot log the response: {exc}")
            return
        complete(results, completed_ns)

    async def _send_stream(
        self, stream: StreamCall, request: bytes, samples: list[QuerySample], complete: QuerySamplesComplete
    ) -> None:
        sent_ns = time.perf_counter_ns()
        if stream.broken is not None:
            if self._window is not None:
                self._window.release()
            self._complete_failed(samples, sent_ns, complete, *stream.broken)
            return
        request_id = str(next(self._request_ids))
        stream.pending[request_id] = (samples, sent_ns, complete)
        if stream.h2 is not None or self._h2:
            if stream.h2 is None:
                self._break_stream(stream, "UNAVAILABLE", "the stream could not be opened")
            else:
                stream.h2.write(request + request_id_field(request_id))
            return
        try:
            async with stream.lock:
                await stream.call.write(request + request_id_field(request_id))
        except grpc.aio.AioRpcError as exc:
            self._break_stream(stream, exc.code().name, exc.details() or "")
        except Exception as exc:  # NOTE: writing to a finished stream raises a non-gRPC error.
            self._break_stream(stream, "UNAVAILABLE", f"the stream is closed: {type(exc).__name__}: {exc}")

    async def _read_stream(self, stream: StreamCall) -> None:
        try:
            async for raw in stream.call:
                self._stream_response(stream, raw, time.perf_counter_ns())
            self._break_stream(stream, "UNAVAILABLE", "the server ended the stream")
        except grpc.aio.AioRpcError as exc:
            self._break_stream(stream, exc.code().name, exc.details() or "")
        except asyncio.CancelledError:
            self._break_stream(stream, "CANCELLED", "the SUT was closed")
            raise

    def _stream_response(self, stream: StreamCall, raw: bytes, completed_ns: int) -> None:
        message = pb.ModelStreamInferResponse.FromString(raw)
        entry = stream.pending.pop(message.infer_response.id, None)
        if entry is None:
            return
        if self._window is not None:
            self._window.release()
        samples, sent_ns, complete = entry
        if message.error_message:
            self._complete_failed(samples, sent_ns, complete, "UNKNOWN", message.error_message)
        else:
            self._complete_ok(message.infer_response, samples, sent_ns, completed_ns, complete)

    async def _expire_stream_requests(self, timeout_s: float) -> None:
        timeout_ns = int(timeout_s * 1e9)
        while True:
            await asyncio.sleep(min(timeout_s / 4, 0.5))
            now_ns = time.perf_counter_ns()
            for stream in self._streams:
                expired = []
                for request_id, (_, sent_ns, _) in stream.pending.items():
                    if now_ns - sent_ns < timeout_ns:
                        break  # NOTE: pending is in send order
                    expired.append(request_id)
                for request_id in expired:
                    samples, sent_ns, complete = stream.pending.pop(request_id)
                    if self._window is not None:
                        self._window.release()
                    self._complete_failed(
                        samples,
                        sent_ns,
                        complete,
                        "DEADLINE_EXCEEDED",
                        "no stream response before the deadline",
                    )

    def _break_stream(self, stream: StreamCall, status: str, message: str) -> None:
        if stream.broken is None:
            stream.broken = (status, message)
        self._fail_stream(stream, status, message)

    def _fail_stream(self, stream: StreamCall, status: str, message: str) -> None:
        pending, stream.pending = stream.pending, {}
        for samples, sent_ns, complete in pending.values():
            if self._window is not None:
                self._window.release()
            self._complete_failed(samples, sent_ns, complete, status, message)

    @staticmethod
    def _complete_failed(
        samples: list[QuerySample], sent_ns: int, complete: QuerySamplesComplete, status: str, message: str
    ) -> None:
        completed_ns = time.perf_counter_ns()
        complete(
            [QuerySampleResponse(id=s.id, status=status, error=message, sent_ns=sent_ns) for s in samples],
            completed_ns,
        )
