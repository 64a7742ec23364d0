"""Read LoadGen's `mlperf_log_accuracy.json` into `(qsl_idx, bytes)` pairs for the accuracy metrics.

LoadGen writes a JSON list of `{"seq_id": int, "qsl_idx": int, "data": "<uppercase hex>"}`, one entry per
sample response logged in accuracy mode (and, in performance mode with accuracy logging, possibly several
per QSL index). The reference accuracy scripts (e.g. `vision/classification_and_detection/tools/
accuracy-imagenet.py` in mlcommons/inference) keep the first response per `qsl_idx` and skip later
duplicates ("de-dupe in case loadgen sends the same image multiple times"); `read_accuracy_log` does the
same, in log order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["AccuracyLogEntry", "AccuracyLogError", "deduplicate", "parse_accuracy_log", "read_accuracy_log"]


class AccuracyLogError(ValueError):
    """The accuracy log is not in LoadGen's layout; the message names the file and the entry."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AccuracyLogEntry:
    """One logged response, as LoadGen wrote it."""

    seq_id: int
    qsl_idx: int
    data: bytes


def _entry(raw: Any, where: str, position: int) -> AccuracyLogEntry:
    if not isinstance(raw, dict):
        raise AccuracyLogError(f"{where}: entry {position} is not an object")
    try:
        seq_id, qsl_idx, data = raw["seq_id"], raw["qsl_idx"], raw["data"]
    except KeyError as exc:
        raise AccuracyLogError(f"{where}: entry {position} has no {exc.args[0]!r}") from None
    if not isinstance(seq_id, int) or not isinstance(qsl_idx, int) or isinstance(qsl_idx, bool):
        raise AccuracyLogError(f"{where}: entry {position}: seq_id and qsl_idx must be integers")
    if not isinstance(data, str):
        raise AccuracyLogError(f"{where}: entry {position}: data must be a hex string")
    try:
        payload = bytes.fromhex(data)
    except ValueError:
        raise AccuracyLogError(f"{where}: entry {position}: data is not hexadecimal") from None
    return AccuracyLogEntry(seq_id=seq_id, qsl_idx=qsl_idx, data=payload)


def parse_accuracy_log(text: str, *, source: str = "<accuracy log>") -> list[AccuracyLogEntry]:
    """Every entry of an accuracy log's text, in file order, duplicates included.

    Raises:
        AccuracyLogError: the text is not a JSON list of LoadGen entries.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AccuracyLogError(f"{source}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(document, list):
        raise AccuracyLogError(f"{source}: expected a JSON list of entries")
    return [_entry(raw, source, position) for position, raw in enumerate(document)]


def deduplicate(entries: Sequence[AccuracyLogEntry]) -> list[tuple[int, bytes]]:
    """`(qsl_idx, data)` of the first entry per QSL index, in log order (the reference scripts' rule)."""
    seen: set[int] = set()
    pairs: list[tuple[int, bytes]] = []
    for entry in entries:
        if entry.qsl_idx in seen:
            continue
        seen.add(entry.qsl_idx)
        pairs.append((entry.qsl_idx, entry.data))
    return pairs


def read_accuracy_log(path: Path) -> list[tuple[int, bytes]]:
    """`(qsl_idx, response bytes)` pairs of `mlperf_log_accuracy.json`, first response per index kept.

    Args:
        path: the log file, or the folder that holds `mlperf_log_accuracy.json`.

    Raises:
        AccuracyLogError: the file is not in LoadGen's layout.
        OSError: the file cannot be read.
    """
    if path.is_dir():
        path = path / "mlperf_log_accuracy.json"
    return deduplicate(parse_accuracy_log(path.read_text(encoding="utf-8"), source=str(path)))
