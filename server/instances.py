"""Runtime instances: each model instance owns one Runtime and one dedicated thread that runs it."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TypeVar

from edgeperf.server.runtime.base import Runtime

__all__ = ["Instance", "InstancePool"]

T = TypeVar("T")


class Instance:
    """One Runtime bound to its own single thread; `call` runs blocking work there without blocking the loop.

    ONNX Runtime releases the GIL while it computes, so instances of a model run in parallel.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._runtime: Runtime | None = None

    @property
    def executor(self) -> Executor:
        """The instance's single thread."""
        return self._executor

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError(f"instance {self.name} has no runtime loaded")
        return self._runtime

    async def call(self, fn: Callable[[Runtime], T]) -> T:
        """Run `fn(runtime)` on this instance's thread."""
        runtime = self.runtime
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, runtime)

    async def load(self, factory: Callable[[], Runtime]) -> None:
        """Build the runtime on the instance's own thread."""
        self._runtime = await asyncio.get_running_loop().run_in_executor(self._executor, factory)

    async def close(self) -> None:
        """Close the runtime on its thread and stop the thread. Idempotent."""
        runtime, self._runtime = self._runtime, None
        loop = asyncio.get_running_loop()
        if runtime is not None:
            await loop.run_in_executor(self._executor, runtime.close)
        await loop.run_in_executor(None, functools.partial(self._executor.shutdown, wait=True))


class InstancePool:
    """The instances of one model version (`instance_group` count of them)."""

    def __init__(self, instances: list[Instance]) -> None:
        self.instances = instances

    @classmethod
    async def create(cls, name: str, count: int, factory: Callable[[], Runtime]) -> InstancePool:
        """`count` instances, each with a runtime from `factory()` built on its own thread, concurrently.

        Raises:
            Exception: the first factory failure, after closing every instance.
        """
        pool = cls([Instance(f"{name}-{i}") for i in range(count)])
        try:
            async with asyncio.TaskGroup() as tg:
                for instance in pool.instances:
                    tg.create_task(instance.load(factory))
        except BaseException as exc:
            # NOTE: also on cancellation, so no instance thread outlives a failed load.
            await pool.close()
            if isinstance(exc, BaseExceptionGroup):
                raise exc.exceptions[0] from None
            raise
        return pool

    async def close(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for instance in self.instances:
                tg.create_task(instance.close())
