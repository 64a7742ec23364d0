"""Dev-time check (not collected by pytest): edgeperf's v2.1 semantics against a LoadGen v2.1 build.

The mlperf_loadgen wheel is the current LoadGen, so the v2.1 rules (loadable sets drawn from the whole
QSL, equal issue only for SingleStream and Offline, the v2.1 user.conf keys, the logged
generated_samples_per_query) cannot be checked against it. This script checks them against LoadGen
built from tag v2.1 of mlcommons/inference with a small C++ driver (driver.cc, version_stub.cc here):

    git -C inference archive v2.1 loadgen | tar -x -C build && cd build
    g++ -O1 -std=c++17 -DMAJOR_VERSION=2 -DMINOR_VERSION=1 -Iloadgen -o driver21 \\
        DRIVER_DIR/driver.cc DRIVER_DIR/version_stub.cc loadgen/{loadgen,logging,test_settings_internal,utils,version,issue_query_controller,early_stopping}.cc -lpthread
    LOADGEN_V21_DRIVER=$PWD/driver21 .venv/bin/python tests/client/oracle/v21/check_v21.py

Each case runs the driver with edgeperf's v2.1 preset and a short user.conf, then compares the
requested_* and effective_* detail keys, loaded_qsl_set, generated_*, every issued index, the Server
scheduled offsets (trace) and the accuracy-log seq_ids. Last run (g++ 12.2): all 17 cases OK.
"""

import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edgeperf.client.plan.conf import preset_path, resolve_test_settings
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.schedule import (
    SequenceGenerator,
    accuracy_log_mask,
    generate_queries,
    loadable_sets,
)
from edgeperf.client.plan.settings import Scenario, TestMode

DRIVER = os.environ.get("LOADGEN_V21_DRIVER", "driver21")
WORK = Path(os.environ.get("LOADGEN_V21_WORK", tempfile.mkdtemp()))
SC = {Scenario.SINGLE_STREAM: 0, Scenario.MULTI_STREAM: 1, Scenario.SERVER: 2, Scenario.OFFLINE: 3}


def detail(path):
    d = {}
    for line in Path(path).read_text().splitlines():
        if line.startswith(":::MLLOG "):
            r = json.loads(line[9:])
            d.setdefault(r["key"], []).append(r["value"])
    return d


def trace_ts(path):
    st = {}
    for line in Path(path).read_text().splitlines():
        line = line.rstrip(",")
        if '"name":"Sample"' in line and '"ph":"b"' in line:
            e = json.loads(line)
            st[int(e["args"]["sample_seq"])] = round(float(e["ts"]) * 1000)
    return st


def run(name, model, scenario, total, perf, user):
    wd = WORK / name
    wd.mkdir(parents=True, exist_ok=True)
    uc = wd / "user.conf"
    uc.write_text(user)
    out = wd / "issued.txt"
    p = subprocess.run(
        [
            DRIVER,
            str(preset_path("v2.1")),
            model,
            str(SC[scenario]),
            str(total),
            str(perf),
            str(out),
            str(uc),
            scenario.value,
        ],
        cwd=wd,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr
    assert "rc 0" in p.stderr, p.stderr
    issued = [list(map(int, row.split())) for row in out.read_text().splitlines()]
    d = detail(wd / "mlperf_log_detail.txt")
    ts = trace_ts(wd / "mlperf_log_trace.json")
    req = resolve_test_settings(model, scenario, rules="v2.1", user_conf=uc).settings
    eff = EffectiveSettings.from_requested(req, total_sample_count=total, performance_sample_count=perf)
    # effective keys
    probs = []

    def cmp(key, mine):
        theirs = d[key][0]
        if theirs != mine:
            probs.append((key, theirs, mine))

    cmp("effective_samples_per_query", eff.samples_per_query)
    cmp("effective_target_qps", eff.target_qps)
    cmp("effective_target_latency_ns", eff.target_latency_ns or 0)
    cmp("effective_target_latency_percentile", eff.target_latency_percentile)
    cmp("effective_max_async_queries", eff.max_async_queries or 0)
    cmp("effective_target_duration_ms", eff.target_duration_ms)
    cmp("effective_min_duration_ms", eff.min_duration_ms)
    cmp("effective_min_query_count", eff.min_query_count)
    cmp("effective_min_sample_count", eff.min_sample_count)
    cmp("effective_qsl_rng_seed", eff.qsl_rng_seed)
    cmp("effective_sample_index_rng_seed", eff.sample_index_rng_seed)
    cmp("effective_schedule_rng_seed", eff.schedule_rng_seed)
    cmp("effective_performance_sample_count", eff.performance_sample_count)
    mode = eff.mode
    runs = {
        TestMode.ACCURACY_ONLY: [True],
        TestMode.PERFORMANCE_ONLY: [False],
        TestMode.SUBMISSION_RUN: [True, False],
    }[mode]
    loaded, scheds = [], []
    for acc in runs:
        sets = loadable_sets(eff, total, accuracy=acc)
        for s in sets if acc else sets[:1]:
            loaded.append(s)
            scheds.append(generate_queries(eff, s, accuracy=acc))
    if d["loaded_qsl_set"] != loaded:
        probs.append(("loaded_qsl_set",))
    for k, f in [
        ("generated_query_count", "query_count"),
        ("generated_samples_per_query", "generated_samples_per_query"),
        ("generated_query_duration", "generated_query_duration_ns"),
    ]:
        mine = [getattr(s, f) for s in scheds]
        if d[k] != mine:
            probs.append((k, d[k], mine))
    expected = [r for s in scheds for r in s.sample_indices.tolist()]
    if issued != expected[: len(issued)] or (
        len(issued) != len(expected) and scenario not in (Scenario.SINGLE_STREAM, Scenario.MULTI_STREAM)
    ):
        probs.append(("issued", len(issued), len(expected)))
    if scenario is Scenario.SERVER:
        first = 0
        for s in scheds:
            t = [ts[first + i] for i in range(s.query_count)]
            if [x - t[0] for x in t] != s.scheduled_offsets_ns.tolist():
                probs.append(("offsets",))
            first += s.sample_count
    seq = SequenceGenerator()
    logged = []
    k = 0
    for acc in runs:
        n_sets = len(loadable_sets(eff, total, accuracy=acc)) if acc else 1
        for _ in range(n_sets):
            sch = scheds[k]
            k += 1
            b = seq.assign(sch)
            m = accuracy_log_mask(eff, b.accuracy_log_values, accuracy=acc)
            logged += (b.first_sample_id + np.flatnonzero(m.ravel())).tolist()
    n_issued = sum(len(q) for q in issued)
    acc_ids = sorted(e["seq_id"] for e in json.loads((wd / "mlperf_log_accuracy.json").read_text()))
    if acc_ids != [i for i in logged if i < n_issued]:
        probs.append(("acclog", len(acc_ids), len(logged)))
    for key, vals in d.items():
        if key.startswith("requested_") and key not in ("requested_scenario", "requested_test_mode"):
            f = key[len("requested_") :]
            mine = getattr(req, f)
            mine = 0 if mine is None else mine
            if vals[0] != mine:
                probs.append((key, vals[0], mine))
    print(
        name,
        probs or "OK",
        d["generated_query_count"],
        len(issued),
        [k for k in d if k.startswith("error")],
    )


SHORT = "*.*.min_duration = {md}\n*.*.min_query_count = {mq}\n*.SingleStream.target_latency = 1\n*.MultiStream.target_latency = 2\n*.Server.target_qps = 1000\n*.Offline.target_qps = 2000\n"
run("ss", "resnet50", Scenario.SINGLE_STREAM, 5000, 5000, SHORT.format(md=1000, mq=100))
run("ms", "resnet50", Scenario.MULTI_STREAM, 5000, 5000, SHORT.format(md=500, mq=300))
run("server", "resnet50", Scenario.SERVER, 5000, 5000, SHORT.format(md=300, mq=100))
run("offline", "resnet50", Scenario.OFFLINE, 5000, 5000, SHORT.format(md=1000, mq=100))
run(
    "ss_acc", "resnet50", Scenario.SINGLE_STREAM, 2500, 5000, SHORT.format(md=1000, mq=100) + "*.*.mode = 1\n"
)
run("ms_acc", "resnet50", Scenario.MULTI_STREAM, 2500, 5000, SHORT.format(md=1000, mq=100) + "*.*.mode = 1\n")
run(
    "server_acc",
    "retinanet",
    Scenario.SERVER,
    150,
    64,
    SHORT.format(md=100, mq=100).replace("target_qps = 1000", "target_qps = 20000") + "*.*.mode = 1\n",
)
run("offline_acc", "resnet50", Scenario.OFFLINE, 2500, 5000, SHORT.format(md=1000, mq=100) + "*.*.mode = 1\n")
run("unet_ss", "3d-unet", Scenario.SINGLE_STREAM, 42, 42, SHORT.format(md=500, mq=10))
run("unet_offline", "3d-unet", Scenario.OFFLINE, 42, 42, SHORT.format(md=100, mq=100))
run("unet_offline_acc", "3d-unet", Scenario.OFFLINE, 50, 42, SHORT.format(md=100, mq=100) + "*.*.mode = 1\n")
run("unet_ss_acc", "3d-unet", Scenario.SINGLE_STREAM, 50, 42, SHORT.format(md=100, mq=100) + "*.*.mode = 1\n")
run("unet_server", "3d-unet", Scenario.SERVER, 42, 42, SHORT.format(md=200, mq=50))
run("unet_ms", "3d-unet", Scenario.MULTI_STREAM, 42, 42, SHORT.format(md=200, mq=50))
run(
    "ss_submission",
    "retinanet",
    Scenario.SINGLE_STREAM,
    150,
    64,
    SHORT.format(md=100, mq=100) + "*.*.mode = 0\n*.*.accuracy_log_probability = 10\n",
)
run(
    "ss_unique",
    "resnet50",
    Scenario.SINGLE_STREAM,
    3000,
    3000,
    SHORT.format(md=100, mq=100) + "*.*.performance_issue_unique = 1\n",
)
run(
    "server_same",
    "resnet50",
    Scenario.SERVER,
    3000,
    3000,
    SHORT.format(md=100, mq=100) + "*.*.performance_issue_same = 1\n*.*.performance_issue_same_index = 5\n",
)
