"""The structure checks of the MLPerf submission checkers, step by step, for tests of the submission tree.

Follows mlcommons/inference `tools/submission/submission-checker.py` at v2.1 (`check_results_dir`,
`check_system_desc_id`, `check_measurement_dir`, `files_diff`, the accuracy folder's hash and size
checks) and the current `submission_checker` package (`SystemCheck.required_fields_check` with its
non-empty fields, `MeasurementsCheck`). It covers the tree's structure, not the runs' contents (run
length, seeds, accuracy targets), which a short test run fails legitimately. Each problem is returned
as one line naming the path, in the checkers' words.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

VALID_DIVISIONS = ("open", "closed", "network")
VALID_AVAILABILITIES = ("available", "preview", "rdi")
VALID_SYSTEM_TYPES = ("datacenter", "edge", "datacenter,edge", "edge,datacenter")
REQUIRED_PERF_FILES = ["mlperf_log_summary.txt", "mlperf_log_detail.txt"]
OPTIONAL_PERF_FILES = ["mlperf_log_accuracy.json"]
REQUIRED_ACC_FILES = [
    "mlperf_log_summary.txt",
    "mlperf_log_detail.txt",
    "accuracy.txt",
    "mlperf_log_accuracy.json",
]
REQUIRED_MEASURE_FILES = {
    "v2.1": ["mlperf.conf", "user.conf", "README.md"],
    "current": ["user.conf", "README.md"],
}
MAX_ACCURACY_LOG_SIZE = 10 * 1024
V21_SYSTEM_FIELDS = [
    "division", "submitter", "status", "system_name", "number_of_nodes", "host_processor_model_name",
    "host_processors_per_node", "host_processor_core_count", "host_memory_capacity", "host_storage_capacity",
    "host_storage_type", "accelerators_per_node", "accelerator_model_name", "accelerator_memory_capacity",
    "framework", "operating_system", "system_type", "other_software_stack", "host_processor_frequency",
    "host_processor_caches", "host_memory_configuration", "host_processor_interconnect", "host_networking",
    "host_networking_topology", "accelerator_frequency", "accelerator_host_interconnect",
    "accelerator_interconnect", "accelerator_interconnect_topology", "accelerator_memory_configuration",
    "accelerator_on-chip_memories", "cooling", "hw_notes", "sw_notes",
]  # fmt: skip
CURRENT_SYSTEM_FIELDS = [*V21_SYSTEM_FIELDS, "host_network_card_count", "system_type_detail"]
CURRENT_NON_EMPTY_FIELDS = [
    "division", "submitter", "system_type", "status", "system_name", "number_of_nodes",
    "host_processor_model_name", "host_processors_per_node", "host_processor_core_count", "host_memory_capacity",
    "host_memory_configuration", "host_storage_capacity", "host_storage_type", "host_networking",
    "host_network_card_count", "host_networking_topology", "accelerators_per_node", "accelerator_model_name",
    "accelerator_memory_capacity", "accelerator_host_interconnect", "accelerator_memory_configuration",
    "accelerator_interconnect", "cooling", "framework", "operating_system", "other_software_stack",
]  # fmt: skip
SYSTEM_IMP_REQUIRED_FILES = [
    "input_data_types",
    "retraining",
    "starting_weights_filename",
    "weight_data_types",
    "weight_transformations",
]
MODELS = ("resnet", "retinanet", "3d-unet-99", "3d-unet-99.9", "rnnt", "bert-99", "bert-99.9")
"""The v2.1 Edge models (model_mapping and the get_mlperf_model guesses are not needed for these)."""


def _dirs(*path: Path) -> list[str]:
    p = Path(*path)
    return sorted(f.name for f in p.iterdir() if f.is_dir()) if p.is_dir() else []


def _files(*path: Path) -> list[str]:
    p = Path(*path)
    return sorted(f.name for f in p.iterdir() if f.is_file()) if p.is_dir() else []


def _files_diff(found: list[str], required: list[str], optional: list[str] | None = None) -> list[str]:
    optional = optional or []
    return sorted(set(found).symmetric_difference(required) - set(optional))


def _system_errors(
    path: Path, system: dict[str, Any], submitter: str, division: str, version: str
) -> list[str]:
    errors: list[str] = []
    fields = V21_SYSTEM_FIELDS if version == "v2.1" else CURRENT_SYSTEM_FIELDS
    for k in fields:
        if k not in system:
            errors.append(f"{path}, field {k} is missing")
        elif version != "v2.1" and k in CURRENT_NON_EMPTY_FIELDS and not system[k]:
            errors.append(f"{path}, field {k} requires a meaningful response but is empty")
    if str(system.get("submitter", "")).lower() != submitter.lower():
        errors.append(f"{path} has submitter {system.get('submitter')}, directory has {submitter}")
    if system.get("division") != division:
        errors.append(f"{path} has division {system.get('division')}, directory has {division}")
    return errors


def _measurement_errors(root: Path, measurement_dir: Path, system_desc: str, model: str, scenario: str, version: str) -> list[str]:  # fmt: skip
    errors: list[str] = []
    files = _files(measurement_dir)
    for name in REQUIRED_MEASURE_FILES[version]:
        if name not in files:
            errors.append(f"{measurement_dir} is missing {name}")
    system_file, end = None, 0
    for name in files:
        if name.startswith(system_desc) and name.endswith("_" + scenario + ".json"):
            system_file, end = name, len("_" + scenario + ".json")
            break
        if name.startswith(system_desc) and name.endswith(".json"):
            system_file, end = name, len(".json")
            break
    if system_file is None:
        return [*errors, f"{measurement_dir} is missing {system_desc}*.json"]
    implementation = json.loads((measurement_dir / system_file).read_text())
    errors += [
        f"{measurement_dir}, field {k} is missing"
        for k in SYSTEM_IMP_REQUIRED_FILES
        if k not in implementation
    ]
    impl = system_file[len(system_desc) + 1 : -end]
    code_dir = root / "code" / model / impl
    if not code_dir.exists() and not code_dir.parent.exists():
        errors.append(f"{measurement_dir} is missing code_dir {code_dir}")
    return errors


def _accuracy_errors(acc_path: Path) -> list[str]:
    if not (acc_path / "accuracy.txt").is_file():
        return [f"{acc_path} has no accuracy.txt"]
    errors: list[str] = []
    diff = _files_diff(_files(acc_path), REQUIRED_ACC_FILES)
    if diff:
        errors.append(f"{acc_path} has file list mismatch ({diff})")
    lines = (acc_path / "accuracy.txt").read_text(encoding="utf-8").splitlines()
    if not any(re.match(r"^hash=([\w\d]+)$", line) for line in lines):
        errors.append(f"{acc_path} not hash value for mlperf_log_accuracy.json")
    log = acc_path / "mlperf_log_accuracy.json"
    if not log.exists():
        errors.append(f"{log} is missing")
    elif os.stat(log).st_size > MAX_ACCURACY_LOG_SIZE:
        errors.append(f"{log} is not truncated")
    return errors


def structure_errors(submission: Path, version: str) -> list[str]:
    """Every structure problem the `version` ("v2.1" or "current") checker would report under `submission`."""
    errors: list[str] = []
    for division in _dirs(submission):
        if division not in VALID_DIVISIONS:
            errors.append(f"invalid division in input dir {division}")
            continue
        for submitter in _dirs(submission / division):
            root = submission / division / submitter
            results_path = root / "results"
            for system_desc in _dirs(results_path):
                system_file = root / "systems" / f"{system_desc}.json"
                if not system_file.exists():
                    errors.append(f"no system_desc for {division}/{submitter}/{system_desc}")
                    continue
                system = json.loads(system_file.read_text())
                if str(system.get("status", "")).lower() not in VALID_AVAILABILITIES:
                    errors.append(f"{system_file} has invalid status ({system.get('status')})")
                if system.get("system_type") not in VALID_SYSTEM_TYPES:
                    errors.append(f"{system_file} has invalid system type ({system.get('system_type')})")
                errors += _system_errors(system_file, system, submitter, division, version)
                for model in _dirs(results_path, Path(system_desc)):
                    if model not in MODELS:
                        errors.append(f"{results_path / system_desc / model} has an invalid model {model}")
                        continue
                    for scenario in _dirs(results_path, Path(system_desc), Path(model)):
                        name = results_path / system_desc / model / scenario
                        measurement_dir = root / "measurements" / system_desc / model / scenario
                        if not measurement_dir.exists():
                            errors.append(f"no measurement_dir for {measurement_dir}")
                        else:
                            errors += _measurement_errors(
                                root, measurement_dir, system_desc, model, scenario, version
                            )
                        errors += _accuracy_errors(name / "accuracy")
                        perf = name / "performance" / "run_1"
                        if not perf.is_dir():
                            errors.append(f"{name} has no performance/run_1")
                        else:
                            diff = _files_diff(_files(perf), REQUIRED_PERF_FILES, OPTIONAL_PERF_FILES)
                            if diff:
                                errors.append(f"{perf} has file list mismatch ({diff})")
    return errors
