"""`edgeperf-server build --from-file` with a file that is not an ONNX model: a one-line error, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("model", ["resnet50", "3d-unet"])
def test_from_file_that_is_not_onnx_is_a_clear_error(tmp_path: Path, model: str) -> None:
    junk = tmp_path / "model.onnx"
    junk.write_bytes(b"this is not a protobuf\xff\xff")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgeperf.server.cli",
            "build",
            "--out",
            str(tmp_path / "repo"),
            "--from-file",
            str(junk),
            model,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"edgeperf-server: error: {model}: --from-file {junk}: not an ONNX model "
        "(Error parsing message with type 'onnx.ModelProto')"
    )
    assert not (tmp_path / "repo" / model / "1" / "model.onnx").exists()
