"""The conf parser reads files as the official LoadGen's `TestSettings.FromConfig` does.

The oracle is `mlperf_loadgen` 6.0.17, the current LoadGen, so these tests use `rules="current"`: its
built-in mlperf.conf (conf_type 0) against edgeperf's `mlperf-current.conf` preset, then a user.conf
(conf_type 1). Lines LoadGen silently misreads are compared with edgeperf's lenient mode
(`strict=False`), which reads them as LoadGen does; strict mode rejects them (tests/client/test_conf.py).
All FromConfig calls run in one fresh process (oracle/loadgen_oracle.py).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from edgeperf.client.plan.conf import ConfigError, resolve_test_settings
from edgeperf.client.plan.settings import Rules, Scenario, TestSettings
from tests.client.oracle_run import run_oracle

pytestmark = pytest.mark.oracle

MODELS = (
    "resnet50",
    "retinanet",
    "3d-unet",
    "rnnt",
    "bert",
    "llama2-70b",
    "gptj",
    "pointpainting",
    "unknown",
)
# LoadGen's Python attribute names where they differ from the TestSettings field names.
RENAMED = {"ttft_latency": "server_ttft_latency_ns", "tpot_latency": "server_tpot_latency_ns"}
NOT_FROM_CONF = {"scenario", "rules"}

VALID_USER_CONF = """\
# a user.conf with every kind of value
*.SingleStream.target_latency = 0.75
resnet50.MultiStream.target_latency = 12
*.MultiStream.samples_per_query = 0x4
*.Server.target_qps = 123.25
*.Server.target_latency = 012
*.Server.target_latency_percentile = 97.5
*.Server.coalesce_queries = 1
*.Server.max_async_queries = 16
*.Offline.target_qps = 1e3
*.*.min_duration = 1500
resnet50.*.max_duration = 90000
*.Offline.min_query_count = 777
*.*.max_query_count = 0
*.*.performance_sample_count_override = 96
*.*.accuracy_sample_count_override = 300
*.*.accuracy_log_rng_seed = 18446744073709551615
*.*.accuracy_log_sampling_target = 64
*.*.performance_issue_same = 1
*.*.performance_issue_same_index = 3
*.*.sample_concatenate_permutation = 1
*.*.print_timestamps = 1
*.*.mode = 3
"""

QUIRKY_USER_CONF = """\
#comment-without-space
*.*.min_duration = 1.9e3
*.*.min_query_count = 10 20
*.*.max_query_count=99
*.*.performance_issue_unique = 2
*.*.sample_concatenate_permutation = 2
*.*.max_duration = 1
*.*.max_duration = 2
*.*.qsl_rng_seed = 5
*.*.unknown_key = 1
*.Offline.target_latency_percentile = 50
*.Server.ttft_latency = 7
*.Server.target_latency = 15.5
*.*.mode = 9
resnet50.*.performance_sample_count_override = 08
"""

BROKEN_USER_CONF = "*.*.min_duration = 1500 # trailing comment\n"


def _from_loadgen(attributes: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in attributes.items():
        field = RENAMED.get(name, name)
        out[field] = value
    return out


def _mine(settings: TestSettings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(TestSettings):
        if f.name in NOT_FROM_CONF:
            continue
        value = getattr(settings, f.name)
        if value is None:
            value = 0
        elif f.name == "mode":
            value = value.value
        out[f.name] = value
    return out


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("oracle_conf")
    confs = {}
    for name, text in (
        ("valid", VALID_USER_CONF),
        ("quirky", QUIRKY_USER_CONF),
        ("broken", BROKEN_USER_CONF),
    ):
        confs[name] = workdir / f"{name}.conf"
        confs[name].write_text(text)
    batch = [{"model": m, "scenario": s.value, "path": ""} for m in MODELS for s in Scenario]
    for path in confs.values():
        batch += [{"model": "resnet50", "scenario": s.value, "path": str(path)} for s in Scenario]
    batch.append({"model": "resnet50", "scenario": "Offline", "path": str(workdir / "absent.conf")})
    spec = {"workdir": str(workdir), "run": False, "conf_batch": batch}
    result = run_oracle("loadgen_oracle.py", spec, workdir)
    return {"batch": batch, "results": result["conf_batch"], "defaults": result["attributes"], "confs": confs}


def _results(oracle: dict[str, Any], path: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [
        (item, res)
        for item, res in zip(oracle["batch"], oracle["results"], strict=True)
        if item["path"] == path
    ]


def test_defaults_are_loadgens(oracle: dict[str, Any]) -> None:
    theirs = _from_loadgen(oracle["defaults"])
    assert theirs.pop("scenario") == "SingleStream"
    assert _mine(TestSettings(rules=Rules.CURRENT)) == theirs


def test_current_preset_matches_the_built_in_mlperf_conf(oracle: dict[str, Any]) -> None:
    compared = 0
    for item, res in _results(oracle, ""):
        assert res["rc"] == 0
        mine = resolve_test_settings(item["model"], Scenario(item["scenario"]), rules="current")
        theirs = _from_loadgen(res["attributes"])
        theirs.pop("scenario")
        assert _mine(mine.settings) == theirs, item
        compared += 1
    assert compared == len(MODELS) * len(Scenario)


def test_user_conf_values_are_read_as_loadgen_reads_them(oracle: dict[str, Any]) -> None:
    for item, res in _results(oracle, str(oracle["confs"]["valid"])):
        assert res["rc"] == 0
        mine = resolve_test_settings(
            "resnet50", Scenario(item["scenario"]), rules="current", user_conf=Path(item["path"])
        )
        assert mine.warnings == ()
        theirs = _from_loadgen(res["attributes"])
        theirs.pop("scenario")
        assert _mine(mine.settings) == theirs, item


def test_quirky_lines_read_leniently_as_loadgen_does_and_strictly_fail(oracle: dict[str, Any]) -> None:
    path = Path(oracle["confs"]["quirky"])
    for item, res in _results(oracle, str(path)):
        assert res["rc"] == 0
        scenario = Scenario(item["scenario"])
        lenient = resolve_test_settings("resnet50", scenario, rules="current", user_conf=path, strict=False)
        theirs = _from_loadgen(res["attributes"])
        theirs.pop("scenario")
        assert _mine(lenient.settings) == theirs, item
        assert len(lenient.warnings) >= 13
        with pytest.raises(ConfigError):
            resolve_test_settings("resnet50", scenario, rules="current", user_conf=path)


def test_files_loadgen_rejects_are_errors(oracle: dict[str, Any]) -> None:
    broken = _results(oracle, str(oracle["confs"]["broken"]))
    assert {res["rc"] for _, res in broken} == {-22}  # -EINVAL: none of the file's keys applied
    with pytest.raises(ConfigError, match="trailing comment"):
        resolve_test_settings(
            "resnet50", Scenario.OFFLINE, rules="current", user_conf=Path(broken[0][0]["path"]), strict=False
        )
    absent = oracle["results"][-1]
    assert absent["rc"] == -2  # -ENOENT
    with pytest.raises(ConfigError, match="cannot read"):
        resolve_test_settings(
            "resnet50", Scenario.OFFLINE, rules="current", user_conf=Path(oracle["batch"][-1]["path"])
        )
