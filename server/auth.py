"""Access control for non-loopback use: bearer-token interceptor and TLS / mTLS server credentials.

Clients send the metadata `authorization: Bearer <token>`; the scheme is case-insensitive (RFC 6750
§2.1 and RFC 7235 §2.1), the token is compared in constant time. Health checks and reflection stay
open, because Kubernetes `grpc:` probes cannot send metadata.
"""

from __future__ import annotations

import hmac
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import grpc

__all__ = [
    "OPEN_SERVICES",
    "TlsMaterialError",
    "TokenAuthInterceptor",
    "check_tls_material",
    "server_credentials",
]

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
        self._expected = token.encode()

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
        scheme, _, token = value.strip().partition(b" ")
        if scheme.lower() != b"bearer":
            return _abort_handler(handler, "the 'authorization' metadata must use the Bearer scheme")
        if not hmac.compare_digest(token.strip(), self._expected):
            return _abort_handler(handler, "invalid bearer token")
        return handler


class TlsMaterialError(ValueError):
    """A TLS file cannot be read or does not hold what its setting needs; the message names both."""


def _no_password() -> bytes:
    # NOTE: without a callback OpenSSL would prompt on the terminal for an encrypted key's passphrase.
    return b""


def check_tls_material(cert: Path, key: Path, client_ca: Path | None = None) -> None:
    """Check the PEM files before anything slow happens, so a bad file is named instead of a failed bind.

    Raises:
        TlsMaterialError: a file cannot be read, holds no PEM certificate, holds no usable private key
            (or an encrypted one, which grpc cannot use), or the key does not belong to the certificate.
    """
    files = [("--tls-cert", cert), ("--tls-key", key)]
    if client_ca is not None:
        files.append(("--tls-client-ca", client_ca))
    for flag, path in files:
        try:
            path.read_bytes()
        except OSError as err:
            raise TlsMaterialError(f"{flag} {path}: cannot read: {err.strerror or err}") from None
    for flag, path in files:
        if flag == "--tls-key":
            continue
        try:
            ssl.create_default_context(cafile=str(path))
        except ssl.SSLError as err:
            raise TlsMaterialError(
                f"{flag} {path}: no PEM certificate in the file ({err.reason or err})"
            ) from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(cert), str(key), password=_no_password)
    except ssl.SSLError as err:
        if err.reason == "KEY_VALUES_MISMATCH":
            raise TlsMaterialError(
                f"--tls-key {key}: the private key does not belong to --tls-cert {cert}"
            ) from None
        detail = f" ({err.reason})" if err.reason else ""
        raise TlsMaterialError(
            f"--tls-key {key}: not an unencrypted PEM private key for --tls-cert {cert}{detail}"
        ) from None


def server_credentials(cert: Path, key: Path, client_ca: Path | None = None) -> grpc.ServerCredentials:
    """TLS credentials from PEM files; with `client_ca`, clients must present a certificate it signed (mTLS).

    Raises:
        TlsMaterialError: see `check_tls_material`.
    """
    check_tls_material(cert, key, client_ca)
    root = client_ca.read_bytes() if client_ca is not None else None
    return grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())],
        root_certificates=root,
        require_client_auth=client_ca is not None,
    )
