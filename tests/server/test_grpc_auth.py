"""Bearer-token access through the real program: `serve --auth-token-file`, the scheme in any case (RFC 6750).

The server runs as `edgeperf-server serve` in a subprocess, as deployed; health and reflection stay open.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from edgeperf.protos import grpc_service_pb2_grpc as pb_grpc
from edgeperf.server.settings import ServerConfig, SettingsError
from tests.server.edge_process import build_repository, server_process, tiny_request

pytestmark = pytest.mark.timeout(120)


async def _code(stub: pb_grpc.GRPCInferenceServiceStub, authorization: str | None) -> grpc.StatusCode:
    metadata = (("authorization", authorization),) if authorization is not None else ()
    try:
        await stub.ModelInfer(tiny_request(), metadata=metadata, timeout=30)
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


async def test_token_file_and_case_insensitive_bearer_scheme(tmp_path: Path) -> None:
    repository = build_repository(tmp_path / "repo", slow=False)
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")  # NOTE: the trailing newline editors and `echo` add
    with server_process(repository, "--auth-token-file", str(token_file), "--no-warmup") as server:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
            for accepted in ("Bearer s3cret-token", "bearer s3cret-token", "BEARER  s3cret-token"):
                assert await _code(stub, accepted) == grpc.StatusCode.OK, accepted
            for refused in (None, "Bearer wrong", "Basic s3cret-token", "s3cret-token"):
                assert await _code(stub, refused) == grpc.StatusCode.UNAUTHENTICATED, refused
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert "s3cret-token" not in "".join(server.stderr_lines)


def test_token_file_errors_name_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(
        SettingsError, match=f"--auth-token-file / EDGEPERF_AUTH_TOKEN_FILE {empty}: the file holds no token"
    ):
        ServerConfig.from_env(environ={}, model_repository=tmp_path, auth_token_file=empty)
    missing = tmp_path / "missing"
    with pytest.raises(SettingsError, match="cannot read: No such file or directory"):
        ServerConfig.from_env(environ={"EDGEPERF_AUTH_TOKEN_FILE": str(missing)}, model_repository=tmp_path)
    token = tmp_path / "token"
    token.write_text("abc")
    with pytest.raises(SettingsError, match="give the token once"):
        ServerConfig.from_env(
            environ={"EDGEPERF_AUTH_TOKEN": "x"}, model_repository=tmp_path, auth_token_file=token
        )
    config = ServerConfig.from_env(
        environ={"EDGEPERF_AUTH_TOKEN_FILE": str(token)}, model_repository=tmp_path
    )
    assert config.auth_token == "abc"
