"""InferenceCore with real ONNX Runtime sessions: loading, validation, batching, statistics, draining."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from edgeperf.benchmarks.tiny.model import write_delay_model
from edgeperf.server.core import CoreState, InferenceCore, ModelInfo
from edgeperf.server.errors import InvalidInput, ModelConfigError, ModelNotFound, RuntimeFailed, ShuttingDown
from edgeperf.server.model_config import parse_model_config
from edgeperf.server.types import InferRequest, ServerTimings
from edgeperf.server.validation import warmup_batch_sizes
from tests.server.core_support import write_reshape_model, write_tiny


def x(batch: int = 1, value: float = 1.0, features: int = 16, dtype: Any = np.float32) -> np.ndarray:
    return np.full((batch, features), value, dtype=dtype)


def req(model: str = "tiny", version: str = "", **inputs: Any) -> InferRequest:
    return InferRequest(model_name=model, model_version=version, inputs=inputs or {"INPUT0": x()})


class Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bool, str]] = []
        self.batches: list[int] = []

    def on_request_done(
        self, model: str, version: str, *, success: bool, reason: str, timings: ServerTimings, request_ns: int
    ) -> None:
        durations = (*dataclasses.astuple(timings), request_ns)
        assert all(v >= 0 for v in durations)
        self.requests.append((model, version, success, reason))

    def on_batch(self, model: str, version: str, batch_size: int) -> None:
        self.batches.append(batch_size)


async def test_serves_the_tiny_model_like_onnxruntime_in_process(tmp_path: Path) -> None:
    model_dir = write_tiny(tmp_path)
    session = ort.InferenceSession(str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    inputs = np.random.default_rng(1).standard_normal((3, 16)).astype(np.float32)
    (expected,) = session.run(["OUTPUT0"], {"INPUT0": inputs})
    async with InferenceCore(tmp_path) as core:
        assert core.live and core.ready and core.state is CoreState.OPENED
        response = await core.infer(
            InferRequest(
                model_name="tiny", id="r1", inputs={"INPUT0": inputs}, requested_outputs=("OUTPUT0",)
            )
        )
    assert core.state.value == "CLOSED" and not core.live
    assert (response.model_name, response.model_version, response.id) == ("tiny", "1", "r1")
    np.testing.assert_array_equal(response.outputs["OUTPUT0"], expected)
    assert response.timings.queue_ns >= 0 and response.timings.compute_infer_ns > 0


async def test_models_versions_and_unknown_names(tmp_path: Path) -> None:
    model_dir = write_tiny(tmp_path, "tiny", versions=(1, 2, 3))
    (model_dir / "config.pbtxt").write_text(
        (model_dir / "config.pbtxt").read_text() + "version_policy { all { } }"
    )
    write_tiny(tmp_path, "other", max_batch_size=0)
    async with InferenceCore(tmp_path, warmup=False) as core:
        assert core.models() == [
            ModelInfo(name="other", versions=("1",), state="READY"),
            ModelInfo(name="tiny", versions=("1", "2", "3"), state="READY"),
        ]
        assert core.model("tiny").version == "3"
        assert core.model("tiny", "2").versions == ("1", "2", "3")
        assert (await core.infer(req(version="2"))).model_version == "2"
        with pytest.raises(ModelNotFound, match="Request for unknown model: 'nope' is not found"):
            await core.infer(req("nope"))
        with pytest.raises(ModelNotFound, match="'tiny' version 7 is not found"):
            core.model("tiny", "7")
        with pytest.raises(ModelNotFound):
            core.statistics("nope")
        assert [(s.name, s.version) for s in core.statistics()] == [
            ("other", "1"),
            ("tiny", "1"),
            ("tiny", "2"),
            ("tiny", "3"),
        ]
        assert [s.version for s in core.statistics("tiny")] == ["1", "2", "3"]
        assert core.statistics("tiny", "2")[0].inference_count == 1
    assert core.models()[0].state == "UNAVAILABLE"


INVALID: list[tuple[dict[str, Any], tuple[str, ...], str]] = [
    ({"INPUT1": x()}, (), "unexpected inference input 'INPUT1' for model 'tiny'; expected 'INPUT0'"),
    ({}, (), "expected 1 inputs but got 0 inputs for model 'tiny'; missing 'INPUT0'"),
    ({"INPUT0": x(dtype=np.float64)}, (), "input 'INPUT0' of model 'tiny' has datatype FP64, expected FP32"),
    ({"INPUT0": np.ones(16, np.float32)}, (), "has shape [16], expected [-1, 16]"),
    ({"INPUT0": x(features=15)}, (), "has shape [1, 15], expected [-1, 16]"),
    ({"INPUT0": x(batch=9)}, (), "has batch size 9; it must be between 1 and max_batch_size 8"),
    ({"INPUT0": x(batch=0)}, (), "has batch size 0"),
    ({"INPUT0": [1.0] * 16}, (), "is a list, not an array"),
    ({"INPUT0": x()}, ("OUTPUT9",), "unexpected inference output 'OUTPUT9' for model 'tiny'"),
]


async def test_bad_requests_get_clear_invalid_input_and_the_next_good_one_works(tmp_path: Path) -> None:
    write_tiny(tmp_path, max_batch_size=8)
    async with InferenceCore(tmp_path, warmup=False) as core:
        for inputs, outputs, message in INVALID:
            bad = InferRequest(model_name="tiny", inputs=inputs, requested_outputs=outputs)
            with pytest.raises(InvalidInput) as info:
                await core.infer(bad)
            assert message in str(info.value)
            good = await core.infer(req())
            np.testing.assert_array_equal(good.outputs["OUTPUT0"], x(value=3.0))
        stats = core.statistics("tiny")[0].inference_stats
    assert stats.fail.count == len(INVALID)
    assert stats.success.count == len(INVALID)


async def test_concurrent_requests_are_batched_and_statistics_account_for_each(tmp_path: Path) -> None:
    write_tiny(tmp_path, max_batch_size=64, max_queue_delay_us=20_000)
    recorder = Recorder()
    async with InferenceCore(tmp_path, warmup=False, observer=recorder) as core:
        results = await asyncio.gather(*(core.infer(req(INPUT0=x(value=float(i)))) for i in range(40)))
        await core.infer(req(INPUT0=x(batch=2)))
        with pytest.raises(InvalidInput):
            await core.infer(req(INPUT0=x(batch=100)))
        (stats,) = core.statistics("tiny", "1")
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result.outputs["OUTPUT0"], x(value=2.0 * i + 1))
    assert max(b.batch_size for b in stats.batch_stats) > 1
    inference = stats.inference_stats
    assert inference.success.count == 41
    assert inference.fail.count == 1
    assert inference.queue.count == inference.compute_input.count == inference.compute_infer.count == 41
    assert inference.compute_output.count == 41
    assert stats.inference_count == 42 == sum(b.batch_size * b.compute_infer.count for b in stats.batch_stats)
    assert stats.execution_count == sum(b.compute_infer.count for b in stats.batch_stats)
    # Each request in a batch is charged the batch's full infer time, so requests sum to more than executions.
    assert inference.compute_infer.ns > sum(b.compute_infer.ns for b in stats.batch_stats)
    assert abs(stats.last_inference_ms - time.time_ns() // 1_000_000) < 60_000
    assert recorder.batches and sum(recorder.batches) == 42
    assert recorder.requests.count(("tiny", "1", True, "")) == 41
    assert recorder.requests.count(("tiny", "1", False, "OTHER")) == 1


async def test_max_queue_delay_bounds_a_lone_request_s_wait(tmp_path: Path) -> None:
    write_tiny(tmp_path, max_batch_size=8, max_queue_delay_us=30_000)
    async with InferenceCore(tmp_path, warmup=False) as core:
        started = time.monotonic_ns()
        response = await core.infer(req())
        elapsed = time.monotonic_ns() - started
    assert 30_000_000 <= response.timings.queue_ns <= elapsed
    assert elapsed < 30_000_000 + 500_000_000  # generous: a busy 2-core CI machine


async def test_a_runtime_failure_is_internal_for_that_batch_only(tmp_path: Path) -> None:
    write_reshape_model(tmp_path)
    async with InferenceCore(tmp_path, warmup=False) as core:
        bad = InferRequest(model_name="fragile", inputs={"INPUT0": np.ones((1, 3), np.float32)})
        with pytest.raises(RuntimeFailed) as info:
            await core.infer(bad)
        assert info.value.grpc_code.name == "INTERNAL"
        assert "Reshape" in str(info.value) or "reshape" in str(info.value).lower()
        good = await core.infer(
            InferRequest(model_name="fragile", inputs={"INPUT0": np.ones((2, 4), np.float32)})
        )
        assert good.outputs["OUTPUT0"].shape == (2, 4)
        stats = core.statistics("fragile")[0].inference_stats
    assert (stats.fail.count, stats.success.count) == (1, 1)


async def test_reshape_gives_clients_the_configured_dims(tmp_path: Path) -> None:
    write_tiny(tmp_path, max_batch_size=4)
    config = tmp_path / "tiny" / "config.pbtxt"
    text = config.read_text().replace("dims: [ 16 ] }", "dims: [ 4, 4 ] reshape: { shape: [ 16 ] } }")
    config.write_text(text)
    async with InferenceCore(tmp_path) as core:
        response = await core.infer(req(INPUT0=np.ones((2, 4, 4), np.float32)))
    assert response.outputs["OUTPUT0"].shape == (2, 4, 4)
    np.testing.assert_array_equal(response.outputs["OUTPUT0"], np.full((2, 4, 4), 3.0, np.float32))


async def test_a_model_without_batching(tmp_path: Path) -> None:
    model_dir = write_tiny(tmp_path)
    (model_dir / "config.pbtxt").write_text(
        'input { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1, 16 ] }\n'
        'output { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1, 16 ] }\n'
    )
    async with InferenceCore(tmp_path) as core:
        responses = await asyncio.gather(*(core.infer(req(INPUT0=x(batch=3))) for _ in range(3)))
        (stats,) = core.statistics()
    assert all(r.outputs["OUTPUT0"].shape == (3, 16) for r in responses)
    assert [(b.batch_size, b.compute_infer.count) for b in stats.batch_stats] == [(1, 3)]
    assert stats.inference_count == 3


async def test_stop_accepting_then_drain_lets_in_flight_requests_finish(tmp_path: Path) -> None:
    write_delay_model(tmp_path / "slow", service_time_us=200_000, max_batch_size=4)
    async with InferenceCore(tmp_path, warmup=False) as core:
        in_flight = asyncio.create_task(core.infer(req("slow")))
        await asyncio.sleep(0.05)
        core.stop_accepting()
        assert core.live and not core.ready
        with pytest.raises(ShuttingDown):
            await core.infer(req("slow"))
        assert await core.drain(5.0)
        assert in_flight.done()
        np.testing.assert_array_equal((await in_flight).outputs["OUTPUT0"], x(value=3.0))


async def test_close_after_a_short_grace_fails_what_is_still_queued(tmp_path: Path) -> None:
    write_delay_model(tmp_path / "slow", service_time_us=300_000, max_batch_size=1)
    core = InferenceCore(tmp_path, warmup=False)
    await core.__aenter__()
    running = asyncio.create_task(core.infer(req("slow")))
    queued = asyncio.create_task(core.infer(req("slow")))
    await asyncio.sleep(0.05)
    await core.close(grace_s=0.01)
    assert (await running).outputs["OUTPUT0"].shape == (1, 16)
    with pytest.raises(ShuttingDown):
        await queued
    await core.close()
    assert core.state is CoreState.CLOSED


async def test_a_bad_repository_fails_on_enter(tmp_path: Path) -> None:
    write_tiny(tmp_path, "good")
    bad = write_tiny(tmp_path, "bad")
    text = (
        (bad / "config.pbtxt")
        .read_text()
        .replace("TYPE_FP32 dims: [ 16 ] } ]\noutput", "TYPE_INT8 dims: [ 16 ] } ]\noutput")
    )
    (bad / "config.pbtxt").write_text(text)
    core = InferenceCore(tmp_path)
    with pytest.raises(ModelConfigError) as info:
        await core.__aenter__()
    assert info.value.model == "bad"
    assert info.value.field == "input[INPUT0].data_type"
    assert core.state is CoreState.CLOSED
    with pytest.raises(RuntimeError, match="cannot be opened in state CLOSED"):
        await core.__aenter__()


def test_warmup_sizes_cover_powers_of_two_preferred_and_max(tmp_path: Path) -> None:
    text = """
        max_batch_size: 24
        input { name: "INPUT0" data_type: TYPE_FP32 dims: [16] }
        output { name: "OUTPUT0" data_type: TYPE_FP32 dims: [16] }
        dynamic_batching { preferred_batch_size: [ 6, 12 ] }
    """
    config = parse_model_config(text, path=tmp_path / "m" / "config.pbtxt", model_name="m")
    assert warmup_batch_sizes(config) == (1, 2, 4, 6, 8, 12, 16, 24)


async def test_queue_depth_is_visible_while_requests_wait(tmp_path: Path) -> None:
    write_delay_model(tmp_path / "slow", service_time_us=100_000, max_batch_size=1)
    async with InferenceCore(tmp_path, warmup=False) as core:
        tasks = [asyncio.create_task(core.infer(req("slow"))) for _ in range(3)]
        await asyncio.sleep(0.03)
        assert core.queue_depth("slow") == 2
        await asyncio.gather(*tasks)
        assert core.queue_depth("slow", "1") == 0
