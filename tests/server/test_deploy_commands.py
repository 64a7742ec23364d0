"""deploy/: the commands the manifests run parse with the real CLIs, and the environment they set is read."""

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


def test_loadgen_job_runs_a_valid_edgeperf_command_against_a_device_address() -> None:
    (container,) = _containers(DEPLOY / "kubernetes" / "loadgen-job.yaml")
    env = {e["name"]: e["value"] for e in container["env"]}
    script: str = container["args"][0]
    argv = shlex.split(script.replace('"$SERVER"', env["SERVER"]))
    assert argv[0] == "edgeperf"
    args = client_parser().parse_args(argv[1:])
    host, _, port = args.server.rpartition(":")
    assert port == "8001"
    # A DaemonSet's pods have no stable names: a StatefulSet-style `NAME-0.SERVICE` address never resolves.
    assert not host.startswith("edgeperf-server-0.")


def test_daemonset_environment_is_read_by_the_server() -> None:
    (container,) = _containers(DEPLOY / "kubernetes" / "server-daemonset.yaml")
    env = {e["name"]: e["value"] for e in container["env"]}
    config = ServerConfig.from_env(environ=env, model_repository=Path("/models"))
    assert (config.grace_s, config.drain_delay_s) == (float(env["EDGEPERF_GRACE_S"]), 5.0)


@pytest.mark.parametrize("line_prefix", ["RUN edgeperf-server ", 'ENTRYPOINT ["edgeperf-server", "serve"]'])
def test_dockerfile_server_commands_parse(line_prefix: str) -> None:
    lines = [ln for ln in (DEPLOY / "Dockerfile").read_text().splitlines() if ln.startswith(line_prefix)]
    assert len(lines) == 1
    argv = ["serve"] if line_prefix.startswith("ENTRYPOINT") else shlex.split(lines[0])[2:]
    args = server_parser().parse_args(argv)
    assert args.command in ("build", "serve")
