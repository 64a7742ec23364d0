"""Access control for non-loopback use: bearer-token interceptor and TLS / mTLS server credentials.

Clients send the metadata `authorization: Bearer <token>`. Health checks and reflection stay open,
because Kubernetes `grpc:` probes cannot send metadata.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import grpc

__all__ = ["OPEN_SERVICES", "TokenAuthInterceptor", "server_credentials"]

OPEN_SERVICES: Final = ("/grpc.health.v1.Health/", "/grpc.reflection.")
"""Method path prefixes served without a token."""


def _abort_handler(handler: grpc.RpcMethodHandler, details: str) -> grpc.RpcMethodHandler:
    async def deny(request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, details)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(deny)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(deny)
    return grpc.unary_unary_rpc_method_handler(deny)


class TokenAuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Rejects calls without `authorization: Bearer <token>` with UNAUTHENTICATED."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the auth token must not be empty")
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_SERVICES):
            return handler
        presented = next(
            (
                value
                for key, value in handler_call_details.invocation_metadata or ()
                if key == "authorization"
            ),
            None,
        )
        if presented is None:
            return _abort_handler(handler, "missing 'authorization: Bearer <token>' metadata")
        value = presented.encode() if isinstance(presented, str) else bytes(presented)
        if not hmac.compare_digest(value, self._expected):
            return _abort_handler(handler, "invalid bearer token")
        return handler


def server_credentials(cert: Path, key: Path, client_ca: Path | None = None) -> grpc.ServerCredentials:
    """TLS credentials from PEM files; with `client_ca`, clients must present a certificate it signed (mTLS).

    Raises:
        OSError: a file cannot be read.
    """
    root = client_ca.read_bytes() if client_ca is not None else None
    return grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())],
        root_certificates=root,
        require_client_auth=client_ca is not None,
    )
