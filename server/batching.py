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
Time comes from an injectable `Clock` (server/clock.py, monotonic nanoseconds), so tests can drive it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from edgeperf.server.clock import Clock, MonotonicClock, Offload
from edgeperf.server.config import ModelConfig
from edgeperf.server.errors import DeadlineExceeded, Overloaded, QueueTimeout, RuntimeFailed, ShuttingDown
from edgeperf.server.instances import Instance, InstancePool
from edgeperf.server.runtime.base import Runtime
from edgeperf.server.stats import StatsRecorder

__all__ = ["BatchResult", "DynamicBatcher"]

Arrays = Mapping[str, npt.NDArray[Any]]
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchResult:
    """One request's share of an execution."""

    outputs: dict[str, npt.NDArray[Any]]
    queue_ns: int
    compute_input_ns: int
    compute_infer_ns: int
    compute_output_ns: int
    batch_size: int
    """Samples in the execution this request was part of."""


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


@dataclass(slots=True)
class _Timings:
    outputs: list[dict[str, npt.NDArray[Any]]] = field(default_factory=list)
    input_ns: int = 0
    infer_ns: int = 0
    output_ns: int = 0


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
        self._idle: list[asyncio.Future[None]] = []
        """One future per worker waiting for work; `_notify` resolves them all."""
        self._single_input = len(config.inputs) == 1
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def queue_depth(self) -> int:
        """Requests waiting (not yet executing)."""
        return self._live

    def start(self) -> None:
        """Start one worker task per instance (call from the event loop)."""
        for instance in self._pool.instances:
            task = asyncio.create_task(self._worker(instance), name=f"batcher-{instance.name}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self, *, reject_queued: bool = False) -> None:
        """Stop accepting; run what is queued (or fail it with ShuttingDown) and wait for the workers."""
        self._closing = True
        if reject_queued:
            for queue in self._queues:
                for p in queue:
                    if p.state == "queued":
                        self._finish(p, ShuttingDown("server shut down before the request ran"))
                    self._retire(p)
                queue.clear()
        self._notify()
        await asyncio.gather(*self._tasks)

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
        if self._closing:
            raise ShuttingDown("GRPC server is shutting down and has stopped accepting new requests.")
        if self._max_queue is not None and self._live >= self._max_queue:
            raise Overloaded(f"Request for model '{self._config.name}' Exceeds maximum queue size")
        now = self._clock.now_ns()
        timeout = self.timeout_us(timeout_us)
        key = self._key(inputs)
        pending = _Pending(
            inputs=inputs,
            outputs=outputs or self._all_outputs,
            batch=batch,
            key=key,
            enqueue_ns=now,
            expires_ns=None if timeout is None else now + timeout * 1000,
            deadline_ns=deadline_ns,
            future=asyncio.get_running_loop().create_future(),
        )
        level = priority if 1 <= priority <= self._levels else self._default_level
        self._queues[level - 1].append(pending)
        if self._ordered:
            self._in_order.append(pending)
        self._live += 1
        self._notify()
        try:
            if pending.expires_ns is not None:
                done = await self._clock.wait(pending.future, pending.expires_ns)
                if not done and pending.state == "queued":
                    self._retire(pending)
                    pending.future.cancel()
                    self._finish(pending, QueueTimeout("Request timeout expired"))
                    raise QueueTimeout("Request timeout expired")
            return await pending.future
        except asyncio.CancelledError:
            self._retire(pending)
            self._finish(pending, asyncio.CancelledError())
            raise

    def _key(self, inputs: Arrays) -> tuple[Any, ...]:
        """What must match for two requests to share a batch: names, non-batch shapes and dtypes."""
        if self._single_input and len(inputs) == 1:
            ((name, a),) = inputs.items()
            return ((name, a.shape[1:] if self._batching else a.shape, a.dtype),)
        return tuple(
            (name, a.shape[1:] if self._batching else a.shape, a.dtype) for name, a in sorted(inputs.items())
        )

    def _notify(self) -> None:
        if self._idle:
            idle, self._idle = self._idle, []
            for wakeup in idle:
                if not wakeup.done():
                    wakeup.set_result(None)

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

    async def _worker(self, instance: Instance) -> None:
        while (batch := await self._next_batch(instance.offload)) is not None:
            try:
                await self._execute(instance, batch)
            except Exception as exc:  # NOTE: a bug here must not stop the instance; fail the batch instead.
                _log.exception("batch on %s failed outside the runtime", instance.name)
                for p in batch:
                    if p.outcome is None and not p.future.done():
                        self._finish(p, RuntimeFailed(f"{type(exc).__name__}: {exc}"))

    async def _next_batch(self, offload: Offload) -> list[_Pending] | None:
        loop = asyncio.get_running_loop()
        while True:
            batch, wake_at_ns = self._plan(self._clock.now_ns()) if self._live else ([], None)
            if batch:
                return batch
            if self._closing and self._live == 0:
                return None
            # NOTE: each worker waits on its own future (nothing runs between planning and here, so no
            # arrival is missed); awaiting it directly is the cheapest wait when no time is involved.
            wakeup: asyncio.Future[None] = loop.create_future()
            self._idle.append(wakeup)
            if wake_at_ns is None:
                await wakeup
            else:
                await self._clock.wait(wakeup, wake_at_ns, offload=offload)
                if not wakeup.done():
                    self._idle.remove(wakeup)

    def _plan(self, now: int) -> tuple[list[_Pending], int | None]:
        """The batch to run now, or ([], when to look again)."""
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

    async def _execute(self, instance: Instance, batch: list[_Pending]) -> None:
        start = self._clock.now_ns()
        if len(batch) == 1:
            output_names = list(batch[0].outputs)
        else:
            names = set().union(*(p.outputs for p in batch))
            output_names = [n for n in self._all_outputs if n in names]
        sizes = [p.batch for p in batch]
        try:
            timings = await instance.submit(
                _run_batch, [p.inputs for p in batch], sizes, output_names, instance.runtime
            )
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            for p in batch:
                self._finish(p, RuntimeFailed(message))
            return
        total = sum(sizes) if self._batching else len(batch)
        self._stats.record_execution(total, timings.input_ns, timings.infer_ns, timings.output_ns)
        for p, outputs in zip(batch, timings.outputs, strict=True):
            self._finish(
                p,
                BatchResult(
                    outputs=outputs if tuple(outputs) == p.outputs else {n: outputs[n] for n in p.outputs},
                    queue_ns=max(0, start - p.enqueue_ns),
                    compute_input_ns=timings.input_ns,
                    compute_infer_ns=timings.infer_ns,
                    compute_output_ns=timings.output_ns,
                    batch_size=total,
                ),
            )


def _resolve(future: asyncio.Future[BatchResult], outcome: BatchResult | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        if not isinstance(outcome, asyncio.CancelledError):
            future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _run_batch(
    items: Sequence[Arrays], sizes: Sequence[int], output_names: list[str], runtime: Runtime
) -> _Timings:
    """On the instance thread: concatenate, run, split; each step timed."""
    t0 = time.perf_counter_ns()
    if len(items) == 1:
        inputs: Arrays = items[0]
    else:
        inputs = {name: np.concatenate([item[name] for item in items], axis=0) for name in items[0]}
    t1 = time.perf_counter_ns()
    outputs = runtime.run(inputs, output_names)
    t2 = time.perf_counter_ns()
    if len(items) == 1:
        per_request = [outputs]
    else:
        total = sum(sizes)
        for name, array in outputs.items():
            if array.ndim == 0 or array.shape[0] != total:
                raise RuntimeError(
                    f"output '{name}' has shape {list(array.shape)}; expected a batch dimension of {total}"
                )
        bounds = np.cumsum([0, *sizes]).tolist()
        per_request = [
            {name: array[a:b] for name, array in outputs.items()} for a, b in itertools.pairwise(bounds)
        ]
    t3 = time.perf_counter_ns()
    return _Timings(per_request, t1 - t0, t2 - t1, t3 - t2)
