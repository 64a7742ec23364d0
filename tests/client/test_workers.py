"""`--workers N`: a Server or Offline pass issued from N processes gives the logs of a one-process run."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import numpy as np
import pytest

from edgeperf.client.errors import RunSetupError
from edgeperf.client.issue.fake_sut import FakeSut, FakeSutConfig
from edgeperf.client.issue.sut import SystemUnderTest
from edgeperf.client.plan.qsl import QuerySampleLibrary
from edgeperf.client.plan.settings import Scenario, TestSettings
from edgeperf.client.report.latency_dump import read_latencies
from edgeperf.client.run import run_with_sut
from tests.client.test_run import ListQsl, settings

LATENCY_NS = 200_000
DETERMINISTIC_KEYS = (
    "generated_query_count",
    "generated_samples_per_query",
    "loaded_qsl_set",
    "result_validity",
    "early_stopping_met",
    "result_early_stopping",
    "effective_min_query_count",
    "effective_sample_index_rng_seed",
    "edgeperf_samples_failed",
    "qsl_reported_total_count",
)


@asynccontextmanager
async def _fake(latency_ns: int) -> AsyncIterator[tuple[SystemUnderTest, QuerySampleLibrary]]:
    yield FakeSut(FakeSutConfig(latency_ns=latency_ns)), ListQsl()


class FakeFactory:
    """Opens a FakeSut and a ListQsl in each worker process (module level, so it pickles for spawn)."""

    def __init__(self, latency_ns: int = LATENCY_NS) -> None:
        self.latency_ns = latency_ns

    def __call__(self) -> AbstractAsyncContextManager[tuple[SystemUnderTest, QuerySampleLibrary]]:
        return _fake(self.latency_ns)


def _detail(path: Path) -> dict[str, list[object]]:
    out: dict[str, list[object]] = {}
    for line in (path / "mlperf_log_detail.txt").read_text().splitlines():
        record = json.loads(line.removeprefix(":::MLLOG "))
        out.setdefault(record["key"], []).append(record["value"])
    return out


async def _run(s: TestSettings, out: Path, workers: int) -> dict[str, object]:
    # NOTE: the fake serves Offline's samples all at once; the pass must outlast min_duration (100 ms).
    latency_ns = 120_000_000 if s.scenario is Scenario.OFFLINE else LATENCY_NS
    outcome = await run_with_sut(
        FakeSut(FakeSutConfig(latency_ns=latency_ns)),
        ListQsl(),
        s,
        out,
        drain_timeout_s=5,
        workers=workers,
        worker_factory=FakeFactory(latency_ns) if workers > 1 else None,
    )
    assert outcome.validity == "VALID", outcome.summary_text
    assert outcome.client is not None and len(outcome.client.workers) == workers
    doc: dict[str, object] = outcome.result_json
    return doc


@pytest.mark.parametrize("scenario", [Scenario.SERVER, Scenario.OFFLINE])
async def test_workers_give_the_logs_of_one_process(scenario: Scenario, tmp_path: Path) -> None:
    s = settings(
        scenario,
        server_target_qps=1500.0,
        server_target_latency_ns=30_000_000_000,  # NOTE: a loaded machine must not change the verdict
        min_query_count=600 if scenario is Scenario.SERVER else 1,
        offline_expected_qps=2000.0,
        accuracy_log_probability=0.25,
        accuracy_log_rng_seed=7,
    )
    one = await _run(s, tmp_path / "one", 1)
    three = await _run(s, tmp_path / "three", 3)
    for key in ("queries_issued", "sample_count", "overlatency_query_count", "scheduled_samples_per_sec"):
        assert one["metrics"][key] == three["metrics"][key], key  # type: ignore[index]
    es_one, es_three = one["metrics"]["early_stopping"], three["metrics"]["early_stopping"]  # type: ignore[index]
    if es_one is not None:
        assert es_one["result"] == es_three["result"]
    d1, d3 = _detail(tmp_path / "one"), _detail(tmp_path / "three")
    for key in DETERMINISTIC_KEYS:
        assert d1.get(key) == d3.get(key), key
    # NOTE: the same samples, in the same order, logged with the same sequence ids and data.
    acc1 = json.loads((tmp_path / "one" / "mlperf_log_accuracy.json").read_text())
    acc3 = json.loads((tmp_path / "three" / "mlperf_log_accuracy.json").read_text())
    assert acc1 == acc3 and len(acc1) > 0
    lat1, lat3 = read_latencies(tmp_path / "one"), read_latencies(tmp_path / "three")
    for column in ("scheduled_ns", "sample_query", "ok"):
        assert np.array_equal(lat1[column], lat3[column]), column
    workers = three["run"]["client"]["workers"]  # type: ignore[index]
    assert [w["worker"] for w in workers] == [0, 1, 2]
    assert sum(w["queries"] for w in workers) == (
        one["metrics"]["queries_issued"] if scenario is Scenario.SERVER else 3
    )  # type: ignore[index]
    assert "edgeperf_worker_2" in d3


async def _two_workers(
    tmp_path: Path,
    scenario: Scenario,
    factory: Callable[[], AbstractAsyncContextManager[tuple[SystemUnderTest, QuerySampleLibrary]]] | None,
) -> None:
    """A fake run of `scenario` split over two workers that `factory` makes (these runs are refused)."""
    await run_with_sut(FakeSut(), ListQsl(), settings(scenario), tmp_path, workers=2, worker_factory=factory)


async def test_workers_are_refused_where_one_process_must_issue(tmp_path: Path) -> None:
    with pytest.raises(RunSetupError, match="only Server and Offline"):
        await _two_workers(tmp_path, Scenario.SINGLE_STREAM, FakeFactory())
    with pytest.raises(RunSetupError, match="worker_factory"):
        await _two_workers(tmp_path, Scenario.SERVER, None)


def test_cli_workers_against_a_grpc_server(tmp_path: Path) -> None:
    """`edgeperf run --workers 2`: each spawned worker reopens the gRPC SUT and QSL from the options."""
    from edgeperf.client.cli import main
    from tests.bench.echo_kserve import MODEL, EchoServer

    conf = tmp_path / "user.conf"
    conf.write_text(
        "*.Server.target_qps = 400\n*.Server.min_duration = 1000\n*.Server.min_query_count = 400\n"
        "*.Server.target_latency = 500\n"
    )
    echo = EchoServer()
    try:
        argv = ["run", "--server", echo.address, "--model", MODEL, "--scenario", "Server"]
        argv += ["--dataset", "synthetic:16", "--user-conf", str(conf), "--workers", "2"]
        code = main([*argv, "--out", str(tmp_path / "out"), "--no-progress"])
    finally:
        echo.close()
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    assert doc["errors"]["performance"]["failed"] == 0
    issued = doc["metrics"]["queries_issued"]
    assert issued >= 400
    assert [w["queries"] for w in doc["run"]["client"]["workers"]] == [(issued + 1) // 2, issued // 2]
    assert code in (0, 3)  # NOTE: VALID on a quiet machine; a loaded one may miss the latency bound


class BrokenFactory:
    """A worker whose SUT cannot be opened (say, the server went away between the check and the run)."""

    def __call__(self) -> AbstractAsyncContextManager[tuple[SystemUnderTest, QuerySampleLibrary]]:
        raise ConnectionError("no server at 127.0.0.1:9")


async def test_a_worker_that_cannot_start_is_named(tmp_path: Path) -> None:
    with pytest.raises(RunSetupError, match=r"worker \d failed: ConnectionError: no server"):
        await _two_workers(tmp_path, Scenario.SERVER, BrokenFactory())
