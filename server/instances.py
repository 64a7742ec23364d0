"""Runtime instances: each model instance owns one Runtime and one dedicated thread that runs it.

The hand-off is as cheap as it can be on a small device, because every execution pays it: the loop puts
`(fn, args, loop, done)` on the thread's `SimpleQueue`, and the thread answers with one
`loop.call_soon_threadsafe(done, result, error)`. The batcher's `done` answers a whole batch in that one
callback (`post`); `submit` wraps an asyncio future for the rare awaited jobs (load, warm-up, close).
(`loop.run_in_executor` costs about twice as much CPU per call: a concurrent.futures Future, a work
item, and a chain of callbacks to copy its state into an asyncio future.)
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from edgeperf.server.runtime.base import Runtime

__all__ = ["Done", "Instance", "InstancePool"]

T = TypeVar("T")

_log = logging.getLogger(__name__)

Done = Callable[[Any, BaseException | None], None]
"""Called on the event loop with a job's result, or with (None, the exception it raised)."""

_Job = tuple[Callable[..., Any], tuple[Any, ...], asyncio.AbstractEventLoop, Done]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class Instance:
    """One Runtime bound to its own thread; `call` runs blocking work there without blocking the loop.

    ONNX Runtime releases the GIL while it computes, so instances of a model run in parallel. Jobs run
    one at a time, in submission order.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()
        self._stopped = False
        self._runtime: Runtime | None = None

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, args, loop, done = job
            error: BaseException | None = None
            try:
                result = fn(*args)
            except BaseException as exc:  # NOTE: delivered to `done` on the loop, as an executor would
                result, error = None, exc
            del job, fn, args
            try:
                loop.call_soon_threadsafe(done, result, error)
            except RuntimeError:  # NOTE: the loop closed while the job ran; nobody waits for it any more
                _log.debug("instance %s finished a job after its event loop closed", self.name)

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue `fn(*args)` on this instance's thread; the returned future resolves on the event loop.

        Raises:
            RuntimeError: the instance is closed.
        """
        if self._stopped:
            raise RuntimeError(f"instance {self.name} is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, args, loop, functools.partial(_settle, future)))
        return future

    def post(self, fn: Callable[..., Any], args: tuple[Any, ...], done: Done) -> None:
        """Queue `fn(*args)` on this instance's thread; `done(result, error)` then runs on the event loop.

        The cheapest hand-off: no future, one `call_soon_threadsafe` back.

        Raises:
            RuntimeError: the instance is closed, or no event loop is running.
        """
        if self._stopped:
            raise RuntimeError(f"instance {self.name} is closed")
        self._jobs.put((fn, args, asyncio.get_running_loop(), done))

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError(f"instance {self.name} has no runtime loaded")
        return self._runtime

    async def call(self, fn: Callable[[Runtime], T]) -> T:
        """Run `fn(runtime)` on this instance's thread."""
        return await self.submit(fn, self.runtime)

    async def offload(self, fn: Callable[[], T]) -> T:
        """Run `fn()` on this instance's thread (the batcher blocks there for precise short waits)."""
        return await self.submit(fn)

    async def load(self, factory: Callable[[], Runtime]) -> None:
        """Build the runtime on the instance's own thread."""
        self._runtime = await self.submit(factory)

    async def close(self) -> None:
        """Close the runtime on its thread and stop the thread. Idempotent."""
        if self._stopped:
            return
        runtime, self._runtime = self._runtime, None
        try:
            if runtime is not None:
                await self.submit(runtime.close)
        finally:
            self._stopped = True
            self._jobs.put(None)
            await asyncio.to_thread(self._thread.join)


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
