"""The MLPerf submission tree of a suite's results, in the layout the submission checkers walk.

`edgeperf suite` writes its runs as `<out>/<system>/<benchmark>/<scenario>/{accuracy,performance/run_1}`;
`write_submission` lays them out again under `<out>/submission/open/<submitter>/` as
mlcommons/inference `tools/submission` expects (v2.1 `submission-checker.py` and the current
`submission_checker` package):

    systems/<system>.json                                  the server's SystemDescription, checker fields
    measurements/<system>/<model>/<scenario>/              user.conf, mlperf.conf, README.md,
                                                           <system>_edgeperf_<scenario>.json
    code/<model>/edgeperf/README.md                        what implements the runs
    results/<system>/<model>/<scenario>/accuracy/          the four files the checkers require, no others,
                                                           the log truncated and hashed as
                                                           truncate_accuracy_log.py leaves it
    results/<system>/<model>/<scenario>/performance/run_1/ summary and detail logs
    compliance/<system>/<model>/<scenario>/TEST0x/         a slot per audit test the rules require

The division is `open`: the rules require the official LoadGen for Closed and Network results, so a
checker reports the runs' own shortcomings (run length, LoadGen version) and the compliance tests that
were not run, and nothing about the tree's structure.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict

from edgeperf.client.connection_args import Connection
from edgeperf.client.report.log_format import atomic_write
from edgeperf.client.report.system_json import describe_target

__all__ = [
    "ACCURACY_FILES",
    "COMPLIANCE_TESTS",
    "IMPLEMENTATION",
    "MEASUREMENT_FILES",
    "MLPERF_MODEL_DIRS",
    "PERFORMANCE_FILES",
    "SYSTEM_FIELDS",
    "SubmissionSystem",
    "describe_system",
    "system_json",
    "write_submission",
]

DIVISION = "open"
IMPLEMENTATION = "edgeperf"
MLPERF_MODEL_DIRS: Mapping[str, str] = {
    "resnet50": "resnet",
    "retinanet": "retinanet",
    "3d-unet": "3d-unet-99",
    "rnnt": "rnnt",
    "bert": "bert-99",
}
"""Benchmark -> the model name the checkers know (the 99% accuracy targets, which edgeperf gates)."""
ACCURACY_FILES = (
    "mlperf_log_summary.txt",
    "mlperf_log_detail.txt",
    "accuracy.txt",
    "mlperf_log_accuracy.json",
)
PERFORMANCE_FILES = ("mlperf_log_summary.txt", "mlperf_log_detail.txt")
MEASUREMENT_FILES = ("mlperf.conf", "user.conf", "README.md")
"""v2.1 requires all three; the current checker requires user.conf and README.md."""
IMPLEMENTATION_FIELDS = (
    "input_data_types",
    "retraining",
    "starting_weights_filename",
    "weight_data_types",
    "weight_transformations",
)
SYSTEM_FIELDS = (
    # v2.1 SYSTEM_DESC_REQUIRED_FIELDS
    "division", "submitter", "status", "system_name", "number_of_nodes", "host_processor_model_name",
    "host_processors_per_node", "host_processor_core_count", "host_memory_capacity", "host_storage_capacity",
    "host_storage_type", "accelerators_per_node", "accelerator_model_name", "accelerator_memory_capacity",
    "framework", "operating_system",
    # v2.1 SYSTEM_DESC_REQUIED_FIELDS_SINCE_V1
    "system_type", "other_software_stack", "host_processor_frequency", "host_processor_caches",
    "host_memory_configuration", "host_processor_interconnect", "host_networking", "host_networking_topology",
    "accelerator_frequency", "accelerator_host_interconnect", "accelerator_interconnect",
    "accelerator_interconnect_topology", "accelerator_memory_configuration", "accelerator_on-chip_memories",
    "cooling", "hw_notes", "sw_notes",
    # current SYSTEM_DESC_REQUIRED_FIELDS adds these
    "host_network_card_count", "system_type_detail",
)  # fmt: skip
"""Every field either checker requires in systems/<system>.json."""
COMPLIANCE_TESTS: Mapping[str, tuple[str, ...]] = {
    "v2.1": ("TEST01", "TEST04", "TEST05"),
    "current": ("TEST01", "TEST04"),
}
"""The audit tests a result needs under each rules version (v2.1 exempts some benchmarks from TEST04)."""
_TEST04_EXEMPT_V21 = frozenset({"rnnt", "bert", "3d-unet", "retinanet"})
UNKNOWN = "not reported by the server"


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmissionSystem:
    """One system of the suite: its results folder name and what its server said about itself."""

    name: str
    description: Mapping[str, Any] | None
    """SystemDescription as a mapping (protobuf JSON names), or None when the server has no such RPC."""


async def describe_system(address: str, connection: Connection | None = None) -> dict[str, Any] | None:
    """The server's SystemDescription as protobuf JSON, or None from a server without it (Triton) or one
    that cannot be reached (see `describe_target`)."""
    description = await describe_target(address, connection)
    return None if description is None else MessageToDict(description)


def _gib(n_bytes: object) -> str:
    try:
        value = int(str(n_bytes))
    except ValueError:
        return UNKNOWN
    return f"{value / 2**30:.1f} GB" if value > 0 else UNKNOWN


def system_json(system: SubmissionSystem, *, submitter: str) -> dict[str, Any]:
    """systems/<system>.json: every field the checkers require, from the server's SystemDescription
    where it says (CPU, cores, memory, accelerators, OS, framework) and `UNKNOWN` where it cannot."""
    d = system.description or {}
    accelerators: Sequence[Mapping[str, Any]] = d.get("accelerators", ()) or ()
    providers = ", ".join(d.get("onnxruntimeProviders", ()) or ())
    framework = f"edgeperf {d.get('edgeperfVersion', '')}".strip()
    if d.get("onnxruntimeVersion"):
        framework += f", ONNX Runtime {d['onnxruntimeVersion']}" + (f" ({providers})" if providers else "")
    out: dict[str, Any] = dict.fromkeys(SYSTEM_FIELDS, UNKNOWN)
    out.update(
        {
            "division": DIVISION,
            "submitter": submitter,
            "status": "available",
            "system_name": system.name,
            "system_type": "edge",
            "system_type_detail": "edge device served over gRPC by edgeperf-server",
            "number_of_nodes": 1,
            "host_processors_per_node": 1,
            "host_processor_model_name": d.get("cpuModel") or UNKNOWN,
            "host_processor_core_count": d.get("cpuCores") or UNKNOWN,
            "host_memory_capacity": _gib(d.get("memoryBytes", 0)),
            # NOTE: a string: the current checker takes a 0 for an empty answer ("0" is what CPU-only
            # submissions write).
            "accelerators_per_node": str(len(accelerators)),
            "accelerator_model_name": ", ".join(str(a.get("name", "")) for a in accelerators) or "N/A",
            "accelerator_memory_capacity": ", ".join(_gib(a.get("memoryBytes", 0)) for a in accelerators)
            or "N/A",
            "framework": framework if system.description is not None else UNKNOWN,
            "operating_system": d.get("os") or UNKNOWN,
            "other_software_stack": f"Python {d['pythonVersion']}" if d.get("pythonVersion") else UNKNOWN,
            "host_network_card_count": UNKNOWN,
            "hw_notes": f"host {d.get('hostName', '')} ({d.get('machine', '')})".strip()
            if system.description is not None
            else UNKNOWN,
            "sw_notes": "results from edgeperf, a LoadGen-compatible load generator: not official MLPerf results",
        }
    )
    return out


MAX_ACCURACY_LOG_BYTES = 10 * 1024
"""The checkers refuse a larger mlperf_log_accuracy.json: submissions carry a truncated one."""
_VIEWABLE_CHARS = 4096


def _copy_accuracy(source_dir: Path, target_dir: Path) -> None:
    """The accuracy folder as `truncate_accuracy_log.py` leaves it: accuracy.txt ends with
    `hash=<sha256 of the full log>`, and a log over 10 KiB keeps its first and last 4096 characters."""
    target_dir.mkdir(parents=True, exist_ok=True)
    for name in ("mlperf_log_summary.txt", "mlperf_log_detail.txt"):
        if (source_dir / name).is_file():
            _copy(source_dir / name, target_dir / name)
    log = source_dir / "mlperf_log_accuracy.json"
    txt = source_dir / "accuracy.txt"
    if not log.is_file():
        if txt.is_file():
            _copy(txt, target_dir / "accuracy.txt")
        return
    digest = hashlib.sha256(log.read_bytes()).hexdigest()
    if log.stat().st_size > MAX_ACCURACY_LOG_BYTES:
        text = log.read_text(encoding="utf-8")
        atomic_write(target_dir / log.name, [text[:_VIEWABLE_CHARS], "\n\n...\n\n", text[-_VIEWABLE_CHARS:]])
    else:
        _copy(log, target_dir / log.name)
    if txt.is_file():
        body = txt.read_text(encoding="utf-8")
        atomic_write(
            target_dir / "accuracy.txt", [body if body.endswith("\n") else body + "\n", f"hash={digest}\n"]
        )


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _implementation(benchmark: str) -> dict[str, Any]:
    from edgeperf.benchmarks import registry

    spec = registry.get(benchmark).spec
    return {
        "input_data_types": ", ".join(sorted({t.datatype.lower() for t in spec.inputs})),
        "retraining": "no",
        "starting_weights_filename": f"the model the server serves for {benchmark} (stand-in or official ONNX)",
        "weight_data_types": "as served (fp32 unless a quantized variant is served)",
        "weight_transformations": "none by edgeperf",
    }


def _compliance_tests(rules: str, benchmark: str) -> tuple[str, ...]:
    tests = COMPLIANCE_TESTS.get(rules, COMPLIANCE_TESTS["current"])
    if rules == "v2.1" and benchmark in _TEST04_EXEMPT_V21:
        tests = tuple(t for t in tests if t != "TEST04")
    return tests


def write_submission(
    results_dir: Path,
    systems: Sequence[SubmissionSystem],
    *,
    submitter: str,
    rules: str,
    preset: Path,
    user_conf: Path | None,
    command: str,
) -> Path:
    """Lay the suite's results under `results_dir` out as a submission tree; returns its
    `<results_dir>/submission` root (the checker's `--input`).

    Only scenarios with results are written; an accuracy folder without all four files, or a
    performance run without both logs, is written as far as it goes (the checker then names it).
    """
    root = results_dir / "submission"
    base = root / DIVISION / submitter
    readme = (
        "# edgeperf run\n\n"
        "Runs made by `edgeperf suite`, a LoadGen-compatible load generator driving an edgeperf-server (or any "
        "Triton-protocol server) over gRPC. These are not official MLPerf results.\n\n"
        f"Command: `{command}`\n\nRules preset: {rules} (mlperf.conf here), then user.conf.\n"
    )
    conf_text = (
        user_conf.read_text(encoding="utf-8") if user_conf is not None else "# no user.conf overrides\n"
    )
    code = f"# {IMPLEMENTATION}\n\nThe edgeperf load generator (`edgeperf.client`) and server (`edgeperf.server`).\n"
    for system in systems:
        atomic_write(
            base / "systems" / f"{system.name}.json",
            [json.dumps(system_json(system, submitter=submitter), indent=2) + "\n"],
        )
        for scenario_dir in sorted((results_dir / system.name).glob("*/*")):
            benchmark, scenario = scenario_dir.parent.name, scenario_dir.name
            model = MLPERF_MODEL_DIRS.get(benchmark)
            if model is None or not scenario_dir.is_dir():
                continue
            where = Path(system.name) / model / scenario
            if (scenario_dir / "accuracy").is_dir():
                _copy_accuracy(scenario_dir / "accuracy", base / "results" / where / "accuracy")
            for name in PERFORMANCE_FILES:
                source = scenario_dir / "performance" / "run_1" / name
                if source.is_file():
                    _copy(source, base / "results" / where / "performance" / "run_1" / name)
            measurements = base / "measurements" / where
            measurements.mkdir(parents=True, exist_ok=True)
            _copy(preset, measurements / "mlperf.conf")
            atomic_write(measurements / "user.conf", [conf_text])
            atomic_write(measurements / "README.md", [readme])
            atomic_write(
                measurements / f"{system.name}_{IMPLEMENTATION}_{scenario}.json",
                [json.dumps(_implementation(benchmark), indent=2) + "\n"],
            )
            atomic_write(base / "code" / model / IMPLEMENTATION / "README.md", [code])
            for test in _compliance_tests(rules, benchmark):
                atomic_write(
                    base / "compliance" / where / test / "README.md",
                    [
                        f"# {test}\n\nNot run: put this audit test's results here (compliance/{test} in mlcommons/inference).\n"
                    ],
                )
    return root
