"""`edgeperf-server` on bad input: one-line errors, --version, the environment in --help, valid JSON logs.

The entry point `main()` runs in-process (what the console script calls), so argument handling, the
settings and the error printing are the real ones without a subprocess per case.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

import edgeperf.server.cli as server_cli
from edgeperf.server.app import EdgeperfServer
from edgeperf.server.cli import main
from edgeperf.server.logs import configure_logging
from edgeperf.server.settings import ServerConfig


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("edgeperf-server: error: ")
    return lines[0]


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert re.fullmatch(r"edgeperf-server \S+\n", capsys.readouterr().out)


def test_serve_help_lists_every_environment_variable_the_server_reads(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    help_text = capsys.readouterr().out
    listed = set(re.findall(r"^\s+(EDGEPERF_[A-Z_]+)\s", help_text, flags=re.MULTILINE))
    # Every variable named anywhere in the server's source must be listed.
    source = Path(server_cli.__file__).parent
    named = {m for path in source.rglob("*.py") for m in re.findall(r"EDGEPERF_[A-Z_]+", path.read_text())}
    named.discard("EDGEPERF_")  # the prefix itself
    assert named <= listed, f"not in serve --help: {sorted(named - listed)}"
    assert {"EDGEPERF_AUTH_TOKEN_FILE", "EDGEPERF_MAX_MESSAGE_MB", "EDGEPERF_MODEL_REPOSITORY"} <= listed


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--max-message-mb", "inf"], "--max-message-mb: expected a finite number > 0 (MiB), got 'inf'"),
        (["--max-message-mb", "nan"], "--max-message-mb: expected a finite number > 0 (MiB), got 'nan'"),
        (["--grace-s", "nan"], "--grace-s: expected a finite number >= 0 (seconds), got 'nan'"),
        (["--drain-delay-s=-inf"], "--drain-delay-s: expected a finite number >= 0 (seconds), got '-inf'"),
    ],
)
def test_non_finite_numbers_are_one_line_errors(tmp_path, capsys, args, expected):
    assert main(["serve", "--model-repository", str(tmp_path), *args]) == 2
    assert _one_line_error(capsys) == f"edgeperf-server: error: {expected}"


@pytest.mark.parametrize(
    ("variable", "value"), [("EDGEPERF_GRACE_S", "nan"), ("EDGEPERF_MAX_MESSAGE_MB", "inf")]
)
def test_non_finite_environment_values_are_one_line_errors(tmp_path, capsys, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    assert main(["serve", "--model-repository", str(tmp_path)]) == 2
    assert _one_line_error(capsys) == f"edgeperf-server: error: {variable}: invalid value '{value}'"


def test_build_out_an_existing_file_is_a_one_line_error(tmp_path, capsys):
    target = tmp_path / "models"
    target.write_text("not a folder")
    assert main(["build", "--out", str(target), "tiny"]) == 2
    assert _one_line_error(capsys) == f"edgeperf-server: error: --out {target}: exists and is not a directory"


def test_build_out_that_cannot_be_created_is_a_one_line_error(tmp_path, capsys):
    # NOTE: the same OSError path as a read-only parent folder, but also when the tests run as root.
    parent = tmp_path / "file"
    parent.write_text("")
    assert main(["build", "--out", str(parent / "models"), "tiny"]) == 2
    assert _one_line_error(capsys) == (
        f"edgeperf-server: error: --out {parent / 'models'}: cannot create the folder: Not a directory"
    )


def test_json_log_lines_are_always_valid_json(capsys):
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("INFO", json_lines=True)
    try:
        logging.getLogger("edgeperf.server").info(
            "ready",
            extra={"max_message_mb": float("inf"), "values": [float("nan"), 1.5], "n": {"x": -float("inf")}},
        )
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    line = capsys.readouterr().err.strip()

    def refuse(name: str) -> object:
        raise AssertionError(f"{name} is not JSON")

    entry = json.loads(line, parse_constant=refuse)
    assert (entry["max_message_mb"], entry["values"], entry["n"]) == ("inf", ["nan", 1.5], {"x": "-inf"})


async def test_an_empty_repository_warns(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    config = ServerConfig(model_repository=tmp_path, listen="127.0.0.1:0", metrics_listen=None)
    async with EdgeperfServer(config) as server:
        assert server.core.models() == []
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "holds no models" in r.getMessage()
    ]
    assert len(warnings) == 1 and str(tmp_path) in warnings[0].getMessage()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_bad_tls_material_is_a_one_line_error_before_anything_starts(tmp_path, capsys, workers):
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    cert.write_text("not a certificate\n")
    key.write_text("not a key\n")
    args = ["serve", "--model-repository", str(tmp_path), "--listen", "127.0.0.1:0", "--workers", workers]
    assert main([*args, "--tls-cert", str(cert), "--tls-key", str(key)]) == 2
    assert _one_line_error(capsys).startswith(
        f"edgeperf-server: error: TLS: --tls-cert {cert}: no PEM certificate"
    )
