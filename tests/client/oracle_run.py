"""Run official-LoadGen code in a fresh interpreter: the oracle scripts in tests/client/oracle/, or a script
given as text that prints its result as JSON.

A fresh process per call: mlperf_loadgen keeps process-wide state (its logger, its settings) that one test
must not leave to the next.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ORACLE_DIR = Path(__file__).parent / "oracle"


def run_oracle(script: str, spec: dict[str, Any], workdir: Path, name: str = "oracle") -> Any:
    """Write `spec` as JSON, run `script` on it and return the JSON it wrote."""
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


def run_code(code: str, *args: str) -> dict[str, Any]:
    """Run `code` with `args` as its argv; return the JSON object on the last line it printed."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(doc, dict)
    return doc
