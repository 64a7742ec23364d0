"""Run one of the official-LoadGen oracle scripts in tests/client/oracle/ in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ORACLE_DIR = Path(__file__).parent / "oracle"


def run_oracle(script: str, spec: dict[str, Any], workdir: Path, name: str = "oracle") -> Any:
    """Write `spec` as JSON, run `script` on it and return the JSON it wrote.

    A fresh process per call: mlperf_loadgen keeps process-wide state (its logger, its settings) that
    one test must not leave to the next.
    """
    spec_path = workdir / f"{name}.spec.json"
    result_path = workdir / f"{name}.result.json"
    spec_path.write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, str(ORACLE_DIR / script), str(spec_path), str(result_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(result_path.read_text())
