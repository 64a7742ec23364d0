"""ResNet50 accuracy through a real server on loopback: accuracy.txt and the gate, FP32 and int8 stand-ins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeperf.benchmarks.accuracy_log import read_accuracy_log
from edgeperf.benchmarks.resnet50 import BENCHMARK
from edgeperf.benchmarks.resnet50.standin import SyntheticImagenet
from edgeperf.client.plan.settings import Scenario
from tests.benchmarks._e2e import accuracy_run
from tests.benchmarks.reference_scripts import imagenet_top1
from tests.e2e._server import ServerProcess, serve

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def resnet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    repo = tmp_path_factory.mktemp("repo")
    BENCHMARK.write_model(repo / "resnet50", size="small")
    BENCHMARK.write_model(repo / "resnet50_int8", size="small", precision="int8")
    with serve(repo) as server:
        yield server


async def _accuracy_run(server: ServerProcess, model: str, out: Path) -> str:
    outcome, text = await accuracy_run(
        server.address,
        benchmark="resnet50",
        model=model,
        scenario=Scenario.OFFLINE,
        dataset="synthetic:48",
        out=out,
        batch_size=8,
    )
    assert outcome.accuracy is not None
    assert text == outcome.accuracy.text
    # SPEC.response_outputs: only ArgMax:0 is requested, not the 1001-float softmax; the log holds what the
    # reference SUT logs, float32(ArgMax - 1)
    log = out / "mlperf_log_accuracy.json"
    logged = read_accuracy_log(log)
    assert len(logged) == 48 and {len(data) for _, data in logged} == {4}
    # accuracy-imagenet.py's own reading of the log gives the same count as edgeperf's accuracy.txt
    dataset = BENCHMARK.open_dataset("synthetic:48", size="small")
    assert isinstance(dataset, SyntheticImagenet)
    good, total = imagenet_top1(log, dataset.labels(range(48)).tolist())
    assert text.splitlines()[0] == f"accuracy={100.0 * good / total:.3f}%, good={good}, total={total}"
    return text


async def test_fp32_standin_passes_its_own_gate(resnet_server: ServerProcess, tmp_path: Path) -> None:
    text = await _accuracy_run(resnet_server, "resnet50", tmp_path / "fp32")
    lines = text.splitlines()
    assert lines[0] == "accuracy=100.000%, good=48, total=48"
    assert lines[-1] == "PASS: top1=100.000% target=99.000% (99% of FP32 reference 100.000%)"


async def test_int8_standin_is_gated_on_what_it_scores(resnet_server: ServerProcess, tmp_path: Path) -> None:
    text = await _accuracy_run(resnet_server, "resnet50_int8", tmp_path / "int8")
    first, last = text.splitlines()[0], text.splitlines()[-1]
    value = float(first.split("=")[1].split("%")[0])
    good, total = (int(part.split("=")[1]) for part in first.split(", ")[1:])
    assert total == 48 and value == pytest.approx(100.0 * good / total, abs=5e-4)
    assert last.startswith("PASS" if value >= 99.0 else "FAIL")
