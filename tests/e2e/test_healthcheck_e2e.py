"""deploy/healthcheck.py (the images' HEALTHCHECK) against a real server: plaintext, TLS and mutual TLS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e._server import serve
from tests.e2e.test_tls_e2e import certs  # noqa: F401 (the fixture)

pytestmark = pytest.mark.e2e

HEALTHCHECK = Path(__file__).resolve().parents[2] / "deploy" / "healthcheck.py"


def healthcheck(address: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EDGEPERF_")}
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK)],
        env={**clean, "EDGEPERF_LISTEN": address, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_plaintext_server_with_a_token_is_healthy_without_one(tiny_repo: Path, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    with serve(tiny_repo, "--auth-token-file", str(token)) as server:
        done = healthcheck(server.address)
    assert (done.returncode, done.stdout.strip()) == (0, "SERVING"), done.stderr


def test_tls_and_mutual_tls_servers_are_checked_over_tls(tiny_repo: Path, certs: Path) -> None:  # noqa: F811
    tls = {"EDGEPERF_TLS_CERT": str(certs / "server.pem"), "EDGEPERF_HEALTH_CA": str(certs / "ca.pem")}
    with serve(
        tiny_repo, "--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key")
    ) as server:
        ok = healthcheck(server.address, **tls)
        plain = healthcheck(server.address)  # a plaintext check against a TLS server fails: it must use TLS
        wrong_ca = healthcheck(server.address, **{**tls, "EDGEPERF_HEALTH_CA": str(certs / "client.pem")})
    assert (ok.returncode, ok.stdout.strip()) == (0, "SERVING"), ok.stderr
    assert plain.returncode == 1 and wrong_ca.returncode == 1
    mutual = ("--tls-client-ca", str(certs / "ca.pem"))
    with serve(
        tiny_repo, "--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"), *mutual
    ) as server:
        mtls = {**tls, "EDGEPERF_TLS_CLIENT_CA": str(certs / "ca.pem")}
        without = healthcheck(server.address, **mtls)
        with_cert = healthcheck(
            server.address,
            **mtls,
            EDGEPERF_HEALTH_CLIENT_CERT=str(certs / "client.pem"),
            EDGEPERF_HEALTH_CLIENT_KEY=str(certs / "client.key"),
        )
    assert without.returncode == 1 and "EDGEPERF_HEALTH_CLIENT_CERT" in without.stderr
    assert (with_cert.returncode, with_cert.stdout.strip()) == (0, "SERVING"), with_cert.stderr
