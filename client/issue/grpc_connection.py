"""The connection to a KServe v2 gRPC server and what it says about itself and the model.

`GrpcConnection` holds the channels' configuration (address, TLS, bearer token, deadline) and the
untimed RPCs a run asks before it starts: liveness and readiness, ModelMetadata and ModelConfig (the
model's signature). `GrpcSut` (`edgeperf.client.issue.sut_grpc`)
adds the timed data path on the same channels. `grpc.aio.AioRpcError` is translated into
`edgeperf.client.errors` here and there only.
"""

from __future__ import annotations

import enum
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import grpc
import grpc.aio

from edgeperf.client.errors import RunSetupError, ServerUnavailable, SutError
from edgeperf.client.issue.grpc_response import PayloadEncoder
from edgeperf.client.plan.qsl import ModelSignature
from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos.kserve import TensorSpec

__all__ = ["SERVICE", "GrpcConnection", "GrpcSutConfig", "SutState", "TlsFiles"]

SERVICE = "/inference.GRPCInferenceService/"


class SutState(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsFiles:
    """PEM files for TLS; client certificate and key together give mutual TLS."""

    root_cert: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GrpcSutConfig:
    """How `GrpcSut` reaches the server and shapes its requests."""

    address: str
    """`HOST:PORT`."""
    model: str
    model_version: str = ""
    streaming: bool = False
    """One bidirectional ModelStreamInfer per channel instead of unary ModelInfer calls."""
    transport: Literal["h2", "grpcio"] = "h2"
    """The timed path's transport: edgeperf's own HTTP/2 (`edgeperf.client.issue.h2_channel`) or grpc.aio."""
    channels: int = 1
    """Separate connections (a unique channel argument each), used round-robin."""
    batch_size: int = 1
    """Samples per request for a query of several samples; capped by the model's max batch size."""
    max_in_flight: int | None = None
    """Requests in flight at once; `issue_query` waits for a free slot (counted in `in_flight_overflow`).
    None: unlimited."""
    deadline_ms: int | None = 30_000
    """Per-request deadline; a request past it completes its samples with DEADLINE_EXCEEDED."""
    tls: TlsFiles | None = None
    auth_token: str | None = None
    """Sent as `authorization: Bearer TOKEN` metadata on every call (edgeperf-server's --auth-token)."""
    collect_data: bool = True
    """Keep each sample's output bytes (needed for the accuracy log)."""
    log_payload: PayloadEncoder | None = None
    """Turns a sample's output bytes into what the accuracy log keeps (a benchmark's reference payload)."""


class GrpcConnection:
    """The server's address, credentials and call metadata, and its untimed RPCs over the first channel."""

    def __init__(self, config: GrpcSutConfig) -> None:
        self.config = config
        self._state = SutState.UNOPENED
        self._channels: list[grpc.aio.Channel] = []
        self._timeout_s = None if config.deadline_ms is None else config.deadline_ms / 1000
        self._metadata: tuple[tuple[str, str], ...] | None = (
            None if config.auth_token is None else (("authorization", f"Bearer {config.auth_token}"),)
        )

    @property
    def state(self) -> SutState:
        return self._state

    def _credentials(self) -> grpc.ChannelCredentials | None:
        tls = self.config.tls
        if tls is None:
            return None
        try:
            root = tls.root_cert.read_bytes() if tls.root_cert else None
            key = tls.client_key.read_bytes() if tls.client_key else None
            chain = tls.client_cert.read_bytes() if tls.client_cert else None
        except OSError as exc:
            raise RunSetupError(f"cannot read a TLS file: {exc}") from exc
        if (key is None) != (chain is None):
            raise RunSetupError("mutual TLS needs both a client certificate and a client key")
        return grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)

    def _tls_context(self) -> ssl.SSLContext | None:
        """The same TLS files as `_credentials`, for the HTTP/2 transport (HTTP/2 agreed by ALPN)."""
        tls = self.config.tls
        if tls is None:
            return None
        if (tls.client_key is None) != (tls.client_cert is None):
            raise RunSetupError("mutual TLS needs both a client certificate and a client key")
        try:
            context = ssl.create_default_context(cafile=tls.root_cert)
            if tls.client_cert is not None and tls.client_key is not None:
                context.load_cert_chain(tls.client_cert, tls.client_key)
        except (OSError, ssl.SSLError) as exc:
            raise RunSetupError(f"cannot read a TLS file: {exc}") from exc
        context.set_alpn_protocols(["h2"])
        return context

    @property
    def metadata(self) -> tuple[tuple[str, str], ...] | None:
        """The call metadata every RPC carries (the bearer token)."""
        return self._metadata

    def side_channel(self) -> grpc.aio.Channel:
        """A further channel to the server, for power marks and network probes: its own connection, so
        they neither wait behind nor delay the inference traffic. The caller closes it."""
        credentials = self._credentials()
        options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        options.append(("grpc.edgeperf_channel_index", -1))
        if credentials is None:
            return grpc.aio.insecure_channel(self.config.address, options=options)
        return grpc.aio.secure_channel(self.config.address, credentials, options=options)

    def _require_open(self) -> None:
        if self._state is not SutState.OPENED:
            raise RuntimeError(f"GrpcSut is {self._state.value}, not opened")

    async def _unary(self, method: str, request: Any, response_type: Any) -> Any:
        self._require_open()
        call = self._channels[0].unary_unary(
            SERVICE + method,
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_type.FromString,
        )
        try:
            return await call(request, timeout=self._timeout_s, metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            status = exc.code().name
            cls = ServerUnavailable if status in ("UNAVAILABLE", "DEADLINE_EXCEEDED") else SutError
            raise cls(
                f"{method} to {self.config.address} failed: {status}: {exc.details()}", status=status
            ) from exc

    async def check_ready(self) -> None:
        """Raise `ServerUnavailable` unless the server is live and ready and the model is ready."""
        live = await self._unary("ServerLive", pb.ServerLiveRequest(), pb.ServerLiveResponse)
        ready = await self._unary("ServerReady", pb.ServerReadyRequest(), pb.ServerReadyResponse)
        if not (live.live and ready.ready):
            raise ServerUnavailable(f"server {self.config.address} is not ready (live={live.live})")
        model = await self._unary(
            "ModelReady",
            pb.ModelReadyRequest(name=self.config.model, version=self.config.model_version),
            pb.ModelReadyResponse,
        )
        if not model.ready:
            raise ServerUnavailable(await self._not_ready_message())

    async def _not_ready_message(self) -> str:
        # NOTE: RepositoryIndex is Triton's, not KServe core; a server without it gets the plain message.
        try:
            index = await self._unary(
                "RepositoryIndex", pb.RepositoryIndexRequest(), pb.RepositoryIndexResponse
            )
        except SutError:
            return f"model {self.config.model!r} is not ready on {self.config.address}"
        names = sorted({m.name for m in index.models})
        if self.config.model in names:
            return f"model {self.config.model!r} is on {self.config.address} but not ready"
        served = ", ".join(names) if names else "none"
        return f"model {self.config.model!r} is not served by {self.config.address} (models: {served})"

    async def model_signature(self) -> ModelSignature:
        """The model's tensors from ModelMetadata and its max batch size from ModelConfig.

        Servers without the ModelConfig RPC: a leading -1 dimension is taken as the batch dimension.
        """
        meta = await self._unary(
            "ModelMetadata",
            pb.ModelMetadataRequest(name=self.config.model, version=self.config.model_version),
            pb.ModelMetadataResponse,
        )
        max_batch: int | None
        try:
            config = await self._unary(
                "ModelConfig",
                pb.ModelConfigRequest(name=self.config.model, version=self.config.model_version),
                pb.ModelConfigResponse,
            )
            max_batch = int(config.config.max_batch_size)
        except SutError as exc:
            if isinstance(exc, ServerUnavailable):
                raise
            max_batch = None
        tensors = list(meta.inputs) + list(meta.outputs)
        if max_batch is None:
            batched = bool(tensors) and all(len(t.shape) > 0 and t.shape[0] == -1 for t in tensors)
            max_batch = self.config.batch_size if batched else 0

        def info(t: Any) -> TensorSpec:
            shape = tuple(int(d) for d in t.shape)
            return TensorSpec(name=t.name, datatype=t.datatype, shape=shape[1:] if max_batch else shape)

        return ModelSignature(
            name=self.config.model,
            version=self.config.model_version,
            inputs=tuple(info(t) for t in meta.inputs),
            outputs=tuple(info(t) for t in meta.outputs),
            max_batch_size=max_batch,
        )

    async def model_parameters(self) -> dict[str, str]:
        """The string parameters of the model's config (edgeperf's stand-ins record `edgeperf_size` there);
        empty for a server without the ModelConfig RPC."""
        try:
            config = await self._unary(
                "ModelConfig",
                pb.ModelConfigRequest(name=self.config.model, version=self.config.model_version),
                pb.ModelConfigResponse,
            )
        except SutError as exc:
            if isinstance(exc, ServerUnavailable):
                raise
            return {}
        return {key: value.string_value for key, value in config.config.parameters.items()}
