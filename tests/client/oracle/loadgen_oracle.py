"""Run the official LoadGen (`mlperf_loadgen`) once and record what it did, as JSON.

Usage: python loadgen_oracle.py SPEC.json RESULT.json

Run it in a fresh process per test: LoadGen keeps process-wide state (the logger, the FromConfig
counter; MLPERF_LOADGEN.md §13.2). The spec holds:

- "workdir": where LoadGen writes its logs (the process changes into it, so no audit.config is found)
- "total", "performance": what the QSL reports
- "conf" (optional): {"path", "model", "scenario", "conf_type"}: a FromConfig call; its return code
  and every TestSettings attribute afterwards are recorded, and no test is started if "run" is false
- "settings": TestSettings attributes set after FromConfig ("scenario" and "mode" by name)
- "conf_batch" (optional): [{"path", "model", "scenario"}]: for each, a fresh TestSettings with the
  built-in mlperf.conf and then the file (if any); the return codes and attributes are recorded
- "run": start a test (default true)

The result holds "from_config" (return code), "attributes", "issued" (the s.index list of every
IssueQuery call, in order), "detail" (every detail-log key -> list of values), "accuracy_seq_ids"
and "trace_sample_ts_ns" (seq_id -> the Sample event start, the query's scheduled time, in ns).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlperf_loadgen as lg
from oracle_io import detail_records, run_script, set_attributes


def _attributes(settings: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in dir(settings):
        if name.startswith("_") or name == "FromConfig":
            continue
        value = getattr(settings, name)
        if isinstance(value, bool | int | float | str):
            out[name] = value
        else:
            out[name] = str(value).rsplit(".", 1)[-1]
    return out


def _detail(workdir: Path) -> dict[str, list[Any]]:
    keys: dict[str, list[Any]] = {}
    for record in detail_records(workdir):
        keys.setdefault(record["key"], []).append(record["value"])
    return keys


def _trace_sample_ts(path: Path) -> dict[int, int]:
    starts: dict[int, int] = {}
    if not path.exists():
        return starts
    for line in path.read_text().splitlines():
        line = line.rstrip(",")
        if '"name":"Sample"' not in line or '"ph":"b"' not in line:
            continue
        event = json.loads(line)
        # NOTE: ts is printed in us with 3 fixed decimals, so it is exact to the nanosecond.
        starts[int(event["args"]["sample_seq"])] = round(float(event["ts"]) * 1000)
    return starts


def main(spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    result: dict[str, Any] = {}

    settings = lg.TestSettings()
    conf = spec.get("conf")
    if conf is not None:
        result["from_config"] = settings.FromConfig(
            conf["path"], conf["model"], conf["scenario"], conf.get("conf_type", 1)
        )
    set_attributes(settings, spec.get("settings", {}))
    result["attributes"] = _attributes(settings)

    batch = []
    for item in spec.get("conf_batch", []):
        # NOTE: conf_type 0 applies the built-in mlperf.conf; a later conf_type 1 call in the same
        # process only logs "Multiple conf files" (nothing is started, so nothing is logged).
        each = lg.TestSettings()
        rc = each.FromConfig("", item["model"], item["scenario"], 0)
        if item.get("path"):
            rc = each.FromConfig(item["path"], item["model"], item["scenario"], 1)
        batch.append({"rc": rc, "attributes": _attributes(each)})
    result["conf_batch"] = batch

    if spec.get("run", True):
        issued: list[list[int]] = []

        def issue(samples: list[Any]) -> None:
            issued.append([s.index for s in samples])
            lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, 0, 0) for s in samples])

        def flush() -> None:
            pass

        def load(indices: list[int]) -> None:
            pass

        sut = lg.ConstructSUT(issue, flush)
        qsl = lg.ConstructQSL(spec["total"], spec["performance"], load, load)
        log_settings = lg.LogSettings()
        log_settings.log_output.outdir = str(workdir)
        log_settings.enable_trace = bool(spec.get("trace", False))
        lg.StartTestWithLogSettings(sut, qsl, settings, log_settings)
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
        result["issued"] = issued
        result["detail"] = _detail(workdir)
        accuracy = json.loads((workdir / "mlperf_log_accuracy.json").read_text())
        result["accuracy_seq_ids"] = [entry["seq_id"] for entry in accuracy]
        result["trace_sample_ts_ns"] = _trace_sample_ts(workdir / "mlperf_log_trace.json")
    return result


if __name__ == "__main__":
    run_script(main)
