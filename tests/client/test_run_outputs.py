"""`run_benchmark` asks the server only for the outputs the benchmark names, and logs only those."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from edgeperf.benchmarks import registry
from edgeperf.benchmarks.base import AccuracyReport, BenchmarkSpec, QualityTarget
from edgeperf.client.errors import RunSetupError
from edgeperf.client.plan.settings import Scenario, TestMode, TestSettings
from edgeperf.client.run import RunOptions, run_benchmark
from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos.kserve import TensorSpec
from tests.client.kserve_fake import FakeKServe, serve_fake

_N = 6


class TwoOutputs(FakeKServe):
    """INPUT0 FP32 [-1, 4] -> LABEL INT64 [-1] (sum of the inputs) and SCORES FP32 [-1, 100]."""

    outputs = (("LABEL", "INT64", [-1]), ("SCORES", "FP32", [-1, 100]))
    max_batch_size = 4

    def __init__(self) -> None:
        self.requested: list[list[str]] = []

    async def infer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        self.requested.append([o.name for o in request.outputs])
        batch = int(request.inputs[0].shape[0])
        x = np.frombuffer(request.raw_input_contents[0], np.float32).reshape(batch, 4)
        tensors = {
            "LABEL": ("INT64", [batch], x.sum(axis=1).astype("<i8").tobytes()),
            "SCORES": ("FP32", [batch, 100], np.zeros((batch, 100), np.float32).tobytes()),
        }
        names = [o.name for o in request.outputs] or list(tensors)
        out = pb.ModelInferResponse(model_name=request.model_name, id=request.id)
        for name in names:
            datatype, shape, raw = tensors[name]
            out.outputs.append(
                pb.ModelInferResponse.InferOutputTensor(name=name, datatype=datatype, shape=shape)
            )
            out.raw_output_contents.append(raw)
        return out


@pytest.fixture
async def server() -> AsyncIterator[tuple[TwoOutputs, str]]:
    svc = TwoOutputs()
    async with serve_fake(svc) as address:
        yield svc, address


class Samples:
    def __len__(self) -> int:
        return _N

    def sample(self, index: int) -> Mapping[str, npt.NDArray[Any]]:
        return {"INPUT0": np.full(4, index, np.float32)}


class LabelBenchmark:
    """A benchmark whose accuracy reads LABEL alone (8 bytes a response)."""

    def __init__(self, response_outputs: tuple[str, ...]) -> None:
        self.spec = BenchmarkSpec(
            name="labels",
            mlperf_model="resnet50",
            inputs=(TensorSpec(name="INPUT0", datatype="FP32", shape=(4,)),),
            outputs=(
                TensorSpec(name="LABEL", datatype="INT64", shape=()),
                TensorSpec(name="SCORES", datatype="FP32", shape=(100,)),
            ),
            qsl_size=_N,
            dataset_size=_N,
            quality=QualityTarget(metric="top1", reference_value=100.0),
            edge_scenarios=("Offline",),
            response_outputs=response_outputs,
        )
        self.scored: list[tuple[int, bytes]] = []

    def write_model(self, model_dir: Path, *, size: Any = "full", from_file: Path | None = None) -> None:
        raise NotImplementedError

    def open_dataset(self, source: str, *, size: Any = "full") -> Samples:
        return Samples()

    def log_payload(self, raw: bytes, qsl_idx: int, *, size: Any = "full") -> bytes:
        return raw

    def accuracy(
        self, dataset: Any, results: Sequence[tuple[int, bytes]], *, size: Any = "full"
    ) -> AccuracyReport:
        self.scored = list(results)
        good = sum(int(np.frombuffer(data, "<i8")[0]) == 4 * idx for idx, data in results if len(data) == 8)
        value = 100.0 * good / _N
        return AccuracyReport(metric="top1", value=value, target=99.0, passed=value >= 99.0, text="ok\n")


def _options(address: str, tmp_path: Path) -> RunOptions:
    return RunOptions(
        server=address,
        model="labels",
        scenario=Scenario.OFFLINE,
        benchmark="labels",
        out_dir=tmp_path,
        batch_size=4,
        test_settings=TestSettings(scenario=Scenario.OFFLINE, mode=TestMode.ACCURACY_ONLY),
    )


async def test_only_the_benchmark_outputs_are_requested_and_logged(
    server: tuple[TwoOutputs, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc, address = server
    bench = LabelBenchmark(("LABEL",))
    monkeypatch.setattr(registry, "get", lambda name: bench)
    outcome = await run_benchmark(_options(address, tmp_path))
    assert outcome.validity == "VALID", outcome.summary_text
    assert svc.requested and all(names == ["LABEL"] for names in svc.requested)
    entries = json.loads((tmp_path / "mlperf_log_accuracy.json").read_text())
    assert sorted(e["qsl_idx"] for e in entries) == list(range(_N))
    assert all(len(bytes.fromhex(e["data"])) == 8 for e in entries)
    assert outcome.accuracy is not None and outcome.accuracy.value == 100.0


async def test_no_named_outputs_requests_every_output(
    server: tuple[TwoOutputs, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc, address = server
    monkeypatch.setattr(registry, "get", lambda name: LabelBenchmark(()))
    await run_benchmark(_options(address, tmp_path))
    assert svc.requested and all(names == [] for names in svc.requested)
    entries = json.loads((tmp_path / "mlperf_log_accuracy.json").read_text())
    assert all(len(bytes.fromhex(e["data"])) == 8 + 400 for e in entries)


async def test_an_output_the_model_lacks_is_refused_before_the_run(
    server: tuple[TwoOutputs, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc, address = server
    monkeypatch.setattr(registry, "get", lambda name: LabelBenchmark(("ArgMax:0",)))
    with pytest.raises(RunSetupError, match="ArgMax:0"):
        await run_benchmark(_options(address, tmp_path))
    assert svc.requested == []
