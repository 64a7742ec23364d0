"""Run the official LoadGen's FindPeakPerformance with a SUT that passes or fails each probe on cue.

Usage: python find_peak_oracle.py SPEC.json RESULT.json

LoadGen calls FlushQueries once per probe, after issuing the probe's queries, so the SUT counts probes
by flushes: the queries of probe k answer at once when `pattern[k]` is true and after `slow_ms`
(above the latency bound) when it is false or past the pattern's end. The spec holds "workdir",
"pattern" (list of booleans), "slow_ms" and "settings" (TestSettings attributes). The result holds
every detail-log generic_message, in order, and the detail log's result_validity values.
Run it in a fresh process: LoadGen's logger is process-wide.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import mlperf_loadgen as lg
from oracle_io import detail_records, run_script


def main(spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    pattern: list[bool] = spec["pattern"]
    slow_s = spec["slow_ms"] / 1000
    probe = [0]
    timers: list[threading.Timer] = []

    settings = lg.TestSettings()
    settings.scenario = lg.TestScenario.Server
    settings.mode = lg.TestMode.FindPeakPerformance
    for name, value in spec["settings"].items():
        setattr(settings, name, value)

    def complete(samples: list[Any]) -> None:
        lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, 0, 0) for s in samples])

    def issue(samples: list[Any]) -> None:
        k = probe[0]
        if k < len(pattern) and pattern[k]:
            complete(samples)
        else:
            timer = threading.Timer(slow_s, complete, (list(samples),))
            timers.append(timer)
            timer.start()

    def flush() -> None:
        probe[0] += 1

    def load(indices: list[int]) -> None:
        pass

    sut = lg.ConstructSUT(issue, flush)
    qsl = lg.ConstructQSL(64, 64, load, load)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(workdir)
    log_settings.enable_trace = False
    lg.StartTestWithLogSettings(sut, qsl, settings, log_settings)
    for timer in timers:
        timer.join()
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
    messages: list[str] = []
    validity: list[str] = []
    for record in detail_records(workdir):
        if record["key"] == "generic_message":
            messages.append(str(record["value"]))
        elif record["key"] == "result_validity":
            validity.append(str(record["value"]))
    return {"messages": messages, "validity": validity, "probes": probe[0]}


if __name__ == "__main__":
    run_script(main)
