"""`edgeperf-server build` and `serve`: outputs and clear errors for bad arguments and repositories."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from edgeperf.server.cli import main
from tests.server.edge_process import build_repository, server_process

pytestmark = pytest.mark.timeout(120)


def test_build_writes_a_ready_repository(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--out", str(tmp_path / "models"), "--size", "small", "tiny"]) == 0
    assert (tmp_path / "models" / "tiny" / "config.pbtxt").is_file()
    assert (tmp_path / "models" / "tiny" / "1" / "model.onnx").is_file()
    assert "wrote" in capsys.readouterr().out


def test_build_precision_reaches_the_stand_in(tmp_path: Path) -> None:
    assert main(["build", "--out", str(tmp_path), "--size", "small", "--precision", "fp16", "resnet50"]) == 0
    config = (tmp_path / "resnet50" / "config.pbtxt").read_text()
    assert 'key: "edgeperf_precision" value: { string_value: "fp16" }' in config
    model = onnx.load(str(tmp_path / "resnet50" / "1" / "model.onnx"))
    weight_types = {t.data_type for t in model.graph.initializer}
    assert onnx.TensorProto.FLOAT16 in weight_types


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["build", "--out", "OUT", "nosuchmodel"], "unknown benchmark 'nosuchmodel'"),
        (
            ["build", "--out", "OUT", "--from-file", "m.onnx", "tiny", "resnet50"],
            "--from-file needs exactly one MODEL",
        ),
        (
            ["build", "--out", "OUT", "--from-file", "m.onnx", "--precision", "int8", "resnet50"],
            "--precision int8 is for stand-ins",
        ),
        (["build", "--out", "OUT", "--precision", "int8", "tiny"], "tiny: the tiny model is FP32 only"),
        (["serve", "--model-repository", "MISSING"], "not a directory"),
        (["serve", "--model-repository", ".", "--listen", "nowhere"], "expected HOST:PORT"),
        (["serve", "--model-repository", ".", "--tls-cert", "c.pem"], "both --tls-cert and --tls-key"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    argv = [str(tmp_path / a) if a in ("OUT", "MISSING") else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgeperf-server: error:") and message in err


def test_serve_bad_model_config_names_file_model_and_field(tmp_path: Path) -> None:
    repository = build_repository(tmp_path, slow=False)
    config = repository / "tiny" / "config.pbtxt"
    config.write_text(config.read_text().replace("max_batch_size: 64", "max_batch_size: -3"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEPERF_")}
    run = subprocess.run(
        [sys.executable, "-m", "edgeperf.server.cli", "serve", "--model-repository", str(repository),
         "--listen", "127.0.0.1:0", "--no-metrics"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("edgeperf-server: error:")
    assert str(config) in last and "'tiny'" in last and "max_batch_size" in last


def test_serve_prints_the_bound_port_and_tls_needs_readable_files(tmp_path: Path) -> None:
    repository = build_repository(tmp_path, slow=False)
    with server_process(repository, "--no-warmup") as server:
        assert server.port > 0 and server.ready["address"] == f"127.0.0.1:{server.port}"
        assert server.ready["models"] == ["tiny"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEPERF_")}
    run = subprocess.run(
        [sys.executable, "-m", "edgeperf.server.cli", "serve", "--model-repository", str(repository),
         "--listen", "127.0.0.1:0", "--no-metrics", "--tls-cert", str(tmp_path / "no.pem"),
         "--tls-key", str(tmp_path / "no.key")],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    last = run.stderr.strip().splitlines()[-1]
    assert run.returncode == 2 and "cannot read: No such file or directory" in last and "no.pem" in last


def test_serve_on_a_busy_port_exits_2(tmp_path: Path) -> None:
    repository = build_repository(tmp_path, slow=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEPERF_")}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "edgeperf.server.cli", "serve", "--model-repository", str(repository),
             "--listen", f"127.0.0.1:{port}", "--no-metrics", "--no-warmup"],
            capture_output=True, text=True, timeout=60, env=env, check=False,
        )  # fmt: skip
    errors = [line for line in run.stderr.splitlines() if line.startswith("edgeperf-server: error:")]
    assert run.returncode == 2 and len(errors) == 1 and f"cannot bind 127.0.0.1:{port}" in errors[0]
