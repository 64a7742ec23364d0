"""benchmarks.accuracy_log: LoadGen's accuracy log layout into (qsl_idx, bytes) pairs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeperf.benchmarks.accuracy_log import (
    AccuracyLogError,
    deduplicate,
    parse_accuracy_log,
    read_accuracy_log,
)


def _write(path: Path, entries: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps(entries, indent=2), encoding="utf-8")
    return path


def test_reads_uppercase_hex_into_bytes(tmp_path: Path) -> None:
    payload = np.array([1.5, -2.0], dtype=np.float32).tobytes()
    log = _write(
        tmp_path / "mlperf_log_accuracy.json",
        [{"seq_id": 0, "qsl_idx": 7, "data": payload.hex().upper()}],
    )
    pairs = read_accuracy_log(log)
    assert pairs == [(7, payload)]
    assert np.frombuffer(pairs[0][1], dtype=np.float32).tolist() == [1.5, -2.0]


def test_folder_path_reads_the_log_inside(tmp_path: Path) -> None:
    _write(tmp_path / "mlperf_log_accuracy.json", [{"seq_id": 3, "qsl_idx": 1, "data": "0A0B"}])
    assert read_accuracy_log(tmp_path) == [(1, b"\x0a\x0b")]


def test_first_response_per_index_is_kept_in_log_order(tmp_path: Path) -> None:
    log = _write(
        tmp_path / "log.json",
        [
            {"seq_id": 0, "qsl_idx": 5, "data": "01"},
            {"seq_id": 1, "qsl_idx": 2, "data": "02"},
            {"seq_id": 2, "qsl_idx": 5, "data": "03"},
            {"seq_id": 3, "qsl_idx": 0, "data": ""},
        ],
    )
    assert read_accuracy_log(log) == [(5, b"\x01"), (2, b"\x02"), (0, b"")]
    entries = parse_accuracy_log(log.read_text())
    assert [e.seq_id for e in entries] == [0, 1, 2, 3]
    assert deduplicate(entries[2:]) == [(5, b"\x03"), (0, b"")]


def test_empty_log_gives_no_pairs() -> None:
    assert parse_accuracy_log("[]") == []


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("{", "not JSON"),
        ('{"seq_id": 0}', "JSON list"),
        ("[1]", "not an object"),
        ('[{"seq_id": 0, "data": "00"}]', "'qsl_idx'"),
        ('[{"seq_id": 0, "qsl_idx": "1", "data": "00"}]', "integers"),
        ('[{"seq_id": 0, "qsl_idx": 1, "data": "XYZ"}]', "hexadecimal"),
        ('[{"seq_id": 0, "qsl_idx": 1, "data": 5}]', "hex string"),
    ],
)
def test_bad_logs_name_the_problem(text: str, phrase: str) -> None:
    with pytest.raises(AccuracyLogError, match=r"bad\.json") as info:
        parse_accuracy_log(text, source="bad.json")
    assert phrase in str(info.value)
