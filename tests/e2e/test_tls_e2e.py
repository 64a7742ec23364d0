"""TLS and mutual TLS between `edgeperf run` and `edgeperf-server` (certificates made with openssl)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from edgeperf.client.connection_args import Connection
from edgeperf.client.errors import ServerUnavailable
from edgeperf.client.issue.grpc_connection import TlsFiles
from edgeperf.client.plan.settings import Scenario
from edgeperf.client.run import RunOptions, run_benchmark
from tests.e2e._runs import run_options
from tests.e2e._server import serve

pytestmark = pytest.mark.e2e


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=edgeperf-test-ca",
        cwd=d,
    )
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
            cwd=d,
        )
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "1",
            "-extfile",
            f"{name}.ext",
            cwd=d,
        )
    return d


def options(
    address: str, out: Path, conf: Path, certs: Path, *, client_cert: bool, root: bool = True
) -> RunOptions:
    return run_options(
        address,
        Scenario.SINGLE_STREAM,
        out,
        conf,
        deadline_ms=5_000,
        connection=Connection(
            tls=TlsFiles(
                root_cert=certs / "ca.pem" if root else None,
                client_cert=certs / "client.pem" if client_cert else None,
                client_key=certs / "client.key" if client_cert else None,
            )
        ),
    )


async def test_mutual_tls_run_is_valid_and_a_client_without_a_certificate_is_refused(
    tiny_repo: Path, certs: Path, short_conf: Path, tmp_path: Path
) -> None:
    tls = (
        "--tls-cert",
        str(certs / "server.pem"),
        "--tls-key",
        str(certs / "server.key"),
        "--tls-client-ca",
        str(certs / "ca.pem"),
    )
    with serve(tiny_repo, *tls) as server:
        outcome = await run_benchmark(
            options(server.address, tmp_path / "ok", short_conf, certs, client_cert=True)
        )
        assert outcome.validity == "VALID", outcome.summary_text
        with pytest.raises(ServerUnavailable):
            await run_benchmark(
                options(server.address, tmp_path / "no", short_conf, certs, client_cert=False)
            )
    assert not (tmp_path / "no").exists()
