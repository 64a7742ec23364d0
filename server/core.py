"""The transport-free inference core: the loaded model repository and the `infer` entry point."""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from edgeperf.server.admission import ByteBudget, request_bytes
from edgeperf.server.batching import BatchResult
from edgeperf.server.clock import Clock, MonotonicClock
from edgeperf.server.errors import SHUTDOWN_MESSAGE, EdgeperfServerError, ModelNotFound, ShuttingDown
from edgeperf.server.loading import LoadedModel, load_model
from edgeperf.server.repository import ModelSource, scan_repository
from edgeperf.server.settings import DEFAULT_MAX_QUEUED_BYTES
from edgeperf.server.stats import ModelStatistics, StatsObserver
from edgeperf.server.types import InferRequest, InferResponse, ModelInfo

__all__ = ["CoreState", "InferDone", "InferenceCore", "LoadedModel", "ModelInfo"]

_log = logging.getLogger(__name__)


InferDone = Callable[[InferResponse | None, BaseException | None], None]
"""Called on the event loop with a request's response, or with (None, the error that failed it)."""

_Admitted = tuple["LoadedModel", int, int, int, tuple[str, ...]]
"""An accepted request's model, start time (ns), bytes held in the budget, batch size and outputs."""


class CoreState(enum.Enum):
    UNOPENED = "UNOPENED"
    OPENED = "OPENED"
    CLOSED = "CLOSED"


class InferenceCore:
    """Loads a model repository and serves inferences through per-model dynamic batchers.

    An async context manager: entering loads every model (sessions built on the instance threads), warms
    each up and starts the batchers; leaving closes (drain first with `stop_accepting` and `drain`).
    Loading is strict: a bad repository or config raises ModelConfigError from `__aenter__`.
    """

    def __init__(
        self,
        model_repository: Path,
        *,
        warmup: bool = True,
        observer: StatsObserver | None = None,
        clock: Clock | None = None,
        max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES,
        intra_op_share: int = 1,
    ) -> None:
        """Prepare; nothing is loaded before `async with` / `__aenter__`.

        Args:
            model_repository: folder in Triton's layout (server/repository.py).
            warmup: run every ONNX model once per instance at each warm-up batch size before serving
                (validation.warmup_batch_sizes); pipelines get their own optional `warmup()` instead.
            observer: receives every request and execution (server/stats.py `StatsObserver`), e.g. the
                Prometheus exporter.
            clock: monotonic time for queue delays, timeouts and durations; tests inject a fake one.
            max_queued_bytes: input bytes all requests in the core may hold together (server/admission.py);
                beyond it `infer` raises OverBudget.
            intra_op_share: how many server processes share this machine (`serve --workers N`): each
                model's ONNX Runtime intra-op threads (0: one per core) are divided by it, at least 1.
        """
        self._repository = Path(model_repository)
        self._warmup = warmup
        self._observer = observer
        self._clock: Clock = clock or MonotonicClock()
        self._budget = ByteBudget(max_queued_bytes)
        self._intra_op_share = intra_op_share
        self._state = CoreState.UNOPENED
        self._accepting = False
        self._models: dict[str, dict[str, LoadedModel]] = {}
        self._latest: dict[str, LoadedModel] = {}
        """The highest served version of each model (what version "" selects)."""
        self._inflight = 0
        self._drained: asyncio.Future[None] | None = None
        """Resolved when the last request in flight is answered, while `drain` waits for that."""

    @property
    def state(self) -> CoreState:
        return self._state

    @property
    def budget(self) -> ByteBudget:
        """The byte budget of request data; the edge also holds answers waiting to be written in it."""
        return self._budget

    @property
    def live(self) -> bool:
        """True from a successful enter until close."""
        return self._state is CoreState.OPENED

    @property
    def ready(self) -> bool:
        """True while opened, every model loaded, and accepting requests."""
        return self._state is CoreState.OPENED and self._accepting

    async def __aenter__(self) -> InferenceCore:
        if self._state is not CoreState.UNOPENED:
            raise RuntimeError(f"InferenceCore cannot be opened in state {self._state.name}")
        self._state = CoreState.OPENED
        try:
            sources = await asyncio.to_thread(scan_repository, self._repository)
            loaded: list[LoadedModel] = []
            try:
                async with asyncio.TaskGroup() as tg:
                    for source in sources:
                        for version in source.versions:
                            tg.create_task(self._load(source, version, loaded))
            except BaseExceptionGroup as group:
                for model in loaded:
                    await model.batcher.close(reject_queued=True)
                    await model.pool.close()
                raise group.exceptions[0] from None
        except BaseException:
            self._state = CoreState.CLOSED
            raise
        for model in loaded:
            self._models.setdefault(model.name, {})[model.version] = model
            model.batcher.start()
        self._latest = {name: versions[max(versions, key=int)] for name, versions in self._models.items()}
        self._accepting = True
        if loaded:
            _log.info("loaded %d model version(s) from %s", len(loaded), self._repository)
        else:
            _log.warning(
                "the model repository %s holds no models (expected <model>/config.pbtxt and "
                "<model>/<version>/); every inference request will answer NOT_FOUND",
                self._repository,
                extra={"event": "no_models"},
            )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _load(self, source: ModelSource, version: int, loaded: list[LoadedModel]) -> None:
        model = await load_model(
            source,
            version,
            warmup=self._warmup,
            observer=self._observer,
            clock=self._clock,
            workers=self._intra_op_share,
        )
        loaded.append(model)

    def models(self) -> list[ModelInfo]:
        """Every model of the repository, sorted by name."""
        state = "READY" if self._state is CoreState.OPENED else "UNAVAILABLE"
        reason = "" if state == "READY" else "server is not running"
        return [
            ModelInfo(name=name, versions=tuple(sorted(versions, key=int)), state=state, reason=reason)
            for name, versions in sorted(self._models.items())
        ]

    def model(self, name: str, version: str = "") -> LoadedModel:
        """A served model version; "" is the highest served version.

        Raises:
            ModelNotFound: unknown model or version.
        """
        if not version:
            latest = self._latest.get(name)
            if latest is not None:
                return latest
        versions = self._models.get(name)
        if versions is None:
            raise ModelNotFound(f"Request for unknown model: '{name}' is not found")
        if not version:
            return versions[max(versions, key=int)]
        model = versions.get(version)
        if model is None:
            served = ", ".join(sorted(versions, key=int))
            raise ModelNotFound(
                f"Request for unknown model: '{name}' version {version} is not found (served: {served})"
            )
        return model

    async def infer(self, request: InferRequest) -> InferResponse:
        """Validate, queue, batch, run and answer one request.

        Raises:
            ModelNotFound, InvalidInput, Overloaded, OverBudget, QueueTimeout, DeadlineExceeded,
            ShuttingDown, RuntimeFailed.
        """
        admitted = self._admit(request)
        model, _, _, batch, outputs = admitted
        try:
            result = model.batcher.run_now(
                request.inputs, batch=batch, outputs=outputs, deadline_ns=request.deadline_ns
            )
            if result is None:
                result = await model.batcher.submit(
                    request.inputs,
                    batch=batch,
                    outputs=outputs,
                    timeout_us=request.timeout_us,
                    deadline_ns=request.deadline_ns,
                    priority=request.priority,
                )
        except BaseException as exc:
            self._failed(admitted, exc)
            raise
        return self._answered(admitted, request, result)

    def infer_nowait(self, request: InferRequest, done: InferDone) -> asyncio.Future[Any] | None:
        """`infer` without a task of its own (ModelStreamInfer runs many requests of one stream at once).

        `done(response, None)` or `done(None, error)` is called on the event loop when the request is
        answered: later, or before this returns when the model answered at once (`DynamicBatcher.run_now`;
        the result is then None). Cancelling the returned future drops the request (counted CANCELED;
        `done` is not called).

        Raises:
            ModelNotFound, InvalidInput, Overloaded, OverBudget, ShuttingDown: refused before queueing.
        """
        admitted = self._admit(request)
        model, _, _, batch, outputs = admitted
        try:
            result = model.batcher.run_now(
                request.inputs, batch=batch, outputs=outputs, deadline_ns=request.deadline_ns
            )
        except BaseException as exc:
            self._failed(admitted, exc)
            done(None, exc)
            return None
        if result is not None:
            done(self._answered(admitted, request, result), None)
            return None
        try:
            future = model.batcher.enqueue(
                request.inputs,
                batch=batch,
                outputs=outputs,
                timeout_us=request.timeout_us,
                deadline_ns=request.deadline_ns,
                priority=request.priority,
                done=functools.partial(self._settle, admitted, request, done),
            )
        except BaseException as exc:
            self._failed(admitted, exc)
            raise
        return future

    def _settle(
        self, admitted: _Admitted, request: InferRequest, done: InferDone, future: asyncio.Future[BatchResult]
    ) -> None:
        if future.cancelled():
            self._failed(admitted, asyncio.CancelledError())
            return
        error = future.exception()
        if error is not None:
            self._failed(admitted, error)
            done(None, error)
        else:
            done(self._answered(admitted, request, future.result()), None)

    def _admit(self, request: InferRequest) -> _Admitted:
        """Check, take the request's bytes from the budget and validate it; raises what `infer` raises
        before queueing (a refusal after the model is known counts as its failure)."""
        if not self._accepting:
            self.check_accepting()
        start = self._clock.now_ns()
        model = self.model(request.model_name, request.model_version)
        size = request_bytes(request.inputs)
        self._inflight += 1
        try:
            self._budget.reserve(size)
        except BaseException as exc:
            self._failed((model, start, 0, 0, ()), exc)
            raise
        try:
            batch, outputs = model.validate(request)
        except BaseException as exc:
            self._failed((model, start, size, 0, ()), exc)
            raise
        return model, start, size, batch, outputs

    def _release(self, size: int) -> None:
        self._budget.release(size)
        self._inflight -= 1
        if self._inflight == 0 and self._drained is not None:
            if not self._drained.done():
                self._drained.set_result(None)
            self._drained = None

    def _failed(self, admitted: _Admitted, error: BaseException) -> None:
        model, start, size, _, _ = admitted
        if isinstance(error, EdgeperfServerError):
            model.stats.record_failure(request_ns=self._clock.now_ns() - start, reason=error.reason)
        elif isinstance(error, asyncio.CancelledError):
            model.stats.record_failure(request_ns=self._clock.now_ns() - start, reason="CANCELED")
        self._release(size)

    def _answered(self, admitted: _Admitted, request: InferRequest, result: BatchResult) -> InferResponse:
        model, start, size, _, _ = admitted
        self._release(size)
        model.stats.record_success(request_ns=self._clock.now_ns() - start, timings=result.timings)
        return InferResponse(
            model_name=model.name,
            model_version=model.version,
            id=request.id,
            outputs=result.outputs,
            timings=result.timings,
        )

    def record_rejected(self, name: str, version: str, error: EdgeperfServerError, request_ns: int) -> None:
        """Count a request the edge refused before `infer` (its bytes did not convert) as a failure of
        its model, as Triton does; a request naming no served model is charged to nobody."""
        try:
            model = self.model(name, version)
        except ModelNotFound:
            return
        model.stats.record_failure(request_ns=request_ns, reason=error.reason)

    def statistics(self, name: str = "", version: str = "") -> list[ModelStatistics]:
        """Statistics of one model version, all versions of a model ("" version) or every model ("" name).

        Raises:
            ModelNotFound: unknown model or version.
        """
        if not name:
            chosen = [
                m for _, vs in sorted(self._models.items()) for _, m in sorted(vs.items(), key=_by_version)
            ]
        elif version:
            chosen = [self.model(name, version)]
        else:
            self.model(name)
            chosen = [m for _, m in sorted(self._models[name].items(), key=_by_version)]
        return [m.stats.snapshot() for m in chosen]

    def queue_depth(self, name: str, version: str = "") -> int:
        """Requests waiting in the model's queue (not yet executing)."""
        return self.model(name, version).batcher.queue_depth

    def check_accepting(self) -> None:
        """Raise what `infer` would raise for a request arriving now, if it would be refused outright.

        The edge calls this before converting a request, so that a draining server answers
        UNAVAILABLE whatever the request holds.

        Raises:
            ShuttingDown: not opened yet, draining (SHUTDOWN_MESSAGE) or closed.
        """
        if not self._accepting:  # NOTE: only ever True while opened (`ready`), and cheaper to read
            if self._state is CoreState.UNOPENED:
                raise ShuttingDown("the inference core is not open yet")
            raise ShuttingDown(SHUTDOWN_MESSAGE)

    def stop_accepting(self) -> None:
        """From now on `infer` raises ShuttingDown and `ready` is False."""
        self._accepting = False

    async def drain(self, grace_s: float) -> bool:
        """Wait up to `grace_s` for requests already accepted to finish; True if all did."""
        if self._inflight == 0:
            return True
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()
        done, _ = await asyncio.wait((self._drained,), timeout=grace_s)
        return bool(done)

    async def close(self, grace_s: float = 30.0) -> None:
        """stop_accepting, drain for up to `grace_s`, then stop the batchers and release sessions.

        Requests still queued after the grace period fail with ShuttingDown. Idempotent.
        """
        if self._state is not CoreState.OPENED:
            self._state = CoreState.CLOSED
            return
        self.stop_accepting()
        drained = await self.drain(grace_s)
        models = [m for vs in self._models.values() for m in vs.values()]
        for model in models:
            await model.batcher.close(reject_queued=not drained)
        for model in models:
            await model.pool.close()
        self._state = CoreState.CLOSED


def _by_version(item: tuple[str, Any]) -> int:
    return int(item[0])
