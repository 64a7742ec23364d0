"""Log writers: LoadGen's formats, atomic writes, and an oracle comparison with mlperf_loadgen."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeperf.client.issue.raw_results import AccuracyEntry, RunResult
from edgeperf.client.issue.recorder import RunRecorder
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.settings import Rules, Scenario, TestMode, TestSettings
from edgeperf.client.report.log_files import (
    NOT_OFFICIAL_NOTICE,
    LoadableSetLog,
    LogFiles,
    RunInfo,
    accuracy_log_lines,
    atomic_write,
    cpp_double,
    detail_lines,
    summary_text,
    write_result_json,
    write_run_logs,
)
from edgeperf.client.report.metrics import summarize

T0 = 7_000_000_000
DETAIL_KEYS = ["key", "value", "time_ms", "namespace", "event_type", "metadata"]
METADATA_KEYS = ["is_error", "is_warning", "file", "line_no", "pid", "tid"]
INFO = RunInfo(
    sut_name="PySUT",
    test_datetime=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    qsl_total_count=64,
    qsl_performance_count=64,
    performance_set=LoadableSetLog(
        loaded_qsl_set=(3, 1, 2),
        generated_query_count=3,
        generated_samples_per_query=1,
        generated_query_duration_ns=9,
    ),
)


def _settings(
    scenario: Scenario, mode: TestMode = TestMode.PERFORMANCE_ONLY, **kw: object
) -> EffectiveSettings:
    req = TestSettings(scenario=scenario, mode=mode, rules=Rules.CURRENT, **kw)  # type: ignore[arg-type]
    return EffectiveSettings.from_requested(req, total_sample_count=64, performance_sample_count=64)


def _single_stream_run(n: int, failures: int = 0) -> RunResult:
    rec = RunRecorder(samples_per_query=1, n_queries=n, sample_indices=np.arange(n) % 64)
    rec.mark_start(T0)
    t = T0
    for q in range(n):
        rec.record_issue(q, t, t)
        if q < failures:
            rec.record_error(rec.slot(q, 0), t, t + 500, "UNAVAILABLE", 'queue "full"')
        else:
            rec.record_sample_complete(
                rec.slot(q, 0), t, t + 1_000_000 + q, 100, 200, bytes([q % 256, 0xAB]) if q < 3 else None
            )
        t += 1_000_000 + q + 10
    rec.record_event(
        t - T0 + T0, "generic_message", "Ending naturally: Minimum query count and test duration met."
    )
    return rec.finish(t)


def _raw_key(line: str) -> str:
    m = re.search(r'"key": "([^"]+)"', line)
    assert m is not None
    return m.group(1)


def _parse_detail(lines: list[str]) -> list[dict[str, object]]:
    out = []
    for line in lines:
        assert line.startswith(":::MLLOG ") and line.endswith("\n")
        obj = json.loads(line[len(":::MLLOG ") :])
        assert list(obj) == DETAIL_KEYS and list(obj["metadata"]) == METADATA_KEYS
        out.append(obj)
    return out


def test_cpp_double_matches_the_stream_default():
    assert [cpp_double(v) for v in (1e6, 0.9, 835.1162, 0.0, 1000.0, 16.5, 781494.83)] == [
        "1e+06",
        "0.9",
        "835.116",
        "0",
        "1000",
        "16.5",
        "781495",
    ]


def test_detail_lines_are_json_in_loadgen_key_order():
    st = _settings(Scenario.SINGLE_STREAM, min_duration_ms=100, min_query_count=100)
    res = _single_stream_run(200, failures=2)
    s = summarize(st, res)
    parsed = _parse_detail(detail_lines(st, INFO, performance=res, summary=s))
    keys = [str(o["key"]) for o in parsed]
    assert keys[0] == "loadgen_version"
    order = [
        "test_datetime",
        "sut_name",
        "requested_scenario",
        "effective_scenario",
        "loaded_qsl_set",
        "power_begin",
    ]
    order += ["result_validity", "result_min_duration_met", "result_min_queries_met", "early_stopping_met"]
    order += ["result_invalid_reason", "early_stopping_result", "result_query_count"]
    order += [
        "result_qps_with_loadgen_overhead",
        "result_qps_without_loadgen_overhead",
        "early_stopping_latency_ss",
    ]
    order += [
        "early_stopping_latency_ms",
        "result_min_latency_ns",
        "result_99.90_percentile_latency_ns",
        "num_errors",
    ]
    assert [keys.index(k) for k in order] == sorted(keys.index(k) for k in order)
    values = {str(o["key"]): o["value"] for o in parsed}
    assert values["result_validity"] == "INVALID"
    assert values["requested_max_duration_ms"] == 0 and values["effective_target_latency_ns"] == 0
    assert values["requested_print_timestamps"] is False
    assert values["loaded_qsl_set"] == [3, 1, 2]
    assert "2 of 200 samples failed (UNAVAILABLE: 2)." in str(values["result_invalid_reason"])
    errors = [o for o in parsed if o["metadata"]["is_error"]]  # type: ignore[index]
    assert [o["value"] for o in errors] == ['2 samples failed with UNAVAILABLE: queue "full"']
    assert values["num_errors"] == 1
    raw = {_raw_key(ln): ln for ln in detail_lines(st, INFO, performance=res, summary=s)}
    assert '"value": 1e+06,' in raw["requested_single_stream_expected_latency_ns"]
    assert '"value": 0.9,' in raw["requested_single_stream_target_latency_percentile"]
    assert (
        '"value": " * Processed at least 64 queries (198).  * Would discard ' in raw["early_stopping_result"]
    )


def test_summary_phrases_match_loadgen():
    st = _settings(Scenario.SINGLE_STREAM, min_duration_ms=100, min_query_count=100)
    res = _single_stream_run(200)
    s = summarize(st, res)
    text = summary_text(st, INFO, s, warnings=0, errors=1)
    lines = text.split("\n")
    assert lines[:7] == [
        "================================================",
        "MLPerf Results Summary",
        "================================================",
        "SUT name : PySUT",
        "Scenario : SingleStream",
        "Mode     : PerformanceOnly",
        f"90.0th percentile latency (ns) : {s.sample_latency.target_ns}",  # type: ignore[union-attr]
    ]
    assert "Result is : VALID" in lines
    for phrase in (
        "  Min duration satisfied : Yes",
        "  Min queries satisfied : Yes",
        "  Early stopping satisfied: Yes",
    ):
        assert phrase in lines
    assert "Early Stopping Result:" in lines and " * Processed at least 64 queries (200)." in lines
    assert (
        "print_timestamps : 0" in lines
        and "target_qps : 1000" in lines
        and "accuracy_sample_count : 64" in lines
    )
    assert text.endswith(
        f"\nNo warnings encountered during test.\n\n1 ERROR encountered. See detailed log.\n\n{NOT_OFFICIAL_NOTICE}\n"
    )
    # NOTE: the phrases compliance scripts parse must be unaffected by the notice.
    assert ": " not in NOT_OFFICIAL_NOTICE and "Result is" not in NOT_OFFICIAL_NOTICE
    assert "Scenario" not in NOT_OFFICIAL_NOTICE and "ERROR" not in NOT_OFFICIAL_NOTICE
    v21 = _settings(Scenario.SINGLE_STREAM, min_duration_ms=100, min_query_count=100)
    v21 = EffectiveSettings.from_requested(
        TestSettings(scenario=Scenario.SINGLE_STREAM, min_duration_ms=100),
        total_sample_count=64,
        performance_sample_count=64,
    )
    old = summary_text(v21, INFO, summarize(v21, res), warnings=2, errors=3)
    assert "\n90th percentile latency (ns) : " in old and "accuracy_sample_count" not in old
    assert "\n2 warnings encountered. See detailed log.\n\n3 ERRORS encountered. See detailed log.\n" in old


def test_invalid_summary_lists_recommendations():
    st = _settings(Scenario.SINGLE_STREAM, min_duration_ms=10_000, min_query_count=1000)
    res = _single_stream_run(100, failures=1)
    text = summary_text(st, INFO, summarize(st, res), warnings=0, errors=1)
    assert "Result is : INVALID\n" in text
    assert (
        "Recommendations:\n"
        " * Decrease the expected latency so the loadgen pre-generates more queries.\n"
        " * The test exited early, before enough queries were issued.\n"
        "   See the detailed log for why this may have occurred.\n"
        " * 1 of 100 samples failed (UNAVAILABLE: 1). See the detailed log.\n"
        "Early Stopping Result:\n"
    ) in text


def write_logs(outdir: Path, settings: EffectiveSettings, info: RunInfo, **results: Any) -> LogFiles:
    """Every file of a run, the way `finish_run` writes them: the logs, then result.json once."""
    files, doc = write_run_logs(outdir, settings, info, **results)
    write_result_json(files.result_json, doc)
    return files


def test_accuracy_only_summary_is_only_the_footer_and_detail_has_no_results(tmp_path: Path) -> None:
    st = _settings(Scenario.OFFLINE, TestMode.ACCURACY_ONLY)
    res = _single_stream_run(5)
    files = write_logs(tmp_path, st, INFO, accuracy=res)
    assert files.summary.read_text() == (
        f"\nNo warnings encountered during test.\n\nNo errors encountered during test.\n\n{NOT_OFFICIAL_NOTICE}\n"
    )
    parsed = _parse_detail(files.detail.read_text().splitlines(keepends=True))
    assert not [o for o in parsed if str(o["key"]).startswith("result_")]
    assert ("generic_message", "Starting accuracy mode") in [(o["key"], o["value"]) for o in parsed]


def test_accuracy_log_layout_and_uppercase_hex():
    entries = [
        AccuracyEntry(seq_id=0, qsl_idx=216, data=b"\x0a\x1b\xff"),
        AccuracyEntry(seq_id=1, qsl_idx=267, data=b""),
    ]
    text = "".join(accuracy_log_lines(entries))
    assert text == (
        '[\n{ "seq_id" : 0, "qsl_idx" : 216, "data" : "0A1BFF" },\n{ "seq_id" : 1, "qsl_idx" : 267, "data" : "" }\n]\n'
    )
    assert json.loads(text)[0]["data"] == "0A1BFF"
    assert "".join(accuracy_log_lines([])) == "[\n]\n"


def test_write_logs_writes_every_file(tmp_path: Path) -> None:
    st = _settings(Scenario.SINGLE_STREAM, min_duration_ms=100, min_query_count=100)
    res = _single_stream_run(200, failures=1)
    files = write_logs(tmp_path / "out", st, INFO, performance=res, summary=summarize(st, res))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in files.all)
    acc = json.loads(files.accuracy.read_text())
    assert [(e["seq_id"], e["qsl_idx"], e["data"]) for e in acc] == [(1, 1, "01AB"), (2, 2, "02AB")]
    doc = json.loads(files.result_json.read_text())
    assert doc["validity"]["result_validity"] == "INVALID"
    assert doc["errors"]["performance"]["by_status"] == {"UNAVAILABLE": 1}
    assert doc["latency_breakdown_ns"]["server_queue"]["mean_ns"] == 100
    assert doc["latency_breakdown_ns"]["server_compute"]["mean_ns"] == 200
    assert doc["issue_delay_ns"]["p99_ns"] == 0
    assert doc["metrics"]["official"]["key"] == "early_stopping_latency_ss"
    lat = doc["metrics"]["sample_latency_ns"]
    assert (
        lat["count"] == 199
        and lat["min"] == 1_000_001
        and set(lat["percentiles"])
        == {
            "50.00",
            "90.00",
            "95.00",
            "97.00",
            "99.00",
            "99.90",
        }
    )
    assert doc["notice"] == NOT_OFFICIAL_NOTICE
    assert "1 ERROR encountered" in files.summary.read_text()


def test_atomic_write_failure_leaves_the_old_file_and_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "mlperf_log_detail.txt"
    atomic_write(target, ["old\n"])

    def chunks() -> Iterator[str]:
        yield "new partial"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, chunks())
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["mlperf_log_detail.txt"]
    fresh = tmp_path / "new.json"
    with pytest.raises(OSError):
        atomic_write(fresh, chunks())
    assert not fresh.exists()


# --- oracle: the official mlperf_loadgen, in fresh subprocesses (MLPERF_LOADGEN.md §13) -------------

# NOTE: SingleStream and MultiStream run out of generated queries long before their 10 s minimum
# duration, and Server's duration check reads exact scheduled offsets, so no result sits on a timing edge.
_ORACLE_SETTINGS: dict[str, object] = {
    "min_duration_ms": 10_000,
    "min_query_count": 100,
    "single_stream_expected_latency_ns": 10_000_000,
    "multi_stream_expected_latency_ns": 20_000_000,
    "server_target_qps": 4000,
    "server_target_latency_ns": 300_000,
    "offline_expected_qps": 2000,
    "accuracy_log_probability": 0.05,
    "accuracy_log_rng_seed": 7,
}


def _oracle_settings(scenario: Scenario) -> dict[str, object]:
    if scenario in (Scenario.SERVER, Scenario.OFFLINE):
        return {**_ORACLE_SETTINGS, "min_duration_ms": 200}
    return _ORACLE_SETTINGS


_ORACLE_SCRIPT = """
import array, sys
import mlperf_loadgen as lg

scenario, outdir, settings = sys.argv[1], sys.argv[2], eval(sys.argv[3])
keep = []

def issue(samples):
    bufs = [array.array("B", [s.index % 256, 0xAB, 0x0C]) for s in samples]
    keep.append(bufs)
    lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, b.buffer_info()[0], len(b)) for s, b in zip(samples, bufs)])

sut = lg.ConstructSUT(issue, lambda: None)
qsl = lg.ConstructQSL(64, 64, lambda x: None, lambda x: None)
ts = lg.TestSettings()
ts.scenario = getattr(lg.TestScenario, scenario)
ts.mode = lg.TestMode.PerformanceOnly
for key, value in settings.items():
    setattr(ts, key, value)
out = lg.LogOutputSettings()
out.outdir = outdir
log = lg.LogSettings()
log.log_output = out
log.enable_trace = True
lg.StartTestWithLogSettings(sut, qsl, ts, log)
lg.DestroyQSL(qsl)
lg.DestroySUT(sut)
"""
_SAMPLE_EVENT = re.compile(
    r'"ts":([0-9.]+),"args":\{"sample_seq":(\d+),"query_seq":(\d+),"sample_idx":(\d+),'
    r'"issue_start_ns":(\d+),"complete_ns":(\d+)\}'
)


@pytest.fixture(scope="module")
def oracle_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[Scenario, Path]:
    root = tmp_path_factory.mktemp("oracle")
    procs = {}
    for scenario in Scenario:
        out = root / scenario.value
        out.mkdir()
        cmd = [
            sys.executable,
            "-c",
            _ORACLE_SCRIPT,
            scenario.value,
            str(out),
            repr(_oracle_settings(scenario)),
        ]
        procs[scenario] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for proc in procs.values():
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, output.decode(errors="replace")
    return {scenario: root / scenario.value for scenario in Scenario}


def _oracle_run(directory: Path) -> RunResult:
    """Rebuilds the oracle's raw results from its trace: per sample the scheduled time, issue and completion."""
    rows = sorted(
        _SAMPLE_EVENT.findall((directory / "mlperf_log_trace.json").read_text()), key=lambda r: int(r[1])
    )
    sizes = np.bincount([int(r[2]) for r in rows]).tolist()
    rec = RunRecorder(samples_per_query=sizes, sample_indices=[int(r[3]) for r in rows])
    # NOTE: the first query's scheduled time is the test start for Server and Offline; for SingleStream and
    # MultiStream it is the moment the issue thread woke, a few hundred ns after the start.
    origin = int(Decimal(rows[0][0]) * 1000)
    rec.mark_start(T0)
    slot = [0] * len(sizes)
    for ts, _seq, query, _idx, issue_ns, complete_ns in rows:
        q = int(query)
        scheduled = T0 + int(Decimal(ts) * 1000) - origin
        if slot[q] == 0:
            rec.record_issue(q, scheduled, scheduled + int(issue_ns))
        rec.record_sample_complete(
            rec.slot(q, slot[q]), scheduled + int(issue_ns), scheduled + int(complete_ns)
        )
        slot[q] += 1
    return rec.finish(T0 + 10**10)


def _raw_detail(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        m = re.match(r':::MLLOG \{"key": "([^"]+)", "value": (.*), "time_ms": ', line)
        assert m is not None, line
        out.setdefault(m.group(1), m.group(2))
    return out


_TIMING_APPROXIMATE = {"result_qps_with_loadgen_overhead"}


@pytest.mark.oracle
@pytest.mark.parametrize("scenario", list(Scenario))
def test_summary_and_logs_match_the_official_loadgen(
    oracle_dirs: dict[Scenario, Path], scenario: Scenario
) -> None:
    directory = oracle_dirs[scenario]
    req = TestSettings(scenario=scenario, rules=Rules.CURRENT, **_oracle_settings(scenario))  # type: ignore[arg-type]
    settings = EffectiveSettings.from_requested(req, total_sample_count=64, performance_sample_count=64)
    run = _oracle_run(directory)
    summary = summarize(settings, run)
    info = RunInfo(sut_name="PySUT", test_datetime=datetime.now(UTC))
    oracle_lines = (directory / "mlperf_log_detail.txt").read_text().splitlines(keepends=True)
    oracle = _raw_detail(oracle_lines)
    mine = _raw_detail(detail_lines(settings, info, performance=run, summary=summary))
    compared = [k for k in oracle if k.startswith(("result_", "early_stopping", "requested_", "effective_"))]
    assert "result_validity" in compared and "early_stopping_met" in compared
    assert [k for k in mine if k.startswith("result_") and k not in oracle] == []
    for key in compared:
        if key in _TIMING_APPROXIMATE:
            assert float(mine[key]) == pytest.approx(float(oracle[key]), rel=1e-3), key
        else:
            assert mine[key] == oracle[key], key

    parsed = _parse_detail(oracle_lines)
    warnings = len([o for o in parsed if o["metadata"]["is_warning"]])  # type: ignore[index]
    errors = len([o for o in parsed if o["metadata"]["is_error"]])  # type: ignore[index]
    expected = (directory / "mlperf_log_summary.txt").read_text().split("\n")
    got = summary_text(settings, info, summary, warnings=warnings, errors=errors).split("\n")
    assert got[-3:] == ["", NOT_OFFICIAL_NOTICE, ""]
    got = got[:-2]
    assert len(got) == len(expected)
    for ours, theirs in zip(got, expected, strict=True):
        if theirs.startswith("QPS w/ loadgen overhead"):
            assert float(ours.split(": ")[1]) == pytest.approx(float(theirs.split(": ")[1]), rel=1e-3)
        else:
            assert ours == theirs

    acc_text = (directory / "mlperf_log_accuracy.json").read_text()
    entries = [
        AccuracyEntry(seq_id=e["seq_id"], qsl_idx=e["qsl_idx"], data=bytes.fromhex(e["data"]))
        for e in json.loads(acc_text)
    ]
    assert entries, "the oracle logged no accuracy entries"
    assert "".join(accuracy_log_lines(entries)) == acc_text


def test_v2_1_server_summary_and_detail_layout() -> None:
    req = TestSettings(
        scenario=Scenario.SERVER, server_target_latency_ns=10_000_000, min_duration_ms=1, min_query_count=1
    )
    st = EffectiveSettings.from_requested(req, total_sample_count=64, performance_sample_count=64)
    rec = RunRecorder(samples_per_query=1, n_queries=600)
    rec.mark_start(T0)
    for q in range(600):
        rec.record_issue(q, T0 + q * 1_000_000, T0 + q * 1_000_000 + 50)
        rec.record_sample_complete(rec.slot(q, 0), T0 + q * 1_000_000 + 50, T0 + q * 1_000_000 + 2_000_000)
    res = rec.finish(T0 + 601_000_000)
    s = summarize(st, res)
    text = summary_text(st, INFO, s, warnings=0, errors=0)
    assert (
        "\nScheduled samples per second : 1000.00\nResult is : VALID\n  Performance constraints satisfied : Yes\n"
        in text
    )
    assert "\nCompleted samples per second    : 996.67\n\nMin latency (ns)                : 2000000\n" in text
    assert "Early Stopping Result:\n * Run successful.\n" in text and "accuracy_sample_count" not in text
    keys = [_raw_key(ln) for ln in detail_lines(st, INFO, performance=res, summary=s)]
    assert "num_errors" not in keys and "requested_sample_concatenate_permutation" not in keys
    assert keys.index("result_perf_constraints_met") == keys.index("result_validity") + 1
    assert keys.index("result_overlatency_query_count") == keys.index("result_query_count") + 1
