"""An `inline_execution` model that finds its instance idle answers a request at once (DynamicBatcher.run_now):
the same answer, statistics and metrics events as the batched path, and concurrent arrivals still batch."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeperf.server.core import InferenceCore
from edgeperf.server.errors import RuntimeFailed
from edgeperf.server.stats import ModelStatistics
from edgeperf.server.types import InferRequest, InferResponse, ServerTimings
from tests.server.core_support import GatedRuntime, write_reshape_model, write_tiny
from tests.server.test_batching import INLINE, rig

INLINE_PARAMETERS = {"inline_execution": "1"}


class Events:
    """A StatsObserver that keeps what it is told, without the durations (they differ run to run)."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    def on_request_done(
        self, model: str, version: str, *, success: bool, reason: str, timings: ServerTimings, request_ns: int
    ) -> None:
        assert min(timings.queue_ns, timings.compute_infer_ns, request_ns) >= 0
        self.seen.append(("request", version, success, reason))

    def on_batch(self, model: str, version: str, batch_size: int) -> None:
        self.seen.append(("batch", version, batch_size))


def request(model: str, value: float, *, batch: int = 1, **extra: Any) -> InferRequest:
    inputs = {"INPUT0": np.full((batch, 16), value, np.float32)}
    return InferRequest(model_name=model, id=f"r{value}", inputs=inputs, **extra)


def counts(stats: ModelStatistics) -> tuple[Any, ...]:
    """Every count of the statistics (durations differ between two runs of the same work)."""
    s = stats.inference_stats
    per_batch = tuple(
        (b.batch_size, b.compute_infer.count, b.compute_output.count) for b in stats.batch_stats
    )
    return (
        stats.inference_count,
        stats.execution_count,
        s.success.count,
        s.fail.count,
        s.queue.count,
        s.compute_input.count,
        s.compute_infer.count,
        s.compute_output.count,
        per_batch,
    )


def never_queue(*args: object, **kwargs: object) -> object:
    raise AssertionError("a request to an idle inline model was queued")


async def test_the_answer_at_once_is_the_batched_path_s_answer_with_the_same_statistics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tiny(tmp_path, "batched")
    write_tiny(tmp_path, "inline", parameters=INLINE_PARAMETERS)
    events = Events()
    answers: dict[str, list[InferResponse]] = {"batched": [], "inline": []}
    async with InferenceCore(tmp_path, warmup=False, observer=events) as core:
        monkeypatch.setattr(core.model("inline").batcher, "submit", never_queue)
        for model in answers:
            for value, batch, wanted in ((1.0, 1, ("OUTPUT0",)), (2.5, 3, ()), (-4.0, 1, ())):
                response = await core.infer(request(model, value, batch=batch, requested_outputs=wanted))
                answers[model].append(response)
                await asyncio.sleep(0)  # NOTE: separate arrivals: the loop turns between them
        batched, inline = core.statistics("batched")[0], core.statistics("inline")[0]
    for a, b in zip(answers["batched"], answers["inline"], strict=True):
        assert (a.model_version, a.id, list(a.outputs)) == (b.model_version, b.id, list(b.outputs))
        np.testing.assert_array_equal(a.outputs["OUTPUT0"], b.outputs["OUTPUT0"])
        assert a.outputs["OUTPUT0"].dtype == b.outputs["OUTPUT0"].dtype
        assert b.timings.queue_ns >= 0 and b.timings.compute_infer_ns > 0
    assert counts(batched) == counts(inline) == (5, 3, 3, 0, 3, 3, 3, 3, ((1, 2, 2), (3, 1, 1)))
    assert inline.inference_stats.compute_infer.ns > 0 and inline.last_inference_ms > 0
    half = len(events.seen) // 2
    assert events.seen[:half] == events.seen[half:]
    assert events.seen[:2] == [("batch", "1", 1), ("request", "1", True, "")]


async def test_infer_nowait_answers_before_it_returns_when_the_model_answers_at_once(tmp_path: Path) -> None:
    write_tiny(tmp_path, "batched")
    write_tiny(tmp_path, "inline", parameters=INLINE_PARAMETERS)
    done: list[tuple[str, InferResponse | None, BaseException | None]] = []
    async with InferenceCore(tmp_path, warmup=False) as core:
        handle = core.infer_nowait(request("inline", 1.0), lambda r, e: done.append(("inline", r, e)))
        assert handle is None and len(done) == 1
        handle = core.infer_nowait(request("batched", 1.0), lambda r, e: done.append(("batched", r, e)))
        assert handle is not None and len(done) == 1
        await asyncio.wait_for(handle, 10)
        await asyncio.sleep(0)
    assert [(name, error) for name, _, error in done] == [("inline", None), ("batched", None)]
    outputs = [response.outputs["OUTPUT0"] for _, response, _ in done if response is not None]
    np.testing.assert_array_equal(outputs[0], outputs[1])


async def test_a_runtime_failure_of_an_answer_at_once_fails_that_request_only(tmp_path: Path) -> None:
    write_reshape_model(tmp_path)
    with (tmp_path / "fragile" / "config.pbtxt").open("a") as config:
        config.write(
            'dynamic_batching { }\nparameters { key: "inline_execution" value: { string_value: "1" } }\n'
        )
    failures: list[BaseException | None] = []
    async with InferenceCore(tmp_path, warmup=False) as core:
        bad = InferRequest(model_name="fragile", inputs={"INPUT0": np.ones((1, 3), np.float32)})
        with pytest.raises(RuntimeFailed, match=r"(?i)reshape"):
            await core.infer(bad)
        await asyncio.sleep(0)
        assert core.infer_nowait(bad, lambda r, e: failures.append(e)) is None
        await asyncio.sleep(0)
        good = await core.infer(
            InferRequest(model_name="fragile", inputs={"INPUT0": np.ones((2, 4), np.float32)})
        )
        stats = core.statistics("fragile")[0].inference_stats
    assert good.outputs["OUTPUT0"].shape == (2, 4)
    assert len(failures) == 1 and isinstance(failures[0], RuntimeFailed)
    assert (stats.fail.count, stats.success.count) == (2, 1)
    assert core.budget.used_bytes == 0


async def test_arrivals_in_the_loop_iteration_of_an_answer_at_once_batch_behind_it(tmp_path: Path) -> None:
    write_tiny(tmp_path, "inline", parameters=INLINE_PARAMETERS)
    async with InferenceCore(tmp_path, warmup=False) as core:
        results = await asyncio.gather(*(core.infer(request("inline", float(i))) for i in range(5)))
        (stats,) = core.statistics("inline")
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result.outputs["OUTPUT0"], np.full((1, 16), 2.0 * i + 1, np.float32))
    assert [(b.batch_size, b.compute_infer.count) for b in stats.batch_stats] == [(1, 1), (4, 1)]
    assert stats.inference_stats.success.count == stats.inference_stats.queue.count == 5


async def test_run_now_declines_what_the_queue_must_decide() -> None:
    async with rig(max_batch_size=4, dynamic=INLINE) as r:
        x = {"INPUT0": np.ones((1, 16), np.float32)}
        first = r.batcher.run_now(x, batch=1)
        assert first is not None and first.batch_size == 1
        np.testing.assert_array_equal(first.outputs["OUTPUT0"], np.full((1, 16), 3.0, np.float32))
        assert r.batcher.run_now(x, batch=1) is None  # NOTE: the same loop iteration: it batches
        await asyncio.sleep(0)
        assert r.batcher.run_now(x, batch=1, deadline_ns=time.monotonic_ns() - 1) is None
        queued = r.submit(1.0)
        await asyncio.sleep(0)
        assert r.batcher.queue_depth == 1 and r.batcher.run_now(x, batch=1) is None
        await asyncio.wait_for(queued, 5)
        await asyncio.sleep(0)
        assert r.batcher.run_now(x, batch=1) is not None
    async with rig(max_batch_size=4) as threaded:
        assert threaded.batcher.run_now(x, batch=1) is None
    assert r.batch_sizes() == {1: 3}


async def test_a_failed_answer_at_once_leaves_the_instance_serving() -> None:
    async with rig(max_batch_size=4, dynamic=INLINE, runtime=GatedRuntime(fail_on=-1.0)) as r:
        with pytest.raises(RuntimeFailed, match=r"ValueError: poisoned input -1\.0"):
            r.batcher.run_now({"INPUT0": np.full((1, 16), -1.0, np.float32)}, batch=1)
        (result,) = await asyncio.wait_for(asyncio.gather(r.submit(2.0)), 5)
    np.testing.assert_array_equal(result.outputs["OUTPUT0"], np.full((1, 16), 5.0, np.float32))
    assert r.stats.snapshot().execution_count == 1
