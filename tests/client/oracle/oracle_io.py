"""What every oracle script does around its LoadGen run: the spec in, the run in the spec's workdir (LoadGen
writes its logs to the current folder), the result out; and the detail log's records back.

The scripts import it as a sibling module: they run as `python tests/client/oracle/SCRIPT.py`, which puts
this folder first on sys.path.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlperf_loadgen as lg


def run_script(main: Callable[[dict[str, Any], Path], object]) -> None:
    """`SCRIPT SPEC.json RESULT.json`: `main(spec, workdir)` run in the spec's "workdir", its result written
    as JSON to RESULT.json (a path relative to where the script was started)."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    result_file = Path(sys.argv[2]).resolve()
    workdir = Path(spec["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)
    result_file.write_text(json.dumps(main(spec, workdir)))


def set_attributes(settings: Any, values: dict[str, Any]) -> None:
    """Set TestSettings attributes, "scenario" and "mode" given by their LoadGen names."""
    for name, value in values.items():
        if name == "scenario":
            value = getattr(lg.TestScenario, value)
        elif name == "mode":
            value = getattr(lg.TestMode, value)
        setattr(settings, name, value)


def detail_records(workdir: Path) -> Iterator[dict[str, Any]]:
    """The :::MLLOG records of the detail log LoadGen wrote in `workdir`, in order."""
    for line in (workdir / "mlperf_log_detail.txt").read_text().splitlines():
        if line.startswith(":::MLLOG "):
            yield json.loads(line[len(":::MLLOG ") :])
