"""The server program's lifecycle: load the core, serve gRPC and metrics, drain on SIGTERM/SIGINT.

Signal handlers are installed here and nowhere else (`serve`). Shutdown order: health turns
NOT_SERVING, the server keeps serving for `drain_delay_s`, then new requests answer UNAVAILABLE
("GRPC server is shutting down and has stopped accepting new requests."), requests already accepted
finish within `grace_s`, the gRPC server stops and the models are released.

Logs are structured: one JSON object per line on stderr. The line with `"event": "ready"` carries the
bound `address` and `port` (so `--listen 127.0.0.1:0` can be discovered) and `metrics_port`.
"""

from __future__ import annotations

import asyncio
import enum
import gc
import logging
import signal
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final

import grpc
from google.protobuf.internal import api_implementation
from grpc_reflection.v1alpha import reflection, reflection_pb2

from edgeperf.protos import edgeperf_service_pb2 as epb
from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.server.admission import AdmissionInterceptor, InflightLimit, grpc_options
from edgeperf.server.auth import TlsMaterialError, TokenAuthInterceptor, server_credentials
from edgeperf.server.core import InferenceCore
from edgeperf.server.gpu.metrics import GpuMetrics, gpu_metrics_or_none
from edgeperf.server.grpc_handlers import add_service
from edgeperf.server.grpc_service import EdgeperfServicer, InferenceServicer
from edgeperf.server.health import HEALTH_SERVICE, HealthStatus
from edgeperf.server.logs import configure_logging
from edgeperf.server.memory import MallocTrimmer
from edgeperf.server.metrics import ServerMetrics
from edgeperf.server.metrics_http import MetricsHttpServer
from edgeperf.server.peers import WorkerRole
from edgeperf.server.power import PowerSource, detect_sources, open_sources, parse_power_spec
from edgeperf.server.raw_inputs import decode_infer_request
from edgeperf.server.settings import ServerConfig, SettingsError, parse_address

__all__ = ["EdgeperfServer", "ServerState", "run", "serve"]

logger = logging.getLogger("edgeperf.server")

_MIN_STOP_GRACE_S: Final = 0.5
"""Time handlers get to send answers the core already produced, even when the grace period is spent."""


class ServerState(enum.Enum):
    UNOPENED = "UNOPENED"
    OPENED = "OPENED"
    DRAINING = "DRAINING"
    CLOSED = "CLOSED"


class EdgeperfServer:
    """The whole server as an async context manager.

    Entering loads the model repository, binds (port 0 picks a free port, see `port`), starts gRPC and
    metrics and turns health to SERVING. Leaving (or `shutdown()`) drains gracefully. Not reusable.
    """

    def __init__(
        self, config: ServerConfig, *, nvml_module: Any | None = None, worker: WorkerRole | None = None
    ) -> None:
        """Args:
        config: the server's settings.
        nvml_module: replaces pynvml for the GPU metrics (tests pass a fake).
        worker: set when this server is one of `serve --workers N` (server/workers.py): it then shares
            its port (SO_REUSEPORT), listens on its private peer socket too, answers ModelStatistics
            with the sum over all workers, and takes its share of the intra-op threads.
        """
        self.config = config
        self._nvml_module = nvml_module
        self._gpu_metrics: GpuMetrics | None = None
        self._worker = worker
        self._state = ServerState.UNOPENED
        self._metrics = ServerMetrics()
        self._metrics_http = MetricsHttpServer(self._metrics)
        self._health = HealthStatus()
        self._core: InferenceCore | None = None
        self._server: grpc.aio.Server | None = None
        self._servicer: InferenceServicer | None = None
        self._port = 0
        self._metrics_port: int | None = None
        self._power: list[PowerSource] = []
        self._trimmer = MallocTrimmer()

    @property
    def state(self) -> ServerState:
        return self._state

    @property
    def port(self) -> int:
        """The bound gRPC port (the chosen one when listening on port 0)."""
        self._require_opened()
        return self._port

    @property
    def address(self) -> str:
        host, _ = parse_address(self.config.listen)
        return f"{host}:{self.port}"

    @property
    def metrics_port(self) -> int | None:
        """The bound metrics port, or None when metrics are off."""
        self._require_opened()
        return self._metrics_port

    @property
    def core(self) -> InferenceCore:
        if self._core is None:
            raise RuntimeError("the server is not started")
        return self._core

    def _require_opened(self) -> None:
        if self._state is ServerState.UNOPENED:
            raise RuntimeError("the server is not started; use `async with EdgeperfServer(config)`")

    async def __aenter__(self) -> EdgeperfServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.shutdown()

    async def start(self) -> None:
        """Load the models, bind, start serving and report ready.

        Raises:
            ModelConfigError: a bad repository or model configuration (names file, model and field).
            SettingsError: the address cannot be bound or a TLS file cannot be read.
            RuntimeError: called twice.
        """
        if self._state is not ServerState.UNOPENED:
            raise RuntimeError(f"start() on a server in state {self._state.value}")
        self._state = ServerState.OPENED
        config = self.config
        started_ns = time.monotonic_ns()
        credentials = None
        try:
            if config.tls_cert is not None and config.tls_key is not None:
                try:  # NOTE: before loading models, which can take minutes, so a bad file fails at once
                    credentials = server_credentials(config.tls_cert, config.tls_key, config.tls_client_ca)
                except TlsMaterialError as err:
                    raise SettingsError(f"TLS: {err}") from None
            self._power = await asyncio.to_thread(_open_power, config.power)
            core = InferenceCore(
                config.model_repository,
                warmup=config.warmup,
                # NOTE: no observer when nobody can scrape: it costs a few us of CPU per request.
                observer=self._metrics if config.metrics_listen is not None else None,
                max_queued_bytes=config.max_queued_bytes,
                intra_op_share=self._worker.count if self._worker else 1,
            )
            await core.__aenter__()
        except BaseException:
            self._close_power()
            self._state = ServerState.CLOSED
            raise
        self._core = core
        try:
            await self._start_serving(core, credentials)
        except BaseException:
            await self.shutdown()
            raise
        models = [m.name for m in core.models()]
        host, _ = parse_address(config.listen)
        protobuf_backend = api_implementation.Type()
        if protobuf_backend != "upb":
            # NOTE: every request and response is parsed and built by protobuf; outside upb (C) that costs
            # several times more CPU per request.
            logger.warning(
                "protobuf runs on its %s backend, not upb: expect much more CPU per request",
                protobuf_backend,
                extra={"event": "slow_protobuf", "protobuf_backend": protobuf_backend},
            )
        logger.info(
            "edgeperf-server ready on %s:%d",
            host,
            self._port,
            extra={
                "event": "worker_ready" if self._worker else "ready",
                "address": f"{host}:{self._port}",
                "port": self._port,
                "metrics_port": self._metrics_port,
                "models": models,
                "power": [f"{p.info.name} ({p.info.covers})" for p in self._power],
                "tls": config.tls_cert is not None,
                "max_message_mb": config.max_message_mb,
                "max_queued_mb": config.max_queued_bytes / 2**20,
                "max_inflight": config.max_inflight,
                "startup_ms": (time.monotonic_ns() - started_ns) // 1_000_000,
                "protobuf_backend": protobuf_backend,
            },
        )

    async def _start_serving(self, core: InferenceCore, credentials: grpc.ServerCredentials | None) -> None:
        config = self.config
        self._metrics.set_queue_depths(
            lambda: [(m.name, v, core.queue_depth(m.name, v)) for m in core.models() for v in m.versions]
        )
        options = [
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
            # NOTE: off for a single server, so a second one on the same port fails instead of sharing it.
            ("grpc.so_reuseport", 1 if self._worker else 0),
            *grpc_options(config.max_inflight),
        ]
        # NOTE: admission after auth, so calls without the token never take or count a slot.
        interceptors: list[grpc.aio.ServerInterceptor] = (
            [TokenAuthInterceptor(config.auth_token)] if config.auth_token else []
        )
        interceptors.append(AdmissionInterceptor(InflightLimit(config.max_inflight, self._metrics.registry)))
        server = grpc.aio.server(options=options, interceptors=interceptors)
        self._server = server
        self._servicer = InferenceServicer(
            core,
            max_send_message_bytes=config.max_message_bytes,
            peers=self._worker.others if self._worker else (),
            auth_token=config.auth_token,
        )
        add_service(
            self._servicer,
            server,
            pb.DESCRIPTOR.services_by_name["GRPCInferenceService"],
            pb,
            in_band=frozenset({"ModelStreamInfer"}),
            decoders={"ModelInfer": decode_infer_request, "ModelStreamInfer": decode_infer_request},
        )
        add_service(
            EdgeperfServicer(
                self._nvml_module, power_sources=self._power, max_send_message_bytes=config.max_message_bytes
            ),
            server,
            epb.DESCRIPTOR.services_by_name["EdgeperfService"],
            epb,
        )
        self._health.add_to_server(server)
        await self._health.not_serving()
        # NOTE: not enable_server_reflection: bytes that do not parse must not log a traceback.
        names = (
            pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name,
            epb.DESCRIPTOR.services_by_name["EdgeperfService"].full_name,
            HEALTH_SERVICE,
            reflection.SERVICE_NAME,
        )
        add_service(
            reflection.aio.ReflectionServicer(names),
            server,
            reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"],
            reflection_pb2,
        )
        try:
            if credentials is not None:
                self._port = server.add_secure_port(config.listen, credentials)
            else:
                self._port = server.add_insecure_port(config.listen)
        except RuntimeError as err:
            raise SettingsError(f"listen: cannot bind {config.listen}: {err}") from err
        if self._port == 0:
            raise SettingsError(f"listen: cannot bind {config.listen}")
        if self._worker is not None and server.add_insecure_port(self._worker.own_address) == 0:
            raise SettingsError(f"worker {self._worker.index}: cannot bind {self._worker.own_address}")
        await server.start()
        if config.metrics_listen is not None:
            # NOTE: NVML only when someone can scrape it; None (logged) without nvidia-ml-py or a GPU.
            self._gpu_metrics = await asyncio.to_thread(gpu_metrics_or_none, self._nvml_module)
            if self._gpu_metrics is not None:
                self._metrics.add_section(self._gpu_metrics.render)
            host, port = parse_address(config.metrics_listen)
            try:
                self._metrics_port = await self._metrics_http.start(host, port)
            except OSError as err:
                raise SettingsError(f"metrics_listen: cannot bind {config.metrics_listen}: {err}") from err
        self._trimmer.start()
        await self._health.serving()

    async def shutdown(self) -> None:
        """Drain and stop; idempotent. In-flight requests get `grace_s` to finish."""
        if self._state in (ServerState.DRAINING, ServerState.CLOSED, ServerState.UNOPENED):
            return
        self._state = ServerState.DRAINING
        config = self.config
        deadline = time.monotonic() + config.grace_s
        logger.info("draining", extra={"event": "draining", "grace_s": config.grace_s})
        await self._health.shutdown()
        if config.drain_delay_s > 0:
            await asyncio.sleep(config.drain_delay_s)
        try:
            if self._core is not None:
                self._core.stop_accepting()
                await self._core.drain(config.grace_s)
            if self._server is not None:
                await self._server.stop(max(deadline - time.monotonic(), _MIN_STOP_GRACE_S))
            if self._servicer is not None:
                await self._servicer.close()
        finally:
            if self._core is not None:
                await self._core.close(grace_s=max(deadline - time.monotonic(), 0.0))
            await self._metrics_http.close()
            await self._trimmer.stop()
            if self._gpu_metrics is not None:
                self._gpu_metrics.close()
            self._close_power()
            self._state = ServerState.CLOSED
            logger.info("stopped", extra={"event": "stopped"})

    def _close_power(self) -> None:
        sources, self._power = self._power, []
        for source in sources:
            source.close()


def _open_power(spec: str) -> list[PowerSource]:
    """The sources `--power` names (an error when one cannot be opened), or what detection finds."""
    items = parse_power_spec(spec)
    if items is not None:
        return open_sources(items)
    sources, skipped = detect_sources()
    for reason in skipped:
        logger.debug("power source skipped: %s", reason, extra={"event": "power_skipped"})
    return sources


# ---------------------------------------------------------------- the program


async def serve(config: ServerConfig) -> int:
    """Serve until SIGTERM or SIGINT, then drain. Returns the exit status (0 after a clean drain)."""
    return await _serve(EdgeperfServer(config), None)


async def serve_worker(config: ServerConfig, role: WorkerRole, report: Callable[[Any], None]) -> int:
    """`serve` as worker `role.index` of `serve --workers N`; `report` gets ("ready", port, metrics
    port, model names) once it serves."""
    return await _serve(EdgeperfServer(config, worker=role), report)


async def _serve(server: EdgeperfServer, report: Callable[[Any], None] | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with server:
            # NOTE: the objects of start-up (ONNX Runtime sessions, protobuf descriptors, numpy, grpc) are
            # moved out of the collector's reach, so its passes over the survivors of the request path stay
            # short; the program's own entry point, not EdgeperfServer, so tests' processes are untouched.
            gc.freeze()
            if report is not None:
                report(("ready", server.port, server.metrics_port, [m.name for m in server.core.models()]))
            await stop.wait()
            logger.info("signal received", extra={"event": "signal"})
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0


def run(config: ServerConfig) -> int:
    """The blocking entry point: structured logging, uvloop, `serve`."""
    configure_logging(config.log_level, json_lines=config.log_json)
    try:
        import uvloop
    except ImportError:  # NOTE: uvloop does not exist on Windows; asyncio's loop works, only slower
        return asyncio.run(serve(config))
    result: int = uvloop.run(serve(config))
    return result
