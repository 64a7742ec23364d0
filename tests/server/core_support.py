"""Helpers for the server-core tests: tiny ONNX graphs, repository writers, a fake clock, fake runtimes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeperf.benchmarks.tiny.model import build_graph, config_text


def write_tiny(repo: Path, name: str = "tiny", *, versions: Sequence[int] = (1,), **config: Any) -> Path:
    """The tiny model (OUTPUT0 = 2 * INPUT0 + 1) with a config from benchmarks.tiny.model.config_text."""
    model_dir = repo / name
    for version in versions:
        (model_dir / str(version)).mkdir(parents=True, exist_ok=True)
        onnx.save(build_graph(), str(model_dir / str(version) / "model.onnx"))
    (model_dir / "config.pbtxt").write_text(config_text(name, **config), encoding="utf-8")
    return model_dir


def write_reshape_model(repo: Path, name: str = "fragile", max_batch_size: int = 8) -> Path:
    """INPUT0 FP32 [N, -1] -> OUTPUT0 = Reshape(INPUT0, [-1, 4]): fails at run time unless N*len % 4 == 0."""
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["INPUT0", "shape"], ["OUTPUT0"])],
        name,
        [helper.make_tensor_value_info("INPUT0", TensorProto.FLOAT, ["n", "k"])],
        [helper.make_tensor_value_info("OUTPUT0", TensorProto.FLOAT, ["m", 4])],
        initializer=[numpy_helper.from_array(np.array([-1, 4], dtype=np.int64), "shape")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model_dir = repo / name
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(model_dir / "1" / "model.onnx"))
    (model_dir / "config.pbtxt").write_text(
        f"""
        max_batch_size: {max_batch_size}
        input [ {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] }} ]
        output [ {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] }} ]
        """,
        encoding="utf-8",
    )
    return model_dir


class FakeClock:
    """A `clock.Clock` whose time moves only when the test calls `advance`."""

    def __init__(self) -> None:
        self.now = 1_000_000_000
        self._timers: list[tuple[int, asyncio.Future[None]]] = []

    def now_ns(self) -> int:
        return self.now

    async def wait(
        self, future: asyncio.Future[Any], deadline_ns: int | None, *, offload: Any = None
    ) -> bool:
        if future.done():
            return True
        if deadline_ns is not None and self.now >= deadline_ns:
            return False
        timer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if deadline_ns is not None:
            self._timers.append((deadline_ns, timer))
        try:
            await asyncio.wait([future, timer], return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        return future.done()

    async def advance(self, ns: int) -> None:
        """Let pending work run, move time forward, fire due timers, and let the loop run what they wake."""
        await settle()
        self.now += ns
        due = [t for d, t in self._timers if d <= self.now]
        self._timers = [(d, t) for d, t in self._timers if d > self.now and not t.done()]
        for timer in due:
            if not timer.done():
                timer.set_result(None)
        await settle()


async def settle(rounds: int = 20) -> None:
    """Give queued callbacks a few loop iterations."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class GatedRuntime:
    """OUTPUT0 = INPUT0 * 2 + 1, blocking in `run` while the gate is closed; records every batch."""

    def __init__(self, *, fail_on: float | None = None) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.batches: list[tuple[int, ...]] = []
        self.first_values: list[float] = []
        self.started = threading.Event()
        self.fail_on = fail_on
        self.closed = False

    def run(
        self, inputs: Mapping[str, npt.NDArray[Any]], output_names: Sequence[str]
    ) -> dict[str, npt.NDArray[Any]]:
        self.started.set()
        self.gate.wait(10)
        x = inputs["INPUT0"]
        self.batches.append(tuple(x.shape))
        self.first_values.append(float(x.flat[0]))
        if self.fail_on is not None and bool(np.any(x == self.fail_on)):
            raise ValueError(f"poisoned input {self.fail_on}")
        return {"OUTPUT0": x * 2 + 1}

    def close(self) -> None:
        self.closed = True
