"""Triton's dynamic batcher (pull model): a bounded queue per model version drained by its instances.

Each free instance forms its own next batch, so in-flight batches never exceed the instance count:

* requests are taken by priority level (1 first, when `priority_levels` > 1), then in arrival order;
  only requests whose non-batch shapes, dtypes and input names match the oldest one join its batch;
* if `max_batch_size` samples are there (or the next request would overflow it), or a preferred batch
  size can be formed (the largest one wins), the batch goes at once;
* otherwise the instance waits until the oldest request has waited `max_queue_delay_us` or a new arrival
  completes a batch, then sends whatever is there;
* queued requests past their queue timeout fail with QueueTimeout ("Request timeout expired"), past their
  gRPC deadline with DeadlineExceeded, and cancelled ones are dropped before running;
* a full queue (`max_queue_size`) rejects new requests with Overloaded;
* a runtime failure fails only that batch's requests (RuntimeFailed with the runtime's message).

Models without dynamic batching (or with max_batch_size 0) run each request alone, in arrival order.

Dispatch has no task of its own: batches are formed on the event loop, synchronously, once per loop
iteration after arrivals (one `call_soon`) and at once when an instance finishes. A batch is one job on
the instance's thread, and the thread answers the whole batch with one `call_soon_threadsafe`; a model
with `inline_execution` runs its batches on the loop, with no hand-off, and a request that finds it idle
runs as it arrives (`run_now`). Time comes from an injectable `Clock` (server/clock.py). The waiting
requests and the batch-forming rule are BatchQueue's (server/batch_queue.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable

from edgeperf.server.batch_queue import BatchQueue, Pending, resolve, resolve_none
from edgeperf.server.clock import Clock, MonotonicClock
from edgeperf.server.errors import (
    SHUTDOWN_MESSAGE,
    Overloaded,
    QueueTimeout,
    RuntimeFailed,
    ShuttingDown,
)
from edgeperf.server.execution import Arrays, BatchResult, Timings, run_batch, share
from edgeperf.server.instances import Instance, InstancePool
from edgeperf.server.model_config import ModelConfig
from edgeperf.server.stats import StatsRecorder
from edgeperf.server.types import ServerTimings

__all__ = ["BatchResult", "DynamicBatcher"]

_log = logging.getLogger(__name__)


class DynamicBatcher(BatchQueue):
    """The queue and batch formation of one model version (BatchQueue), served by the instances of `pool`."""

    def __init__(
        self,
        *,
        config: ModelConfig,
        pool: InstancePool,
        stats: StatsRecorder,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(config)
        self._pool = pool
        self._stats = stats
        self._clock: Clock = clock or MonotonicClock()
        self._inline = config.inline_execution
        self._loop: asyncio.AbstractEventLoop | None = None
        self._free: list[Instance] = []
        """Instances with no batch; each takes the next batch the moment it is free (pull model)."""
        self._scheduled = False
        self._timer: asyncio.Future[None] | None = None
        """Resolving it ends the batching-window wait early (a batch went, or the batcher closes)."""
        self._timer_at: int | None = None
        self._drained: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._timeouts: set[asyncio.Task[None]] = set()
        """Queue-timeout waits of requests queued with `enqueue` (kept so they are not collected)."""

    def start(self) -> None:
        """Begin dispatching to the pool's instances (call from the event loop)."""
        self._loop = asyncio.get_running_loop()
        self._free = list(reversed(self._pool.instances))

    async def close(self, *, reject_queued: bool = False) -> None:
        """Stop accepting; run what is queued (or fail it with ShuttingDown) and wait for the instances."""
        self._closing = True
        if reject_queued:
            for queue in self._queues:
                for p in queue:
                    if p.state == "queued":
                        self._finish(p, ShuttingDown("server shut down before the request ran"))
                    self._retire(p)
                queue.clear()
        self._wake_timer()
        if self._loop is None:
            return
        self._dispatch()
        while True:
            idle = not self._live and len(self._free) == len(self._pool.instances)
            if idle and not self._tasks:
                return
            self._drained = self._loop.create_future()
            if idle:
                resolve_none(self._drained)
            await asyncio.gather(self._drained, *self._tasks)

    async def submit(
        self,
        inputs: Arrays,
        *,
        batch: int,
        outputs: tuple[str, ...] = (),
        timeout_us: int | None = None,
        deadline_ns: int | None = None,
        priority: int = 0,
    ) -> BatchResult:
        """Queue one validated request and wait for its share of a batch.

        Args:
            inputs: arrays already checked against the config.
            batch: the request's batch dimension (1 when the model does not batch).
            outputs: outputs to return; () is all.
            timeout_us: the request's `timeout` parameter (see `timeout_us`).
            deadline_ns: absolute monotonic time after which the request is dropped unrun.
            priority: Triton's request priority: 1 is the highest level; 0 or a value above
                `priority_levels` means the default level.

        Raises:
            ShuttingDown, Overloaded, QueueTimeout, DeadlineExceeded, RuntimeFailed.
        """
        pending = self._queue(inputs, batch, outputs, timeout_us, deadline_ns, priority)
        try:
            if pending.expires_ns is not None and not await self._clock.wait(
                pending.future, pending.expires_ns
            ):
                self._time_out(pending)
            return await pending.future
        except asyncio.CancelledError:
            self._retire(pending)
            self._finish(pending, asyncio.CancelledError())
            raise

    def enqueue(
        self,
        inputs: Arrays,
        *,
        batch: int,
        outputs: tuple[str, ...] = (),
        timeout_us: int | None = None,
        deadline_ns: int | None = None,
        priority: int = 0,
        done: Callable[[asyncio.Future[BatchResult]], None],
    ) -> asyncio.Future[BatchResult]:
        """`submit` without a waiting task: queue the request and return the future of its share of a batch;
        `done(future)` is called on the loop once it is settled. The future fails with the errors `submit` raises after queueing; cancelling it drops the request.
        Only a request with a queue timeout gets a task, which waits that timeout out.

        Raises:
            ShuttingDown, Overloaded: the request was not queued.
        """
        pending = self._queue(inputs, batch, outputs, timeout_us, deadline_ns, priority)
        future = pending.future
        # NOTE: one callback per request (each is a loop handle of its own).
        future.add_done_callback(functools.partial(self._settled, pending, done))
        if pending.expires_ns is not None:
            task = asyncio.get_running_loop().create_task(self._wait_queue_timeout(pending))
            self._timeouts.add(task)
            task.add_done_callback(self._timeouts.discard)
        return future

    def run_now(
        self,
        inputs: Arrays,
        *,
        batch: int,
        outputs: tuple[str, ...] = (),
        deadline_ns: int | None = None,
    ) -> BatchResult | None:
        """Run a validated request of an `inline_execution` model now, on the loop, if nothing is queued and
        no batch went yet in this loop iteration (Triton: an idle instance takes a request as it arrives;
        later arrivals of the iteration batch behind it); None: queue it (`submit`). Answer, statistics
        and timings are the batched path's, without the queue entry, its future and loop turns.

        Raises:
            RuntimeFailed: the runtime failed.
        """
        loop = self._loop
        if (
            not self._inline
            or self._scheduled
            or self._live
            or self._closing
            or loop is None
            or not self._free
        ):
            return None
        arrived = self._clock.now_ns()
        if deadline_ns is not None and time.monotonic_ns() >= deadline_ns:
            return None  # NOTE: the queue refuses it (DeadlineExceeded); a queue timeout is never 0
        # NOTE: the instance counts as busy until the loop turns, so that concurrent arrivals batch.
        self._scheduled = True
        loop.call_soon(self._dispatch_soon)
        instance = self._free.pop()
        start = self._clock.now_ns()
        # NOTE: one request: nothing to concatenate or split, so its compute is the run alone.
        began = time.perf_counter_ns()
        try:
            answer = instance.runtime.run(inputs, outputs or self._all_outputs)
        except Exception as exc:
            raise RuntimeFailed(f"{type(exc).__name__}: {exc}") from None
        finally:
            self._free.append(instance)
        infer_ns = time.perf_counter_ns() - began
        total = batch if self._batching else 1
        self._stats.record_execution(total, 0, infer_ns, 0)
        timings = ServerTimings(
            queue_ns=start - arrived, compute_input_ns=0, compute_infer_ns=infer_ns, compute_output_ns=0
        )
        return BatchResult(outputs=answer, timings=timings, batch_size=total)

    def _queue(
        self,
        inputs: Arrays,
        batch: int,
        outputs: tuple[str, ...],
        timeout_us: int | None,
        deadline_ns: int | None,
        priority: int,
    ) -> Pending:
        loop = self._loop
        if loop is None:
            raise RuntimeError("DynamicBatcher.submit before start()")
        if self._closing:
            raise ShuttingDown(SHUTDOWN_MESSAGE)
        if self._max_queue is not None and self._live >= self._max_queue:
            raise Overloaded(f"Request for model '{self._config.name}' Exceeds maximum queue size")
        now = self._clock.now_ns()
        timeout = self.timeout_us(timeout_us)
        pending = Pending(
            inputs=inputs,
            outputs=outputs or self._all_outputs,
            batch=batch,
            key=self._key(inputs),
            enqueue_ns=now,
            expires_ns=None if timeout is None else now + timeout * 1000,
            deadline_ns=deadline_ns,
            future=loop.create_future(),
        )
        level = priority if 1 <= priority <= self._levels else self._default_level
        self._queues[level - 1].append(pending)
        if self._ordered:
            self._in_order.append(pending)
        self._live += 1
        if not self._scheduled:
            # NOTE: once per loop iteration, so that requests arriving together can share a batch.
            self._scheduled = True
            loop.call_soon(self._dispatch_soon)
        return pending

    def _time_out(self, pending: Pending) -> None:
        """The queue timeout of `pending` passed: fail it now if it has not started."""
        if pending.state == "queued":
            self._retire(pending)
            # NOTE: the caller hears at once; with preserve_ordering, `_finish` only keeps the order.
            resolve(pending.future, QueueTimeout("Request timeout expired"))
            self._finish(pending, QueueTimeout("Request timeout expired"))

    async def _wait_queue_timeout(self, pending: Pending) -> None:
        assert pending.expires_ns is not None
        if not await self._clock.wait(pending.future, pending.expires_ns):
            self._time_out(pending)

    def _settled(
        self,
        pending: Pending,
        done: Callable[[asyncio.Future[BatchResult]], None],
        future: asyncio.Future[BatchResult],
    ) -> None:
        if future.cancelled():
            self._retire(pending)
            self._finish(pending, asyncio.CancelledError())
        done(future)

    def _dispatch_soon(self) -> None:
        self._scheduled = False
        if self._live or self._drained is not None:  # NOTE: mostly nothing queued after an answer at once
            self._dispatch()

    def _dispatch(self) -> None:
        """Give batches to free instances while there are both; arm the batching-window timer if needed."""
        while self._free:
            batch, wake_at_ns = self._plan(self._clock.now_ns()) if self._live else ([], None)
            if not batch:
                if wake_at_ns is not None:
                    self._arm_timer(wake_at_ns)
                break
            instance = self._free.pop()
            if self._inline:
                self._run_inline(instance, batch)
            else:
                self._launch(instance, batch)
        if self._drained is not None and not self._live and len(self._free) == len(self._pool.instances):
            resolve_none(self._drained)

    def _arm_timer(self, wake_at_ns: int) -> None:
        if self._timer_at is not None and self._timer_at <= wake_at_ns:
            return  # NOTE: an earlier wake-up is armed; it plans again and re-arms for this one
        self._wake_timer()
        self._timer_at = wake_at_ns
        wakeup: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._timer = wakeup
        task = asyncio.get_running_loop().create_task(self._window(wakeup, wake_at_ns, self._free[-1]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _wake_timer(self) -> None:
        if self._timer is not None:
            resolve_none(self._timer)
            self._timer = self._timer_at = None

    async def _window(self, wakeup: asyncio.Future[None], wake_at_ns: int, idle: Instance) -> None:
        # NOTE: the precise wait blocks an idle instance's thread; a batch given to that instance meanwhile
        # waits behind it only until `_wake_timer` (called on every launch) releases the thread.
        await self._clock.wait(wakeup, wake_at_ns, offload=idle.offload)
        if self._timer is wakeup:
            self._timer = self._timer_at = None
            self._dispatch()

    def _outputs_of(self, batch: list[Pending]) -> list[str]:
        if len(batch) == 1:
            return list(batch[0].outputs)
        names = set().union(*(p.outputs for p in batch))
        return [n for n in self._all_outputs if n in names]

    def _launch(self, instance: Instance, batch: list[Pending]) -> None:
        self._wake_timer()
        start = self._clock.now_ns()
        sizes = [p.batch for p in batch]
        args = ([p.inputs for p in batch], sizes, self._outputs_of(batch), instance.runtime)
        done = functools.partial(self._done, instance, batch, sizes, start)
        try:
            instance.post(run_batch, args, done)
        except Exception as exc:  # NOTE: a closed instance; fail the batch rather than lose it
            self._done(instance, batch, sizes, start, None, exc)

    def _done(
        self,
        instance: Instance,
        batch: list[Pending],
        sizes: list[int],
        start: int,
        timings: Timings | None,
        error: BaseException | None,
    ) -> None:
        """On the event loop: answer the batch, free its instance and dispatch the next batch."""
        try:
            self._answer(batch, sizes, start, timings, error)
        finally:
            self._free.append(instance)
            self._dispatch()

    def _run_inline(self, instance: Instance, batch: list[Pending]) -> None:
        start = self._clock.now_ns()
        sizes = [p.batch for p in batch]
        try:
            timings = run_batch([p.inputs for p in batch], sizes, self._outputs_of(batch), instance.runtime)
        except Exception as exc:
            self._answer(batch, sizes, start, None, exc)
        else:
            self._answer(batch, sizes, start, timings, None)
        finally:
            self._free.append(instance)

    def _answer(
        self,
        batch: list[Pending],
        sizes: list[int],
        start: int,
        timings: Timings | None,
        error: BaseException | None,
    ) -> None:
        if timings is None:
            message = f"{type(error).__name__}: {error}"
            for p in batch:
                self._finish(p, RuntimeFailed(message))
            return
        try:
            total = sum(sizes) if self._batching else len(batch)
            self._stats.record_execution(total, timings.input_ns, timings.infer_ns, timings.output_ns)
            for p, outputs in zip(batch, timings.outputs, strict=True):
                self._finish(p, share(outputs, p.outputs, max(0, start - p.enqueue_ns), timings, total))
        except Exception as exc:  # NOTE: a bug here must not stop the instance; fail the batch instead.
            _log.exception("answering a batch failed outside the runtime")
            for p in batch:
                if p.outcome is None and not p.future.done():
                    self._finish(p, RuntimeFailed(f"{type(exc).__name__}: {exc}"))
