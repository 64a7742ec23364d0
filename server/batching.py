"""Triton's dynamic batcher (pull model): a bounded queue per model version drained by its instances.

Each free instance forms its own next batch, so in-flight batches never exceed the instance count:

* requests are taken by priority level (1 first, when `priority_levels` > 1), then in arrival order;
  only requests whose non-batch shapes, dtypes and input names
  match the oldest one join its batch (the others wait their turn);
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
with `inline_execution` runs its batches right there on the loop, with no thread hand-off at all.
Time comes from an injectable `Clock` (server/clock.py, monotonic nanoseconds), so tests can drive it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from edgeperf.server.clock import Clock, MonotonicClock
from edgeperf.server.errors import (
    SHUTDOWN_MESSAGE,
    DeadlineExceeded,
    Overloaded,
    QueueTimeout,
    RuntimeFailed,
    ShuttingDown,
)
from edgeperf.server.execution import Arrays, BatchResult, Timings, run_batch
from edgeperf.server.instances import Instance, InstancePool
from edgeperf.server.model_config import ModelConfig
from edgeperf.server.stats import StatsRecorder
from edgeperf.server.types import ServerTimings

__all__ = ["BatchResult", "DynamicBatcher"]

_log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class _Pending:
    inputs: Arrays
    outputs: tuple[str, ...]
    batch: int
    key: tuple[Any, ...]
    enqueue_ns: int
    expires_ns: int | None
    deadline_ns: int | None
    future: asyncio.Future[BatchResult]
    state: Literal["queued", "taken", "gone"] = "queued"
    outcome: BatchResult | BaseException | None = None
    """With preserve_ordering: the answer, held until every earlier request has its own."""


class DynamicBatcher:
    """The queue and batch formation of one model version, served by the instances of `pool`."""

    def __init__(
        self,
        *,
        config: ModelConfig,
        pool: InstancePool,
        stats: StatsRecorder,
        clock: Clock | None = None,
    ) -> None:
        self._config = config
        self._pool = pool
        self._stats = stats
        self._clock: Clock = clock or MonotonicClock()
        db = config.dynamic_batching
        self._batching = config.max_batch_size > 0 and db is not None
        self._max_batch = config.max_batch_size if self._batching else 1
        self._preferred = db.preferred_batch_sizes if db else ()
        self._delay_ns = (db.max_queue_delay_us * 1000) if db else 0
        self._max_queue = db.max_queue_size if db else None
        self._default_timeout_us = db.default_timeout_us if db else None
        self._allow_override = db.allow_timeout_override if db else False
        self._all_outputs = tuple(t.name for t in config.outputs)
        self._ordered = db.preserve_ordering if db else False
        self._in_order: deque[_Pending] = deque()
        self._levels = db.priority_levels if db and db.priority_levels > 1 else 1
        self._default_level = db.default_priority_level if self._levels > 1 and db else 1
        self._queues: list[deque[_Pending]] = [deque() for _ in range(self._levels)]
        self._live = 0
        self._closing = False
        self._inline = config.inline_execution
        self._single_input = len(config.inputs) == 1
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

    @property
    def queue_depth(self) -> int:
        """Requests waiting (not yet executing)."""
        return self._live

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
                _resolve_none(self._drained)
            await asyncio.gather(self._drained, *self._tasks)

    def timeout_us(self, request_timeout_us: int | None) -> int | None:
        """The queue timeout that applies to a request with Triton's `timeout` parameter."""
        default = self._default_timeout_us
        if request_timeout_us and self._allow_override and (default is None or request_timeout_us < default):
            return request_timeout_us
        return default

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
        `done(future)` is called on the loop once it is settled.

        The future fails with the errors `submit` raises after queueing; cancelling it drops the request.
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

    def _queue(
        self,
        inputs: Arrays,
        batch: int,
        outputs: tuple[str, ...],
        timeout_us: int | None,
        deadline_ns: int | None,
        priority: int,
    ) -> _Pending:
        loop = self._loop
        if loop is None:
            raise RuntimeError("DynamicBatcher.submit before start()")
        if self._closing:
            raise ShuttingDown(SHUTDOWN_MESSAGE)
        if self._max_queue is not None and self._live >= self._max_queue:
            raise Overloaded(f"Request for model '{self._config.name}' Exceeds maximum queue size")
        now = self._clock.now_ns()
        timeout = self.timeout_us(timeout_us)
        pending = _Pending(
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

    def _time_out(self, pending: _Pending) -> None:
        """The queue timeout of `pending` passed: fail it now if it has not started."""
        if pending.state == "queued":
            self._retire(pending)
            # NOTE: the caller hears at once; with preserve_ordering, `_finish` only keeps the order.
            _resolve(pending.future, QueueTimeout("Request timeout expired"))
            self._finish(pending, QueueTimeout("Request timeout expired"))

    async def _wait_queue_timeout(self, pending: _Pending) -> None:
        assert pending.expires_ns is not None
        if not await self._clock.wait(pending.future, pending.expires_ns):
            self._time_out(pending)

    def _settled(
        self,
        pending: _Pending,
        done: Callable[[asyncio.Future[BatchResult]], None],
        future: asyncio.Future[BatchResult],
    ) -> None:
        if future.cancelled():
            self._retire(pending)
            self._finish(pending, asyncio.CancelledError())
        done(future)

    def _key(self, inputs: Arrays) -> tuple[Any, ...]:
        """What must match for two requests to share a batch: names, non-batch shapes and dtypes."""
        if self._single_input and len(inputs) == 1:
            ((name, a),) = inputs.items()
            return ((name, a.shape[1:] if self._batching else a.shape, a.dtype),)
        return tuple(
            (name, a.shape[1:] if self._batching else a.shape, a.dtype) for name, a in sorted(inputs.items())
        )

    def _finish(self, p: _Pending, outcome: BatchResult | BaseException) -> None:
        """Answer `p`; with preserve_ordering, only once every earlier request is answered."""
        if not self._ordered:
            _resolve(p.future, outcome)
            return
        if p.outcome is None:
            p.outcome = outcome
        while self._in_order and self._in_order[0].outcome is not None:
            head = self._in_order.popleft()
            assert head.outcome is not None
            _resolve(head.future, head.outcome)

    def _retire(self, p: _Pending) -> None:
        if p.state == "queued":
            p.state = "gone"
            self._live -= 1

    def _dispatch_soon(self) -> None:
        self._scheduled = False
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
            _resolve_none(self._drained)

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
            _resolve_none(self._timer)
            self._timer = self._timer_at = None

    async def _window(self, wakeup: asyncio.Future[None], wake_at_ns: int, idle: Instance) -> None:
        # NOTE: the precise wait blocks an idle instance's thread; a batch given to that instance meanwhile
        # waits behind it only until `_wake_timer` (called on every launch) releases the thread.
        await self._clock.wait(wakeup, wake_at_ns, offload=idle.offload)
        if self._timer is wakeup:
            self._timer = self._timer_at = None
            self._dispatch()

    def _outputs_of(self, batch: list[_Pending]) -> list[str]:
        if len(batch) == 1:
            return list(batch[0].outputs)
        names = set().union(*(p.outputs for p in batch))
        return [n for n in self._all_outputs if n in names]

    def _launch(self, instance: Instance, batch: list[_Pending]) -> None:
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
        batch: list[_Pending],
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

    def _run_inline(self, instance: Instance, batch: list[_Pending]) -> None:
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

    def _plan(self, now: int) -> tuple[list[_Pending], int | None]:
        """The batch to run now, or ([], when to look again)."""
        if len(self._queues) == 1 and len(self._queues[0]) == 1:
            lone = self._plan_lone(now)
            if lone is not None:
                return lone, None
        chosen: list[_Pending] = []
        total = 0
        sums: list[int] = []
        full = False
        scanned = [0] * len(self._queues)
        head: _Pending | None = None
        for level, queue in enumerate(self._queues):
            while queue and queue[0].state != "queued":
                queue.popleft()
            for p in queue:
                scanned[level] += 1
                if p.state != "queued" or self._expire(p, now):
                    continue
                if head is None:
                    head = p
                elif p.key != head.key:
                    continue
                if total + p.batch > self._max_batch and self._batching:
                    full = True
                    break
                chosen.append(p)
                total += p.batch
                sums.append(total)
                if total == self._max_batch or not self._batching:
                    full = True
                    break
            if full:
                break
        if head is None:
            return [], None
        take = len(chosen)
        if not full:
            fits = [size for size in self._preferred if size in sums]
            if fits:
                take = sums.index(max(fits)) + 1
            elif self._delay_ns and not self._closing and now < head.enqueue_ns + self._delay_ns:
                return [], head.enqueue_ns + self._delay_ns
        batch = chosen[:take]
        for p in batch:
            self._retire(p)
            p.state = "taken"
        # Drop what was scanned and taken or dead; keep the rest in arrival order.
        for queue, count in zip(self._queues, scanned, strict=True):
            prefix = [queue.popleft() for _ in range(count)]
            queue.extendleft(reversed([p for p in prefix if p.state == "queued"]))
        return batch, None

    def _plan_lone(self, now: int) -> list[_Pending] | None:
        """`_plan` when one request is queued and goes now (the usual case at low load); None otherwise.

        NOTE: the same decision as the general scan, without its lists: a lone request goes at once when
        it fills the batch, is a preferred size, or no batching window holds it back.
        """
        queue = self._queues[0]
        p = queue[0]
        if p.state != "queued" or self._expire(p, now):
            return None
        held = self._delay_ns and not self._closing and now < p.enqueue_ns + self._delay_ns
        if self._batching and p.batch != self._max_batch and p.batch not in self._preferred and held:
            return None
        if self._batching and p.batch > self._max_batch:
            return None
        queue.popleft()
        self._retire(p)
        p.state = "taken"
        return [p]

    def _expire(self, p: _Pending, now: int) -> bool:
        if p.future.done():
            self._retire(p)
            return True
        if p.expires_ns is not None and now >= p.expires_ns:
            self._finish(p, QueueTimeout("Request timeout expired"))
        elif p.deadline_ns is not None and time.monotonic_ns() >= p.deadline_ns:
            self._finish(p, DeadlineExceeded("the request's deadline passed while it was queued"))
        else:
            return False
        self._retire(p)
        return True

    def _answer(
        self,
        batch: list[_Pending],
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
                self._finish(
                    p,
                    BatchResult(
                        outputs=outputs
                        if tuple(outputs) == p.outputs
                        else {n: outputs[n] for n in p.outputs},
                        timings=ServerTimings(
                            queue_ns=max(0, start - p.enqueue_ns),
                            compute_input_ns=timings.input_ns,
                            compute_infer_ns=timings.infer_ns,
                            compute_output_ns=timings.output_ns,
                        ),
                        batch_size=total,
                    ),
                )
        except Exception as exc:  # NOTE: a bug here must not stop the instance; fail the batch instead.
            _log.exception("answering a batch failed outside the runtime")
            for p in batch:
                if p.outcome is None and not p.future.done():
                    self._finish(p, RuntimeFailed(f"{type(exc).__name__}: {exc}"))


def _resolve(future: asyncio.Future[BatchResult], outcome: BatchResult | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        if not isinstance(outcome, asyncio.CancelledError):
            future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _resolve_none(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
