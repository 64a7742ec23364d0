"""Bad input and full disks end `edgeperf run` with one line, not a traceback (real entry point, real server)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeperf.client.cli import main
from tests.e2e._runs import run_args
from tests.e2e._server import ServerProcess

pytestmark = pytest.mark.e2e

CONF = "*.*.min_duration = 50\n*.Offline.min_query_count = 1\n*.Offline.target_qps = 1000\n"


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_user_conf_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "latin1.conf"
    conf.write_bytes("*.Offline.min_query_count = 1\n# café\n".encode("latin-1"))
    code = main(run_args("127.0.0.1:9", "Offline", tmp_path / "o", conf, model="m"))
    assert code == 1
    assert (
        _one_error_line(capsys)
        == f"edgeperf: error: {conf}:2: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    )


def test_disk_full_while_writing_the_logs(
    tiny_server: ServerProcess,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conf = tmp_path / "short.conf"
    conf.write_text(CONF, encoding="utf-8")
    out = tmp_path / "out"
    real_fsync = os.fsync
    calls: list[int] = []

    def fsync_until_full(fd: int) -> None:
        calls.append(fd)
        if len(calls) >= 2:  # the first log file fits on the disk, the second does not
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_until_full)
    code = main([*run_args(tiny_server.address, "Offline", out, conf), "--no-progress"])
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert code == 1
    line = _one_error_line(capsys)
    assert (
        line.startswith("edgeperf: error: no space left on the device while writing") and "complete" in line
    )
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 1 and not written[0].startswith("."), written  # no half file, no temporary left
    text = (out / written[0]).read_text()
    if written[0].endswith(".txt"):
        for record in text.splitlines():
            if record.startswith(":::MLLOG "):
                json.loads(record.removeprefix(":::MLLOG "))


@pytest.mark.parametrize(("first", "second"), [("truncated", "good"), ("good", "corrupt")])
def test_corrupt_or_truncated_jpeg_in_a_dataset(
    small_resnet: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str], first: str, second: str
) -> None:
    image = (np.random.default_rng(0).random((80, 100, 3)) * 255).astype(np.uint8)
    data = cv2.imencode(".jpg", image)[1].tobytes()
    contents = {"good": data, "truncated": data[: len(data) // 2], "corrupt": b"\xff\xd8 not a jpeg"}
    folder = tmp_path / "imagenet"
    folder.mkdir()
    for name in (first, second):
        (folder / f"{name}.JPEG").write_bytes(contents[name])
    (folder / "val_map.txt").write_text(f"{first}.JPEG 1\n{second}.JPEG 2\n")
    conf = tmp_path / "short.conf"
    conf.write_text(CONF, encoding="utf-8")
    run = ["run", "--server", small_resnet.address, "--benchmark", "resnet50", "--dataset", str(folder)]
    code = main(
        [
            *run,
            "--scenario",
            "Offline",
            "--no-progress",
            "--user-conf",
            str(conf),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 1
    bad = first if first != "good" else second
    line = _one_error_line(capsys)
    assert line.startswith("edgeperf: error: ") and f"{bad}.JPEG: cannot decode image" in line
