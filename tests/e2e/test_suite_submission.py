"""`edgeperf suite` writes the whole submission tree, and the checkers' structure checks find nothing.

The real checkers (mlcommons/inference `tools/submission`, v2.1 and current) are run on such a tree by
`make check-submission INFERENCE=/path/to/mlcommons/inference`; they report only what a short run
legitimately fails (run length, samples per query, seeds of another rules version, a synthetic dataset).
Here the same tree goes through `tests.client.submission_checks`, their structure checks step by step.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from edgeperf.benchmarks import registry
from edgeperf.client.cli import build_parser
from edgeperf.client.plan.conf import preset_path
from tests.client.submission_checks import structure_errors
from tests.e2e._server import serve

pytestmark = pytest.mark.e2e

CONF = """\
*.Offline.min_query_count = 1
*.Offline.target_qps = 200000
*.Offline.min_duration = 50
"""


async def test_suite_writes_a_submission_tree_the_checkers_accept(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    registry.get("resnet50").write_model(repo / "resnet50", size="small")
    conf = tmp_path / "user.conf"
    conf.write_text(CONF, encoding="utf-8")
    out = tmp_path / "results"
    with serve(repo) as server:
        argv = [
            "suite",
            "--server",
            f"edge-a={server.address}",
            "--benchmarks",
            "resnet50",
            "--size",
            "small",
        ]
        argv += ["--scenarios", "Offline", "--dataset", "synthetic:16", "--batch-size", "4"]
        argv += ["--user-conf", str(conf), "--out", str(out), "--submitter", "acme"]
        args = build_parser().parse_args(argv)
        assert await args.handler(args) == 0

    submission = out / "submission"
    assert structure_errors(submission, "v2.1") == []
    assert structure_errors(submission, "current") == []
    base = submission / "open" / "acme"
    assert sorted(p.name for p in base.iterdir()) == [
        "code",
        "compliance",
        "measurements",
        "results",
        "systems",
    ]
    # systems/<system>.json from the server's SystemDescription
    system = json.loads((base / "systems" / "edge-a.json").read_text())
    assert (
        system["division"] == "open" and system["submitter"] == "acme" and system["system_name"] == "edge-a"
    )
    assert system["host_processor_core_count"] == os.cpu_count()
    assert system["framework"].startswith("edgeperf ") and "ONNX Runtime" in system["framework"]
    # the measurements hold the rules preset and the user.conf the runs read
    measurements = base / "measurements" / "edge-a" / "resnet" / "Offline"
    assert (measurements / "user.conf").read_text() == CONF
    assert (measurements / "mlperf.conf").read_bytes() == preset_path("v2.1").read_bytes()
    # accuracy: the log as it was, and its hash at the end of accuracy.txt (truncate_accuracy_log.py)
    original = out / "edge-a" / "resnet50" / "Offline" / "accuracy" / "mlperf_log_accuracy.json"
    accuracy = base / "results" / "edge-a" / "resnet" / "Offline" / "accuracy"
    digest = hashlib.sha256(original.read_bytes()).hexdigest()
    assert (accuracy / "accuracy.txt").read_text().splitlines()[-1] == f"hash={digest}"
    assert (accuracy / "mlperf_log_accuracy.json").read_bytes() == original.read_bytes()
    tests = sorted(p.name for p in (base / "compliance" / "edge-a" / "resnet" / "Offline").iterdir())
    assert tests == ["TEST01", "TEST04", "TEST05"]  # v2.1's audit tests for ResNet50: slots to fill
