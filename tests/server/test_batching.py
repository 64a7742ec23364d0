"""The dynamic batcher: pull model, delays, preferred sizes, queue policy, shapes and failures."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeperf.server.batching import BatchResult, DynamicBatcher
from edgeperf.server.errors import DeadlineExceeded, Overloaded, QueueTimeout, RuntimeFailed, ShuttingDown
from edgeperf.server.instances import InstancePool
from edgeperf.server.model_config import parse_model_config
from edgeperf.server.stats import StatsRecorder
from tests.server.core_support import FakeClock, GatedRuntime, settle

MS = 1_000_000


@dataclass
class Rig:
    batcher: DynamicBatcher
    runtime: GatedRuntime
    clock: FakeClock
    stats: StatsRecorder

    def submit(
        self, value: float, *, batch: int = 1, features: int = 16, **kw: object
    ) -> asyncio.Task[BatchResult]:
        x = (
            np.full((batch, features), value, np.float32)
            if self.batched
            else np.full((features,), value, np.float32)
        )
        return asyncio.create_task(self.batcher.submit({"INPUT0": x}, batch=batch, **kw))  # type: ignore[arg-type]

    batched: bool = True

    async def running(self) -> None:
        """Wait until the runtime has started a batch (and is held at the gate)."""
        assert await asyncio.to_thread(self.runtime.started.wait, 5)
        self.runtime.started.clear()

    async def hold(self, value: float = 0.0, *, features: int = 16) -> asyncio.Task[BatchResult]:
        """Close the gate and submit one request; return once the runtime runs it and is held there."""
        self.runtime.gate.clear()
        task = self.submit(value, features=features)
        await self.running()
        return task

    def batch_sizes(self) -> dict[int, int]:
        return {b.batch_size: b.compute_infer.count for b in self.stats.snapshot().batch_stats}


@asynccontextmanager
async def rig(
    *,
    max_batch_size: int = 8,
    dynamic: str = "dynamic_batching { }",
    dims: str = "[ 16 ]",
    instances: int = 1,
    runtime: GatedRuntime | None = None,
) -> AsyncIterator[Rig]:
    text = f"""
        max_batch_size: {max_batch_size}
        input {{ name: "INPUT0" data_type: TYPE_FP32 dims: {dims} }}
        output {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: {dims} }}
        {dynamic if max_batch_size else ""}
    """
    config = parse_model_config(text, path=Path("/repo/m/config.pbtxt"), model_name="m")
    runtime = runtime or GatedRuntime()
    pool = await InstancePool.create("m", instances, lambda: runtime)
    clock = FakeClock()
    stats = StatsRecorder("m", "1")
    batcher = DynamicBatcher(config=config, pool=pool, stats=stats, clock=clock)
    batcher.start()
    try:
        yield Rig(batcher, runtime, clock, stats, batched=max_batch_size > 0)
    finally:
        runtime.gate.set()
        await batcher.close(reject_queued=True)
        await pool.close()


async def done(*tasks: asyncio.Task[BatchResult]) -> list[BatchResult]:
    return list(await asyncio.wait_for(asyncio.gather(*tasks), 10))


async def test_requests_queued_while_the_instance_is_busy_form_one_batch() -> None:
    async with rig(
        max_batch_size=4, dynamic="dynamic_batching { max_queue_delay_microseconds: 1000000 }"
    ) as r:
        r.runtime.gate.clear()
        first = r.submit(0.0)
        await settle()
        await r.clock.advance(1000 * MS)  # the lone first request goes when its delay is up
        await r.running()
        rest = [r.submit(float(i)) for i in range(1, 5)]
        await settle()
        assert r.batcher.queue_depth == 4
        r.runtime.gate.set()
        results = await done(first, *rest)
    assert r.runtime.batches == [(1, 16), (4, 16)]
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result.outputs["OUTPUT0"], np.full((1, 16), 2 * i + 1, np.float32))
    assert [res.batch_size for res in results] == [1, 4, 4, 4, 4]
    assert r.batch_sizes() == {1: 1, 4: 1}
    snapshot = r.stats.snapshot()
    assert snapshot.inference_count == 5
    assert snapshot.execution_count == 2


async def test_a_lone_request_waits_exactly_the_max_queue_delay() -> None:
    async with rig(dynamic="dynamic_batching { max_queue_delay_microseconds: 2000 }") as r:
        task = r.submit(1.0)
        await r.clock.advance(2 * MS - 1)
        assert r.runtime.batches == []
        assert not task.done()
        await r.clock.advance(1)
        (result,) = await done(task)
    assert result.timings.queue_ns == 2 * MS
    assert r.runtime.batches == [(1, 16)]


async def test_an_arrival_that_completes_the_max_batch_dispatches_at_once() -> None:
    async with rig(
        max_batch_size=4, dynamic="dynamic_batching { max_queue_delay_microseconds: 1000000 }"
    ) as r:
        tasks = [r.submit(1.0) for _ in range(3)]
        await settle()
        assert r.runtime.batches == []
        tasks.append(r.submit(1.0))
        results = await done(*tasks)
    assert r.runtime.batches == [(4, 16)]
    assert all(res.timings.queue_ns == 0 for res in results)


async def test_the_largest_preferred_size_goes_first() -> None:
    dynamic = "dynamic_batching { preferred_batch_size: [ 2, 4 ] max_queue_delay_microseconds: 1000000 }"
    async with rig(max_batch_size=8, dynamic=dynamic) as r:
        r.runtime.gate.clear()
        first = r.submit(0.0)
        await r.clock.advance(1000 * MS)
        await r.running()
        rest = [r.submit(float(i)) for i in range(5)]
        await settle()
        r.runtime.gate.set()
        await done(first, *rest[:4])
        assert r.runtime.batches == [(1, 16), (4, 16)]
        assert not rest[4].done()  # one left: neither preferred nor max, so it waits out the delay
        await r.clock.advance(1000 * MS)
        await done(rest[4])
    assert r.runtime.batches == [(1, 16), (4, 16), (1, 16)]


async def test_in_flight_batches_never_exceed_the_instances() -> None:
    async with rig(max_batch_size=1, instances=2) as r:
        r.runtime.gate.clear()
        tasks = [r.submit(float(i)) for i in range(3)]
        await settle()
        await asyncio.sleep(0.05)
        assert r.batcher.queue_depth == 1
        r.runtime.gate.set()
        await done(*tasks)
    assert len(r.runtime.batches) == 3


async def test_a_full_queue_rejects_with_triton_s_message() -> None:
    dynamic = "dynamic_batching { default_queue_policy { max_queue_size: 2 } }"
    async with rig(max_batch_size=1, dynamic=dynamic) as r:
        running = await r.hold()
        queued = [r.submit(1.0), r.submit(2.0)]
        await settle()
        with pytest.raises(Overloaded, match=r"Exceeds maximum queue size$"):
            await r.batcher.submit({"INPUT0": np.zeros((1, 16), np.float32)}, batch=1)
        r.runtime.gate.set()
        await done(running, *queued)


async def test_a_request_past_its_queue_timeout_is_rejected() -> None:
    dynamic = "dynamic_batching { default_queue_policy { default_timeout_microseconds: 5000 } }"
    async with rig(max_batch_size=1, dynamic=dynamic) as r:
        running = await r.hold()
        waiting = r.submit(1.0)
        await settle()
        await r.clock.advance(5 * MS)
        with pytest.raises(QueueTimeout, match=r"^Request timeout expired$"):
            await asyncio.wait_for(waiting, 5)
        assert r.batcher.queue_depth == 0
        r.runtime.gate.set()
        await done(running)
        after = await done(r.submit(3.0))
    assert len(r.runtime.batches) == 2
    np.testing.assert_array_equal(after[0].outputs["OUTPUT0"], np.full((1, 16), 7.0, np.float32))


@pytest.mark.parametrize(
    ("policy", "request_us", "expected"),
    [
        ("default_timeout_microseconds: 5000 allow_timeout_override: true", 1000, 1000),
        ("default_timeout_microseconds: 5000 allow_timeout_override: true", 9000, 5000),
        ("default_timeout_microseconds: 5000", 1000, 5000),
        ("allow_timeout_override: true", 1000, 1000),
        ("", 1000, None),
        ("default_timeout_microseconds: 5000 allow_timeout_override: true", None, 5000),
    ],
)
async def test_a_request_timeout_may_only_lower_the_configured_one(
    policy: str, request_us: int | None, expected: int | None
) -> None:
    async with rig(dynamic=f"dynamic_batching {{ default_queue_policy {{ {policy} }} }}") as r:
        assert r.batcher.timeout_us(request_us) == expected


async def test_requests_with_different_shapes_are_never_mixed() -> None:
    async with rig(dims="[ -1 ]") as r:
        first = await r.hold(features=3)
        tasks = [r.submit(float(i), features=f) for i, f in enumerate((5, 3, 5, 3))]
        await settle()
        r.runtime.gate.set()
        results = await done(first, *tasks)
    assert r.runtime.batches == [(1, 3), (2, 5), (2, 3)]
    for i, (res, f) in enumerate(zip(results[1:], (5, 3, 5, 3), strict=True)):
        np.testing.assert_array_equal(res.outputs["OUTPUT0"], np.full((1, f), 2 * i + 1, np.float32))


async def test_a_failing_batch_fails_only_its_requests_and_the_instance_keeps_serving() -> None:
    async with rig(runtime=GatedRuntime(fail_on=-1.0)) as r:
        first = await r.hold()
        poisoned = [r.submit(-1.0), r.submit(5.0)]
        await settle()
        r.runtime.gate.set()
        await done(first)
        for task in poisoned:
            with pytest.raises(RuntimeFailed, match=r"ValueError: poisoned input -1.0"):
                await asyncio.wait_for(task, 5)
        (healthy,) = await done(r.submit(2.0))
    np.testing.assert_array_equal(healthy.outputs["OUTPUT0"], np.full((1, 16), 5.0, np.float32))
    assert r.batch_sizes() == {1: 2}


async def test_cancelled_and_expired_requests_are_dropped_before_running() -> None:
    async with rig(max_batch_size=4) as r:
        first = await r.hold()
        cancelled = r.submit(1.0)
        expired = r.submit(2.0, deadline_ns=time.monotonic_ns() - 1)
        kept = r.submit(3.0)
        await settle()
        cancelled.cancel()
        await settle()
        r.runtime.gate.set()
        await done(first, kept)
        with pytest.raises(DeadlineExceeded):
            await asyncio.wait_for(expired, 5)
    assert r.runtime.batches == [(1, 16), (1, 16)]


async def test_requests_carrying_several_samples_are_split_back() -> None:
    async with rig(max_batch_size=8) as r:
        first = await r.hold()
        two, three = r.submit(1.0, batch=2), r.submit(2.0, batch=3)
        too_many = r.submit(3.0, batch=4)  # 2 + 3 + 4 > 8: waits for the next batch
        await settle()
        r.runtime.gate.set()
        _, a, b, c = await done(first, two, three, too_many)
    assert r.runtime.batches == [(1, 16), (5, 16), (4, 16)]
    np.testing.assert_array_equal(a.outputs["OUTPUT0"], np.full((2, 16), 3.0, np.float32))
    np.testing.assert_array_equal(b.outputs["OUTPUT0"], np.full((3, 16), 5.0, np.float32))
    assert c.batch_size == 4
    assert r.batch_sizes() == {1: 1, 4: 1, 5: 1}


async def test_models_without_batching_run_each_request_alone() -> None:
    async with rig(max_batch_size=0, dims="[ 16 ]") as r:
        r.runtime.gate.clear()
        tasks = [r.submit(float(i)) for i in range(3)]
        await settle()
        r.runtime.gate.set()
        results = await done(*tasks)
    assert r.runtime.batches == [(16,), (16,), (16,)]
    assert r.batch_sizes() == {1: 3}
    np.testing.assert_array_equal(results[2].outputs["OUTPUT0"], np.full((16,), 5.0, np.float32))


async def test_close_rejects_what_is_queued_and_everything_after() -> None:
    async with rig(max_batch_size=1) as r:
        first = await r.hold()
        queued = r.submit(1.0)
        await settle()
        closing = asyncio.create_task(r.batcher.close(reject_queued=True))
        await settle()
        with pytest.raises(ShuttingDown):
            await asyncio.wait_for(queued, 5)
        with pytest.raises(ShuttingDown):
            await r.batcher.submit({"INPUT0": np.zeros((1, 16), np.float32)}, batch=1)
        r.runtime.gate.set()
        await done(first)
        await asyncio.wait_for(closing, 5)


@pytest.mark.parametrize(("preserve", "expected"), [(False, [0, 1, 3, 2, 4]), (True, [0, 1, 2, 3, 4])])
async def test_preserve_ordering_answers_in_request_order(preserve: bool, expected: list[int]) -> None:
    dynamic = f"dynamic_batching {{ preserve_ordering: {str(preserve).lower()} }}"
    async with rig(dims="[ -1 ]", dynamic=dynamic) as r:
        r.runtime.gate.clear()
        answered: list[int] = []
        tasks = [r.submit(0.0, features=3)]
        await r.running()
        # Request 1 (shape 5) heads the queue and takes request 3 with it; 2 and 4 (shape 3) run after.
        tasks += [r.submit(float(i), features=f) for i, f in enumerate((5, 3, 5, 3), start=1)]
        for i, task in enumerate(tasks):
            task.add_done_callback(functools.partial(_note, answered, i))
        await settle()
        r.runtime.gate.set()
        await done(*tasks)
    assert r.runtime.batches == [(1, 3), (2, 5), (2, 3)]
    assert answered == expected


def _note(answered: list[int], index: int, _: object) -> None:
    answered.append(index)


async def test_higher_priority_levels_run_first_fifo_within_a_level() -> None:
    dynamic = "dynamic_batching { priority_levels: 3 default_priority_level: 2 }"
    async with rig(max_batch_size=1, dynamic=dynamic) as r:
        r.runtime.gate.clear()
        tasks = [r.submit(0.0)]
        await r.running()
        # values encode the expected run order: priority 1 first, then default (2), then 3
        for value, priority in ((5.0, 3), (2.0, 0), (3.0, 2), (1.0, 1), (4.0, 9)):
            tasks.append(r.submit(value, priority=priority))
        await settle()
        r.runtime.gate.set()
        await done(*tasks)
    assert r.runtime.first_values == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


class ThreadNotingRuntime(GatedRuntime):
    """GatedRuntime that also notes the thread each batch ran on."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []

    def run(self, inputs: Any, output_names: Any) -> dict[str, Any]:
        self.threads.append(threading.current_thread().name)
        return super().run(inputs, output_names)


INLINE = 'dynamic_batching { }\nparameters { key: "inline_execution" value: { string_value: "1" } }'


async def test_inline_execution_runs_on_the_loop_and_batches_requests_that_arrive_together() -> None:
    runtime = ThreadNotingRuntime()
    async with rig(max_batch_size=4, dynamic=INLINE, runtime=runtime) as r:
        results = await done(*(r.submit(float(i)) for i in range(6)))
        (lone,) = await done(r.submit(9.0))
    assert r.runtime.batches == [(4, 16), (2, 16), (1, 16)]
    assert runtime.threads == [threading.current_thread().name] * 3
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result.outputs["OUTPUT0"], np.full((1, 16), 2 * i + 1, np.float32))
    np.testing.assert_array_equal(lone.outputs["OUTPUT0"], np.full((1, 16), 19.0, np.float32))
    assert r.batch_sizes() == {1: 1, 2: 1, 4: 1}
    assert r.stats.snapshot().inference_count == 7


async def test_without_inline_execution_batches_run_on_the_instance_thread() -> None:
    runtime = ThreadNotingRuntime()
    async with rig(max_batch_size=4, runtime=runtime) as r:
        await done(*(r.submit(float(i)) for i in range(3)))
    assert runtime.threads == ["m-0"]
    assert r.runtime.batches == [(3, 16)]


async def test_inline_execution_fails_only_the_failing_batch() -> None:
    runtime = GatedRuntime(fail_on=-1.0)
    async with rig(max_batch_size=1, dynamic=INLINE, runtime=runtime) as r:
        bad, good = r.submit(-1.0), r.submit(1.0)
        with pytest.raises(RuntimeFailed, match="poisoned input"):
            await asyncio.wait_for(bad, 5)
        (result,) = await done(good)
    np.testing.assert_array_equal(result.outputs["OUTPUT0"], np.full((1, 16), 3.0, np.float32))
