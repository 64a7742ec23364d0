"""The official MLPerf LoadGen (`mlperf_loadgen`) driving edgeperf's SUT and QSL, for runs that must come from it.

`StartTest` blocks, so it runs on a worker thread while the asyncio event loop keeps serving the SUT.
LoadGen calls the issue callback (`ConstructFastSUT`) on its issue thread holding the GIL; the callback only hands the samples to the
event loop (`call_soon_threadsafe`) and returns. Completions are reported to LoadGen with
`QuerySamplesComplete` from the event loop thread (it releases the GIL and may be called from any
thread). LoadGen takes its own completion timestamp on that call, so its latencies include the response
decoding that edgeperf's own timestamps exclude. LoadGen's logger is process-wide: run one test per process.

LoadGen cannot be stopped once `StartTest` runs. When `stop` is set (Ctrl-C), the bridge answers every
outstanding and later sample at once as failed, without the server, and gives LoadGen `STOP_GRACE_S` to
end by itself (an Offline run does); otherwise its thread is abandoned with the logs rewritten complete
(`edgeperf.client.issue.loadgen_salvage`), and the process must end with `os._exit` (`loadgen_still_running`):
the thread keeps calling into Python, and the SUT and QSL handles stay alive until then (destroying them
under a running test is what crashed).
"""

from __future__ import annotations

import array
import asyncio
import importlib
import importlib.metadata
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from edgeperf.client.errors import RunSetupError
from edgeperf.client.issue.sut import STATUS_OK, QuerySample, QuerySampleResponse, SystemUnderTest
from edgeperf.client.plan.qsl import QuerySampleLibrary
from edgeperf.client.plan.settings import TestSettings

__all__ = [
    "OfficialRun",
    "check_rules",
    "installed_rules",
    "loadgen_settings",
    "loadgen_still_running",
    "read_detail_log",
    "run_official",
]

STOP_GRACE_S = 2.0
"""After a stop, how long LoadGen may take to end by itself before its thread is abandoned."""
_THREAD_NAME = "mlperf_loadgen StartTest"


def loadgen_still_running() -> bool:
    """True while an abandoned official LoadGen test runs in this process: exit with `os._exit` then."""
    return any(t.name == _THREAD_NAME and t.is_alive() for t in threading.enumerate())


# edgeperf name -> LoadGen attribute, where they differ.
_RENAMED = {"server_ttft_latency_ns": "ttft_latency", "server_tpot_latency_ns": "tpot_latency"}
_NOT_LOADGEN = {"scenario", "mode", "rules"}


def _module() -> Any:
    try:
        return importlib.import_module("mlperf_loadgen")
    except ImportError as exc:
        raise RunSetupError("the official LoadGen is not installed (pip install mlcommons-loadgen)") from exc


_DISTRIBUTIONS = ("mlcommons-loadgen", "mlperf-loadgen", "mlperf_loadgen")


def _installed_version() -> str | None:
    for name in _DISTRIBUTIONS:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def installed_rules() -> tuple[str, str]:
    """(edgeperf's rules name, version) of the installed official LoadGen: `v2.1` for a 2.1 build,
    `current` for any later one (edgeperf's `current` is LoadGen 6.0.17).

    Raises:
        RunSetupError: no LoadGen is installed, or its version cannot be read.
    """
    _module()
    version = _installed_version()
    if version is None:
        raise RunSetupError(
            "cannot tell which version of the official LoadGen is installed (no package metadata for "
            f"{' / '.join(_DISTRIBUTIONS)}), so not which rules it follows"
        )
    return ("v2.1" if version.split(".")[:2] == ["2", "1"] else "current"), version


def check_rules(rules: str) -> None:
    """Refuse `--rules` the installed official LoadGen does not follow.

    The rules are more than mlperf.conf's values: how loadable sets are drawn, how equal issue pads,
    which keys and log lines exist differ between LoadGen 2.1 and later ones, and the official LoadGen
    applies its own. edgeperf passes the preset's values either way, so only a matching LoadGen gives
    the run those rules.

    Raises:
        RunSetupError: the installed LoadGen follows other rules, or none is installed.
    """
    follows, version = installed_rules()
    if follows != rules:
        raise RunSetupError(
            f"--official-loadgen runs the installed mlperf_loadgen {version}, which follows the {follows} "
            f"rules, not --rules {rules} (loadable sets, equal-issue padding and log keys differ): pass "
            f"--rules {follows}, or drop --official-loadgen to run the {rules} rules with edgeperf's LoadGen"
        )


def loadgen_settings(settings: TestSettings) -> Any:
    """An `mlperf_loadgen.TestSettings` with the same requested values (None becomes LoadGen's 0)."""
    lg = _module()
    out = lg.TestSettings()
    out.scenario = getattr(lg.TestScenario, settings.scenario.value)
    out.mode = getattr(lg.TestMode, settings.mode.value)
    for f in fields(settings):
        if f.name in _NOT_LOADGEN or f.name.startswith("_"):
            continue
        name = _RENAMED.get(f.name, f.name)
        if not hasattr(out, name):
            continue
        value = getattr(settings, f.name)
        setattr(out, name, 0 if value is None else value)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class OfficialRun:
    """Where the official LoadGen wrote its logs, and the detail log's `result_*` values."""

    out_dir: Path
    detail: dict[str, Any]
    failed_samples: int
    """Samples edgeperf's SUT reported as failed (LoadGen has no notion of a failed sample)."""
    interrupted: bool = False
    """The run was stopped (Ctrl-C); the result is INVALID whatever LoadGen logged."""
    completed_samples: int = 0
    """Samples the SUT answered (not answered for it on a stop)."""


def read_detail_log(path: Path) -> dict[str, Any]:
    """The `key -> value` pairs of a LoadGen `mlperf_log_detail.txt` (the last value of each key)."""
    out: dict[str, Any] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(":::MLLOG "):
            entry = json.loads(line[len(":::MLLOG ") :])
            out[str(entry.get("key"))] = entry.get("value")
    return out


class _Bridge:
    def __init__(self, lg: Any, sut: SystemUnderTest, loop: asyncio.AbstractEventLoop) -> None:
        self._lg = lg
        self._sut = sut
        self._loop = loop
        self._tasks: set[asyncio.Task[None]] = set()
        self.failed = 0
        self.answered = 0
        # NOTE: the issue thread and the event loop both touch these: a sample id must reach
        # QuerySamplesComplete exactly once, whether the server or a stop answers it.
        self._lock = threading.Lock()
        self._outstanding: set[int] = set()
        self._stopped = False

    def issue(self, ids: Sequence[int], indices: Sequence[int]) -> None:
        # NOTE: LoadGen's issue thread, holding the GIL: copy what we need and hand over at once.
        # ConstructFastSUT passes plain integer lists, about 10x cheaper than QuerySample objects.
        with self._lock:
            stopped = self._stopped
            if not stopped:
                self._outstanding.update(ids)
        if stopped:
            # NOTE: never touch the event loop here: after a stop it may be closed.
            self._answer_empty(list(ids))
            return
        converted = [QuerySample(i, x) for i, x in zip(ids, indices, strict=True)]
        self._loop.call_soon_threadsafe(self._start, converted)

    def _start(self, samples: list[QuerySample]) -> None:
        if self._stopped:  # NOTE: handed over just before a stop, which has answered them
            return
        task = self._loop.create_task(self._sut.issue_query(samples, self.complete))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def complete(self, responses: Sequence[QuerySampleResponse], completed_ns: int) -> None:
        with self._lock:
            live = [r for r in responses if r.id in self._outstanding]
            self._outstanding.difference_update(r.id for r in live)
            failed = sum(r.status != STATUS_OK for r in live)
            self.failed += failed
            self.answered += len(live) - failed
        buffers: list[array.array[int]] = []
        out = []
        for response in live:
            buffer = array.array("B", response.data)
            buffers.append(buffer)
            address, length = buffer.buffer_info()
            out.append(self._lg.QuerySampleResponse(response.id, address if length else 0, length))
        if out:
            self._lg.QuerySamplesComplete(out)
        del buffers  # NOTE: the buffers had to live until LoadGen copied the data

    def stop(self) -> None:
        """Answer every outstanding sample now, and every later one as it is issued, as failed."""
        with self._lock:
            self._stopped = True
            pending = sorted(self._outstanding)
            self._outstanding.clear()
        for task in self._tasks:
            task.cancel()
        self._answer_empty(pending)

    async def settle(self) -> None:
        """Wait for the requests a stop cancelled, so none outlives the SUT or loses its exception."""
        tasks = set(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_GRACE_S)
            for task in tasks:
                if task.done() and not task.cancelled():
                    task.exception()  # NOTE: observed: a request failing as it is cancelled is expected

    def _answer_empty(self, ids: list[int]) -> None:
        with self._lock:
            self.failed += len(ids)
        if ids:
            self._lg.QuerySamplesComplete([self._lg.QuerySampleResponse(i, 0, 0) for i in ids])

    def flush(self) -> None:
        with self._lock:
            if self._stopped:
                return
        self._loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        if self._stopped:
            return
        task = self._loop.create_task(self._sut.flush_queries())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _start_test(lg: Any, args: tuple[Any, ...], loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
    """`StartTestWithLogSettings(*args)` on a daemon thread; the future resolves when it returns.

    Not `asyncio.to_thread`: the default executor's threads are joined at exit, and an abandoned test
    never returns.
    """
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def body() -> None:
        error: BaseException | None = None
        try:
            lg.StartTestWithLogSettings(*args)
        except BaseException as exc:  # NOTE: handed to the awaiting coroutine, not lost on the thread
            error = exc
        if not loop.is_closed():
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=body, name=_THREAD_NAME, daemon=True).start()
    return done


async def run_official(
    sut: SystemUnderTest,
    qsl: QuerySampleLibrary,
    settings: TestSettings,
    out_dir: Path,
    *,
    stop: asyncio.Event | None = None,
) -> OfficialRun:
    """Run `settings` with the official LoadGen against `sut`, its logs under `out_dir`.

    The QSL's `load_samples`/`unload_samples` are called from LoadGen's thread while nothing is
    being issued. Call from the event loop that serves `sut`. Setting `stop`, or cancelling the
    call, ends the run early: the logs are complete, the result `interrupted`, and if LoadGen did not
    end within `STOP_GRACE_S` its thread is left running (`loadgen_still_running()`).
    """
    lg = _module()
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    loop = asyncio.get_running_loop()
    bridge = _Bridge(lg, sut, loop)
    sut_handle = lg.ConstructFastSUT(bridge.issue, bridge.flush)
    qsl_handle = lg.ConstructQSL(
        qsl.total_sample_count,
        qsl.performance_sample_count,
        lambda indices: qsl.load_samples([int(i) for i in indices]),
        lambda indices: qsl.unload_samples([int(i) for i in indices]),
    )
    log_output = lg.LogOutputSettings()
    log_output.outdir = str(out_dir)
    log_output.copy_summary_to_stdout = False
    log_settings = lg.LogSettings()
    log_settings.log_output = log_output
    log_settings.enable_trace = False
    # NOTE: a missing audit.config path keeps a stray file in the working directory from applying.
    args = (
        sut_handle,
        qsl_handle,
        loadgen_settings(settings),
        log_settings,
        str(out_dir / "no-audit.config"),
    )
    test = _start_test(lg, args, loop)
    interrupted = await _wait(test, stop)
    finished = True
    if interrupted:
        bridge.stop()
        finished = await _ends_within(test, STOP_GRACE_S)
        await bridge.settle()
    if finished:
        try:
            await test
        finally:
            lg.DestroyQSL(qsl_handle)
            lg.DestroyFastSUT(sut_handle)
    # NOTE: otherwise the handles stay alive: LoadGen's thread uses them until the process exits.
    if interrupted:
        from edgeperf.client.issue.loadgen_salvage import salvage_logs

        # NOTE: also when LoadGen ended by itself: its summary would be computed over the samples the stop
        # answered at once, and could read VALID.
        await asyncio.to_thread(
            salvage_logs,
            out_dir,
            scenario=settings.scenario.value,
            mode=settings.mode.value,
            reason="Run interrupted by the user; the result is INVALID.",
            completed_samples=bridge.answered,
        )
    detail = await asyncio.to_thread(read_detail_log, out_dir / "mlperf_log_detail.txt")
    return OfficialRun(
        out_dir=out_dir,
        detail=detail,
        failed_samples=bridge.failed,
        interrupted=interrupted,
        completed_samples=bridge.answered,
    )


async def _ends_within(test: asyncio.Future[None], timeout_s: float) -> bool:
    """Whether the test ends within `timeout_s`; a cancellation (a second Ctrl-C) stops waiting."""
    try:
        finished, _ = await asyncio.wait([test], timeout=timeout_s)
    except asyncio.CancelledError:
        return test.done()
    return bool(finished)


async def _wait(test: asyncio.Future[None], stop: asyncio.Event | None) -> bool:
    """Wait for the test to end; True if `stop` was set (or this call cancelled) first."""
    waiter = asyncio.ensure_future(stop.wait()) if stop is not None else None
    try:
        pending: list[asyncio.Future[Any]] = [test] if waiter is None else [test, waiter]
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        # NOTE: a second Ctrl-C cancels the run: ending it is the same as a stop, just without waiting.
        return True
    finally:
        if waiter is not None:
            waiter.cancel()
    return not test.done()
