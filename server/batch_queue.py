"""The requests one model version has waiting, and Triton's rule for which of them form the next batch.

Requests wait in one queue per priority level, in arrival order. The next batch (`_plan`) starts at the
oldest request of the highest level and takes the requests after it whose input names, non-batch shapes
and dtypes match, up to `max_batch_size` samples; it goes at once when full or when a preferred batch
size can be formed (the largest wins), otherwise when the oldest request has waited `max_queue_delay_us`.
Requests past their queue timeout or gRPC deadline, or cancelled, leave the queue as they are met. With
`preserve_ordering`, answers are released in arrival order.

DynamicBatcher (server/batching.py) extends this with the instances that pull batches and run them; the
queue itself never waits, runs nothing and touches no instance.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from edgeperf.server.errors import DeadlineExceeded, QueueTimeout
from edgeperf.server.execution import Arrays, BatchResult
from edgeperf.server.model_config import ModelConfig

__all__ = ["BatchQueue", "Pending", "resolve", "resolve_none"]


@dataclass(slots=True, eq=False)
class Pending:
    """One queued request: its inputs, where it is in its life, and the future its caller waits on."""

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


class BatchQueue:
    """The waiting requests of one model version and the batch-forming rule; used on the event loop only."""

    def __init__(self, config: ModelConfig) -> None:
        self._config = config
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
        self._in_order: deque[Pending] = deque()
        self._levels = db.priority_levels if db and db.priority_levels > 1 else 1
        self._default_level = db.default_priority_level if self._levels > 1 and db else 1
        self._queues: list[deque[Pending]] = [deque() for _ in range(self._levels)]
        self._live = 0
        self._closing = False
        self._single_input = len(config.inputs) == 1

    @property
    def queue_depth(self) -> int:
        """Requests waiting (not yet executing)."""
        return self._live

    def timeout_us(self, request_timeout_us: int | None) -> int | None:
        """The queue timeout that applies to a request with Triton's `timeout` parameter."""
        default = self._default_timeout_us
        if request_timeout_us and self._allow_override and (default is None or request_timeout_us < default):
            return request_timeout_us
        return default

    def _key(self, inputs: Arrays) -> tuple[Any, ...]:
        """What must match for two requests to share a batch: names, non-batch shapes and dtypes."""
        if self._single_input and len(inputs) == 1:
            ((name, a),) = inputs.items()
            return ((name, a.shape[1:] if self._batching else a.shape, a.dtype),)
        return tuple(
            (name, a.shape[1:] if self._batching else a.shape, a.dtype) for name, a in sorted(inputs.items())
        )

    def _finish(self, p: Pending, outcome: BatchResult | BaseException) -> None:
        """Answer `p`; with preserve_ordering, only once every earlier request is answered."""
        if not self._ordered:
            resolve(p.future, outcome)
            return
        if p.outcome is None:
            p.outcome = outcome
        while self._in_order and self._in_order[0].outcome is not None:
            head = self._in_order.popleft()
            assert head.outcome is not None
            resolve(head.future, head.outcome)

    def _retire(self, p: Pending) -> None:
        if p.state == "queued":
            p.state = "gone"
            self._live -= 1

    def _plan(self, now: int) -> tuple[list[Pending], int | None]:
        """The batch to run now, or ([], when to look again)."""
        if len(self._queues) == 1 and len(self._queues[0]) == 1:
            lone = self._plan_lone(now)
            if lone is not None:
                return lone, None
        chosen: list[Pending] = []
        total = 0
        sums: list[int] = []
        full = False
        scanned = [0] * len(self._queues)
        head: Pending | None = None
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

    def _plan_lone(self, now: int) -> list[Pending] | None:
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

    def _expire(self, p: Pending, now: int) -> bool:
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


def resolve(future: asyncio.Future[BatchResult], outcome: BatchResult | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        if not isinstance(outcome, asyncio.CancelledError):
            future.set_exception(outcome)
    else:
        future.set_result(outcome)


def resolve_none(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
