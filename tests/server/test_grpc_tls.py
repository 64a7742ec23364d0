"""TLS and mutual TLS from PEM files (certificates made with the openssl command line for the test)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import grpc
import pytest

from edgeperf.protos import grpc_service_pb2_grpc as pb_grpc
from edgeperf.server.app import EdgeperfServer
from edgeperf.server.settings import ServerConfig, SettingsError
from tests.server.edge_process import build_repository, tiny_request

pytestmark = pytest.mark.timeout(120)


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    assert openssl is not None, "the TLS tests make their certificates with the openssl command line"
    subprocess.run([openssl, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _signed(name: str, ca: str, cwd: Path, *, san: str = "") -> None:
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=cwd)  # fmt: skip
    extra = []
    if san:
        (cwd / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        extra = ["-extfile", f"{name}.ext"]
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-out", f"{name}.pem", "-days", "2", *extra, cwd=cwd)  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "other_ca"):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN={ca}", cwd=root)  # fmt: skip
    _signed("server", "ca", root, san="IP:127.0.0.1,DNS:localhost")
    _signed("client", "ca", root)
    _signed("stranger", "other_ca", root)
    return root


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_repository(tmp_path_factory.mktemp("repo"), slow=False)


async def _infer(address: str, credentials: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    channel = (
        grpc.aio.secure_channel(address, credentials)
        if credentials is not None
        else grpc.aio.insecure_channel(address)
    )
    async with channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        try:
            await stub.ModelInfer(tiny_request(), timeout=10)
        except grpc.aio.AioRpcError as err:
            return err.code()
    return grpc.StatusCode.OK


def _config(repository: Path, pki: Path, *, mutual: bool) -> ServerConfig:
    return ServerConfig(
        model_repository=repository,
        listen="127.0.0.1:0",
        metrics_listen=None,
        warmup=False,
        tls_cert=pki / "server.pem",
        tls_key=pki / "server.key",
        tls_client_ca=pki / "ca.pem" if mutual else None,
    )


async def test_tls(repository: Path, pki: Path) -> None:
    root = (pki / "ca.pem").read_bytes()
    async with EdgeperfServer(_config(repository, pki, mutual=False)) as server:
        assert await _infer(server.address, grpc.ssl_channel_credentials(root)) == grpc.StatusCode.OK
        assert await _infer(server.address, None) == grpc.StatusCode.UNAVAILABLE
        untrusted = grpc.ssl_channel_credentials((pki / "other_ca.pem").read_bytes())
        assert await _infer(server.address, untrusted) == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_requires_a_client_certificate_from_the_ca(repository: Path, pki: Path) -> None:
    root = (pki / "ca.pem").read_bytes()

    def client(name: str) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root, (pki / f"{name}.key").read_bytes(), (pki / f"{name}.pem").read_bytes()
        )

    async with EdgeperfServer(_config(repository, pki, mutual=True)) as server:
        assert await _infer(server.address, client("client")) == grpc.StatusCode.OK
        assert await _infer(server.address, grpc.ssl_channel_credentials(root)) == grpc.StatusCode.UNAVAILABLE
        assert await _infer(server.address, client("stranger")) == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("cert", "key", "client_ca", "problem"),
    [
        ("junk.pem", "server.key", None, "--tls-cert {d}/junk.pem: no PEM certificate in the file"),
        ("server.pem", "junk.pem", None, "--tls-key {d}/junk.pem: not an unencrypted PEM private key"),
        ("server.pem", "client.key", None, "--tls-key {d}/client.key: the private key does not belong to"),
        (
            "server.pem",
            "server.key",
            "junk.pem",
            "--tls-client-ca {d}/junk.pem: no PEM certificate in the file",
        ),
        (
            "server.pem",
            "missing.key",
            None,
            "--tls-key {d}/missing.key: cannot read: No such file or directory",
        ),
    ],
)
async def test_bad_tls_material_is_named_before_the_models_load(
    tmp_path: Path, pki: Path, cert: str, key: str, client_ca: str | None, problem: str
) -> None:
    (pki / "junk.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    config = ServerConfig(
        # NOTE: a repository that does not exist: had the models loaded first, that would be the error.
        model_repository=tmp_path / "no-such-repository",
        listen="127.0.0.1:0",
        metrics_listen=None,
        tls_cert=pki / cert,
        tls_key=pki / key,
        tls_client_ca=pki / client_ca if client_ca else None,
    )
    with pytest.raises(SettingsError) as info:
        async with EdgeperfServer(config):
            pass
    assert str(info.value).startswith("TLS: " + problem.format(d=pki)), str(info.value)
    assert "cannot bind" not in str(info.value)
