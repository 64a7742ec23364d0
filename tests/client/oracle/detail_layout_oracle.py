"""Run the official LoadGen once and record its detail log in order: (key, value, time_ms) per line.

Usage: python detail_layout_oracle.py SPEC.json RESULT.json

The spec holds "workdir", "total", "performance" and "settings" (TestSettings attributes; "scenario"
and "mode" by name). The SUT answers every sample at once. Run it in a fresh process: LoadGen's logger
is process-wide.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import mlperf_loadgen as lg


def main(spec_path: str, result_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    result_file = Path(result_path).resolve()
    workdir = Path(spec["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)
    settings = lg.TestSettings()
    for name, value in spec["settings"].items():
        if name == "scenario":
            value = getattr(lg.TestScenario, value)
        elif name == "mode":
            value = getattr(lg.TestMode, value)
        setattr(settings, name, value)

    def issue(samples: list[Any]) -> None:
        lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, 0, 0) for s in samples])

    def load(indices: list[int]) -> None:
        pass

    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(spec["total"], spec["performance"], load, load)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(workdir)
    log_settings.enable_trace = False
    lg.StartTestWithLogSettings(sut, qsl, settings, log_settings, str(workdir / "no-audit.config"))
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
    lines = []
    for line in (workdir / "mlperf_log_detail.txt").read_text().splitlines():
        if line.startswith(":::MLLOG "):
            record = json.loads(line[len(":::MLLOG ") :])
            lines.append([record["key"], record["value"], record["time_ms"]])
    result_file.write_text(json.dumps(lines))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
