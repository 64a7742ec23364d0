"""ModelStreamInfer's writers: an answer given at once is written by the reader, the others by the call's task;
every request is answered once, and a failed write ends the call with its error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.server.core import InferenceCore
from edgeperf.server.grpc_service import InferenceServicer
from tests.server.core_support import write_tiny


class StreamContext:
    """The parts of a grpc.aio context ModelStreamInfer uses; `write` keeps the answers (or fails)."""

    def __init__(self, *, fail_on_write: int = 0) -> None:
        self.answers: list[pb.ModelStreamInferResponse] = []
        self.writers: set[str] = set()
        """The tasks that wrote answers (the reader's or the call's)."""
        self.written = asyncio.Event()
        self._fail_on_write = fail_on_write
        self._call_task: asyncio.Task[Any] | None = None

    @property
    def call_task(self) -> asyncio.Task[Any] | None:
        return self._call_task

    def invocation_metadata(self) -> tuple[Any, ...]:
        self._call_task = asyncio.current_task()  # NOTE: asked once, by the call's own task
        return ()

    def time_remaining(self) -> float | None:
        return None

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    async def write(self, message: pb.ModelStreamInferResponse) -> None:
        if len(self.answers) + 1 == self._fail_on_write:
            raise RuntimeError("the peer went away")
        await asyncio.sleep(0)  # NOTE: a real write yields to the loop too
        task = asyncio.current_task()
        self.writers.add("reader" if task is not None and task is not self.call_task else "call")
        self.answers.append(message)
        self.written.set()

    async def abort(self, code: Any, details: str) -> None:
        raise AssertionError(f"aborted: {code} {details}")


def message(model: str, index: int) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=model, id=str(index))
    request.inputs.add(name="INPUT0", datatype="FP32", shape=[1, 16])
    request.raw_input_contents.append(np.full(16, index, "<f4").tobytes())
    return request


async def one_at_a_time(
    context: StreamContext, model: str, count: int
) -> AsyncIterator[pb.ModelInferRequest]:
    for index in range(count):
        context.written.clear()
        yield message(model, index)
        if index + 1 < count:
            await asyncio.wait_for(context.written.wait(), 10)


async def burst(models: tuple[str, ...], count: int) -> AsyncIterator[pb.ModelInferRequest]:
    for index in range(count):
        yield message(models[index % len(models)], index)


def check_answers(context: StreamContext, count: int) -> list[str]:
    ids = [answer.infer_response.id for answer in context.answers]
    assert sorted(ids, key=int) == [str(i) for i in range(count)]
    for answer in context.answers:
        assert not answer.error_message
        index = int(answer.infer_response.id)
        values = np.frombuffer(answer.infer_response.raw_output_contents[0], "<f4")
        np.testing.assert_array_equal(values, np.full(16, 2.0 * index + 1, np.float32))
    return ids


@pytest.mark.parametrize("inline", [True, False])
async def test_one_request_at_a_time_is_answered_in_order(tmp_path: Path, inline: bool) -> None:
    write_tiny(tmp_path, parameters={"inline_execution": "1"} if inline else None)
    context = StreamContext()
    async with InferenceCore(tmp_path, warmup=False) as core:
        servicer = InferenceServicer(core, max_send_message_bytes=2**26)
        await asyncio.wait_for(servicer.ModelStreamInfer(one_at_a_time(context, "tiny", 20), context), 30)
        (stats,) = core.statistics("tiny")
        assert core.budget.used_bytes == 0
    assert check_answers(context, 20) == [str(i) for i in range(20)]
    assert context.writers == ({"reader"} if inline else {"call"})
    assert stats.inference_stats.success.count == 20
    assert [(b.batch_size, b.compute_infer.count) for b in stats.batch_stats] == [(1, 20)]


async def test_answers_at_once_and_answers_from_the_instance_thread_share_one_stream(tmp_path: Path) -> None:
    write_tiny(tmp_path, "inline", parameters={"inline_execution": "1"})
    write_tiny(tmp_path, "threaded")
    context = StreamContext()
    async with InferenceCore(tmp_path, warmup=False) as core:
        servicer = InferenceServicer(core, max_send_message_bytes=2**26)
        await asyncio.wait_for(servicer.ModelStreamInfer(burst(("inline", "threaded"), 200), context), 30)
        inline, threaded = core.statistics("inline")[0], core.statistics("threaded")[0]
        assert core.budget.used_bytes == 0
    check_answers(context, 200)
    assert context.writers == {"reader", "call"}
    assert inline.inference_stats.success.count == threaded.inference_stats.success.count == 100
    assert inline.inference_count == threaded.inference_count == 100


async def test_a_failed_write_ends_the_call_with_its_error(tmp_path: Path) -> None:
    write_tiny(tmp_path, parameters={"inline_execution": "1"})
    context = StreamContext(fail_on_write=3)
    async with InferenceCore(tmp_path, warmup=False) as core:
        servicer = InferenceServicer(core, max_send_message_bytes=2**26)
        with pytest.raises(RuntimeError, match="the peer went away"):
            await asyncio.wait_for(servicer.ModelStreamInfer(one_at_a_time(context, "tiny", 10), context), 30)
        assert core.budget.used_bytes == 0
    assert [answer.infer_response.id for answer in context.answers] == ["0", "1"]
