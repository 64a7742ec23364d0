"""Run the official LoadGen once and record its detail log in order: (key, value, time_ms) per line.

Usage: python detail_layout_oracle.py SPEC.json RESULT.json

The spec holds "workdir", "total", "performance" and "settings" (TestSettings attributes; "scenario"
and "mode" by name). The SUT answers every sample at once. Run it in a fresh process: LoadGen's logger
is process-wide.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlperf_loadgen as lg
from oracle_io import detail_records, run_script, set_attributes


def main(spec: dict[str, Any], workdir: Path) -> list[list[Any]]:
    settings = lg.TestSettings()
    set_attributes(settings, spec["settings"])

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
    return [[record["key"], record["value"], record["time_ms"]] for record in detail_records(workdir)]


if __name__ == "__main__":
    run_script(main)
