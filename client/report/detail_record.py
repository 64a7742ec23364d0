"""One ``:::MLLOG`` line of ``mlperf_log_detail.txt``: the record and its rendering in LoadGen's value formats.

Booleans are true/false, doubles C++ stream defaults, and every line is valid JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from edgeperf.client.report.log_format import cpp_double

__all__ = ["DetailRecord", "render_record"]


@dataclass(frozen=True, slots=True)
class DetailRecord:
    """One ``:::MLLOG`` line before rendering."""

    key: str
    value: object
    time_ns: int = 0
    is_error: bool = False
    is_warning: bool = False


def _value_json(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return cpp_double(value)
    if isinstance(value, tuple | list):
        return "[" + ",".join(str(int(v)) for v in value) + "]"
    # NOTE: LoadGen writes strings unescaped; json.dumps gives the same bytes for its plain ASCII
    # messages and keeps every line valid JSON when a message carries quotes or newlines.
    return json.dumps(str(value), ensure_ascii=False)


def render_record(line: DetailRecord, pid: int, tid: int) -> str:
    t = max(line.time_ns, 0)
    return (
        f':::MLLOG {{"key": {json.dumps(line.key)}, "value": {_value_json(line.value)}, '
        f'"time_ms": {t // 1_000_000}.{t % 1_000_000:06d}, "namespace": "mlperf::logging", '
        f'"event_type": "POINT_IN_TIME", "metadata": {{"is_error": {_value_json(line.is_error)}, '
        f'"is_warning": {_value_json(line.is_warning)}, "file": "edgeperf", "line_no": 0, '
        f'"pid": {pid}, "tid": {tid}}}}}\n'
    )
