"""Runtime instances: one dedicated thread each, built and closed on it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from edgeperf.server.instances import InstancePool
from edgeperf.server.runtime.base import Runtime


class SleepyRuntime:
    def __init__(self) -> None:
        self.built_on = threading.current_thread().name
        self.ran_on: list[str] = []
        self.closed_on = ""

    def run(
        self, inputs: Mapping[str, npt.NDArray[Any]], output_names: Sequence[str]
    ) -> dict[str, npt.NDArray[Any]]:
        self.ran_on.append(threading.current_thread().name)
        time.sleep(0.2)
        return {"y": inputs["x"]}

    def close(self) -> None:
        self.closed_on = threading.current_thread().name


async def test_each_instance_runs_on_its_own_thread_in_parallel() -> None:
    runtimes: list[SleepyRuntime] = []

    def factory() -> Runtime:
        runtimes.append(SleepyRuntime())
        return runtimes[-1]

    pool = await InstancePool.create("m-1", 2, factory)
    try:
        started = time.monotonic()
        heartbeat = 0

        async def beat() -> None:
            nonlocal heartbeat
            while True:
                heartbeat += 1
                await asyncio.sleep(0.01)

        beater = asyncio.create_task(beat())
        x = np.zeros(1)
        await asyncio.gather(*(i.call(lambda rt: rt.run({"x": x}, ["y"])) for i in pool.instances))
        elapsed = time.monotonic() - started
        beater.cancel()
    finally:
        await pool.close()
    assert elapsed < 0.39  # two 0.2 s runs overlapped
    assert heartbeat >= 5  # the event loop kept running meanwhile
    names = {r.built_on for r in runtimes}
    assert len(names) == 2 and threading.main_thread().name not in names
    assert {r.ran_on[0] for r in runtimes} == names
    assert {r.closed_on for r in runtimes} == names


async def test_a_failing_factory_closes_the_pool_and_raises() -> None:
    built = 0

    def factory() -> Runtime:
        nonlocal built
        built += 1
        if built == 2:
            raise OSError("no such model")
        return SleepyRuntime()

    with pytest.raises(OSError, match="no such model"):
        await InstancePool.create("m-1", 2, factory)


async def test_a_closed_instance_has_no_runtime() -> None:
    pool = await InstancePool.create("m-1", 1, SleepyRuntime)
    (instance,) = pool.instances
    await pool.close()
    with pytest.raises(RuntimeError, match="has no runtime loaded"):
        instance.runtime  # noqa: B018
