"""The server program's logs: every record to stderr, one JSON object per line (or plain text).

A record's `extra` fields become keys of its object (`"event": "ready"`, `"port"`, ...); non-finite
floats are written as strings so that every line stays valid JSON.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import sys
from typing import Any, Final

__all__ = ["configure_logging"]

_STANDARD_ATTRS: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        try:
            return json.dumps(entry, default=str, allow_nan=False)
        except ValueError:  # NOTE: Infinity/NaN are not JSON; log parsers reject the whole line
            return json.dumps(_finite_json(entry), default=str, allow_nan=False)


def _finite_json(value: Any) -> Any:
    """`value` with every non-finite float replaced by its name ("inf", "-inf", "nan")."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_json(item) for item in value]
    return value


class _WorkerTag(logging.Filter):
    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self.index
        return True


def configure_logging(level: str = "INFO", *, json_lines: bool = True, worker: int | None = None) -> None:
    """Route every log record to stderr, one JSON object per line (or plain text)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    if worker is not None:
        handler.addFilter(_WorkerTag(worker))  # NOTE: every line says which worker of N wrote it
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
