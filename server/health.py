"""grpc.health.v1 for the edgeperf server: per-service status, NOT_SERVING while starting and draining.

Kubernetes `grpc:` probes call Check with an empty service name (the whole server) or a service name.
Check and Watch come from grpcio-health-checking; this module only decides the statuses.
"""

from __future__ import annotations

from typing import Final

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio

from edgeperf.server.grpc_handlers import add_service

__all__ = ["HEALTH_SERVICE", "SERVICES", "HealthStatus"]

SERVICES: Final = ("", "inference.GRPCInferenceService", "edgeperf.v1.EdgeperfService")
"""Names whose status Check and Watch report; "" is the server as a whole."""

HEALTH_SERVICE: Final = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


class HealthStatus:
    """The health service of one server. Starts NOT_SERVING; `serving()` once the models are ready."""

    def __init__(self) -> None:
        self._servicer = health_aio.HealthServicer()

    def add_to_server(self, server: grpc.aio.Server) -> None:
        # NOTE: not add_HealthServicer_to_server: bytes that do not parse must not log a traceback.
        add_service(self._servicer, server, health_pb2.DESCRIPTOR.services_by_name["Health"], health_pb2)

    async def serving(self) -> None:
        """Every service answers SERVING."""
        for service in SERVICES:
            await self._servicer.set(service, health_pb2.HealthCheckResponse.SERVING)

    async def not_serving(self) -> None:
        """Every service answers NOT_SERVING (starting, or draining before shutdown)."""
        for service in SERVICES:
            await self._servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)

    async def shutdown(self) -> None:
        """NOT_SERVING for good: later `serving()` calls are ignored (grpcio-health-checking semantics)."""
        await self._servicer.enter_graceful_shutdown()
