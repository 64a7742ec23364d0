#!/usr/bin/env python3
"""Container health check for edgeperf-server: gRPC health `Check` on the local port, over TLS when it serves TLS.

Reads the server's own settings: EDGEPERF_LISTEN (the port), EDGEPERF_TLS_CERT (TLS on) and
EDGEPERF_TLS_CLIENT_CA (mutual TLS). The CA that signed the server's certificate is EDGEPERF_HEALTH_CA
(default: EDGEPERF_TLS_CERT itself, right for a self-signed certificate); the name checked against the
certificate is EDGEPERF_HEALTH_SERVER_NAME (default localhost); with mutual TLS the check presents
EDGEPERF_HEALTH_CLIENT_CERT and EDGEPERF_HEALTH_CLIENT_KEY. Health needs no token. Exit 0 when SERVING.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

TIMEOUT_S = 3.0


def _read(variable: str) -> bytes | None:
    value = os.environ.get(variable)
    return Path(value).read_bytes() if value else None


def channel() -> grpc.Channel:
    port = os.environ.get("EDGEPERF_LISTEN", "127.0.0.1:8001").rpartition(":")[2]
    target = f"127.0.0.1:{port}"
    if not os.environ.get("EDGEPERF_TLS_CERT"):
        return grpc.insecure_channel(target)
    root = _read("EDGEPERF_HEALTH_CA") or _read("EDGEPERF_TLS_CERT")
    key, chain = None, None
    if os.environ.get("EDGEPERF_TLS_CLIENT_CA"):
        key, chain = _read("EDGEPERF_HEALTH_CLIENT_KEY"), _read("EDGEPERF_HEALTH_CLIENT_CERT")
        if key is None or chain is None:
            raise OSError("mutual TLS: set EDGEPERF_HEALTH_CLIENT_CERT and EDGEPERF_HEALTH_CLIENT_KEY")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=root, private_key=key, certificate_chain=chain
    )
    name = os.environ.get("EDGEPERF_HEALTH_SERVER_NAME", "localhost")
    return grpc.secure_channel(target, credentials, options=[("grpc.ssl_target_name_override", name)])


def main() -> int:
    try:
        with channel() as opened:
            reply = health_pb2_grpc.HealthStub(opened).Check(
                health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S
            )
    except (grpc.RpcError, OSError) as exc:
        print(f"edgeperf-healthcheck: {exc}", file=sys.stderr)
        return 1
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    print("SERVING" if serving else health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main())
