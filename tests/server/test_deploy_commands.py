"""deploy/: the commands the manifests run parse with the real CLIs, the environment they set is read, and
every shipped server is authenticated by default (checked statically; `make e2e-container` runs them)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgeperf.client.cli import build_parser as client_parser
from edgeperf.server.cli import build_parser as server_parser
from edgeperf.server.settings import ServerConfig

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _containers(path: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        spec = (doc or {}).get("spec", {})
        found.extend(spec.get("template", {}).get("spec", {}).get("containers", []))
    return found


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_loadgen_job_runs_a_valid_edgeperf_command_against_a_device_address() -> None:
    (container,) = _containers(DEPLOY / "kubernetes" / "loadgen-job.yaml")
    env = _env(container)
    script: str = container["args"][0]
    argv = shlex.split(script.replace('"$SERVER"', env["SERVER"]))
    assert argv[0] == "edgeperf"
    args = client_parser().parse_args(argv[1:])
    host, _, port = args.server.rpartition(":")
    assert port == "8001"
    # A DaemonSet's pods have no stable names: a StatefulSet-style `NAME-0.SERVICE` address never resolves.
    assert not host.startswith("edgeperf-server-0.")


def test_daemonset_environment_is_read_by_the_server(tmp_path: Path) -> None:
    (container,) = _containers(DEPLOY / "kubernetes" / "server-daemonset.yaml")
    env = {k: v for k, v in _env(container).items() if isinstance(v, str) and k.startswith("EDGEPERF_")}
    token = tmp_path / "auth-token"
    token.write_text("s3cret\n")
    env["EDGEPERF_AUTH_TOKEN_FILE"] = str(token)
    env["EDGEPERF_METRICS_LISTEN"] = env["EDGEPERF_METRICS_LISTEN"].replace("$(POD_IP)", "10.0.0.7")
    config = ServerConfig.from_env(environ=env, model_repository=Path("/models"))
    assert (config.grace_s, config.drain_delay_s) == (float(env["EDGEPERF_GRACE_S"]), 5.0)
    assert config.auth_token == "s3cret"
    assert config.metrics_listen == "10.0.0.7:8002"


@pytest.mark.parametrize("line_prefix", ["RUN edgeperf-server ", 'ENTRYPOINT ["edgeperf-server", "serve"]'])
def test_dockerfile_server_commands_parse(line_prefix: str) -> None:
    lines = [ln for ln in (DEPLOY / "Dockerfile").read_text().splitlines() if ln.startswith(line_prefix)]
    assert len(lines) == 1
    argv = ["serve"] if line_prefix.startswith("ENTRYPOINT") else shlex.split(lines[0])[2:]
    args = server_parser().parse_args(argv)
    assert args.command in ("build", "serve")


def test_daemonset_and_job_take_the_token_from_one_secret_and_serve_metrics_on_the_pod_address() -> None:
    (server,) = _containers(DEPLOY / "kubernetes" / "server-daemonset.yaml")
    (job,) = _containers(DEPLOY / "kubernetes" / "loadgen-job.yaml")
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "server-daemonset.yaml").read_text()))
    volumes = {v["name"]: v for v in docs[0]["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in server["volumeMounts"]}
    env = _env(server)
    assert env["EDGEPERF_AUTH_TOKEN_FILE"].startswith(mounts["auth"] + "/")
    secret = volumes["auth"]["secret"]["secretName"]
    job_doc = yaml.safe_load((DEPLOY / "kubernetes" / "loadgen-job.yaml").read_text())
    job_volumes = {v["name"]: v for v in job_doc["spec"]["template"]["spec"]["volumes"]}
    job_mounts = {m["name"]: m["mountPath"] for m in job["volumeMounts"]}
    assert job_volumes["auth"]["secret"]["secretName"] == secret
    assert _env(job)["EDGEPERF_AUTH_TOKEN_FILE"] == job_mounts["auth"] + "/auth-token"
    assert env["EDGEPERF_METRICS_LISTEN"] == "$(POD_IP):8002"
    assert all("hostPort" not in p for p in server["ports"] if p["name"] == "metrics")
    for container in (server, job):
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_compose_requires_the_token_and_publishes_metrics_on_loopback_only() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    server = compose["services"]["edgeperf-server"]
    assert server["secrets"] == ["edgeperf-token"]
    assert "127.0.0.1:8002:8002" in server["ports"]
    assert server["healthcheck"]["test"] == ["CMD", "edgeperf-healthcheck"]
    loadgen = compose["services"]["edgeperf-loadgen"]
    assert loadgen["environment"]["EDGEPERF_AUTH_TOKEN_FILE"] == "/run/secrets/edgeperf-token"
    assert client_parser().parse_args(loadgen["command"]).server == "edgeperf-server:8001"


def test_image_runs_as_a_user_and_needs_a_token_file() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = text.split("\nFROM ")
    for target in ("server", "loadgen"):
        (stage,) = [s for s in stages if s.split("\n", 1)[0].endswith(f"AS {target}")]
        assert "\nUSER 10001:10001\n" in stage
        assert "pip" not in stage.replace("pip-", "")  # the runtime stages get no pip
    assert "EDGEPERF_AUTH_TOKEN_FILE=/run/secrets/edgeperf-token" in text
    assert (
        'HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["edgeperf-healthcheck"]'
        in text
    )


def test_systemd_unit_loads_the_token_as_a_credential_and_keeps_metrics_local() -> None:
    lines = (DEPLOY / "systemd" / "edgeperf-server.service").read_text().splitlines()
    assert "LoadCredential=auth-token:/etc/edgeperf/auth-token" in lines
    assert "Environment=EDGEPERF_AUTH_TOKEN_FILE=%d/auth-token" in lines
    assert "Environment=EDGEPERF_METRICS_LISTEN=127.0.0.1:8002" in lines
    assert {
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "ProtectSystem=strict",
    } <= set(lines)
