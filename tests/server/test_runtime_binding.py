"""GPU I/O binding (server/runtime/binding.py) driven by a fake session, binding and device memory.

The fake computes OUTPUT0 = 2 * INPUT0 + 1 (and a variable-length output) the way ORT's run_with_iobinding
would: reading the bound inputs and writing into the bound outputs, through the raw host pointer for
preallocated host buffers.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeperf.server.errors import ModelConfigError
from edgeperf.server.model_config import ModelConfig, parse_model_config
from edgeperf.server.runtime.binding import BoundRunner, check_graph_shapes

CONFIG = """max_batch_size: 8
input { name: "INPUT0" data_type: TYPE_FP32 dims: [4] }
output { name: "OUTPUT0" data_type: TYPE_FP32 dims: [4] }
"""
VARIABLE = CONFIG + 'output { name: "LENGTHS" data_type: TYPE_INT64 dims: [-1] }\n'


def config(text: str) -> ModelConfig:
    return parse_model_config(text, path=Path("/repo/m/config.pbtxt"), model_name="m")


class FakeDeviceArray:
    """An OrtValue in "device" memory: numpy underneath, with a fixed address."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype[Any], device_id: int) -> None:
        self.array = np.zeros(shape, dtype)
        self.device_id = device_id
        self.updates = 0

    def update_inplace(self, host: np.ndarray) -> None:
        assert host.shape == self.array.shape and host.dtype == self.array.dtype
        self.array[...] = host
        self.updates += 1

    def numpy(self) -> np.ndarray:
        return self.array.copy()


class FakeApi:
    def __init__(self) -> None:
        self.arrays: list[FakeDeviceArray] = []

    def device_array(self, shape: tuple[int, ...], dtype: np.dtype[Any], device_id: int) -> FakeDeviceArray:
        array = FakeDeviceArray(shape, dtype, device_id)
        self.arrays.append(array)
        return array

    def run_options(self, graph_id: int | None) -> dict[str, str]:
        return {} if graph_id is None else {"gpu_graph_id": str(graph_id)}


class FakeBinding:
    def __init__(self) -> None:
        self.inputs: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}
        self.cpu_copies: dict[str, np.ndarray] = {}

    def clear_binding_inputs(self) -> None:
        self.inputs.clear()

    def clear_binding_outputs(self) -> None:
        self.outputs.clear()

    def bind_cpu_input(self, name: str, array: np.ndarray) -> None:
        assert array.flags.c_contiguous
        self.inputs[name] = array

    def bind_ortvalue_input(self, name: str, value: FakeDeviceArray) -> None:
        self.inputs[name] = value

    def bind_ortvalue_output(self, name: str, value: FakeDeviceArray) -> None:
        self.outputs[name] = value

    def bind_output(self, name: str, device_type: str = "cpu", device_id: int = 0, element_type: Any = None,
                    shape: list[int] | None = None, buffer_ptr: int | None = None) -> None:  # fmt: skip
        assert device_type == "cpu"
        self.outputs[name] = (element_type, shape, buffer_ptr)

    def copy_outputs_to_cpu(self) -> list[np.ndarray]:
        return [self.cpu_copies[name] for name in self.outputs]


class FakeSession:
    def __init__(self) -> None:
        self.runs: list[Any] = []
        self.bindings: list[FakeBinding] = []

    def io_binding(self) -> FakeBinding:
        binding = FakeBinding()
        self.bindings.append(binding)
        return binding

    def run_with_iobinding(self, binding: FakeBinding, run_options: Any) -> None:
        self.runs.append(run_options)
        x = binding.inputs["INPUT0"]
        x = x.array if isinstance(x, FakeDeviceArray) else x
        results = {"OUTPUT0": x * 2 + 1, "LENGTHS": np.arange(x.shape[0] + 1, dtype=np.int64)}
        for name, target in binding.outputs.items():
            if isinstance(target, FakeDeviceArray):
                target.array[...] = results[name]
            elif target[2] is None:
                binding.cpu_copies[name] = results[name]
            else:
                dtype, shape, pointer = target
                nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
                view = np.frombuffer((ctypes.c_char * nbytes).from_address(pointer), dtype=dtype)
                view[...] = results[name].ravel()
                binding.cpu_copies[name] = results[name]


def test_outputs_land_in_host_buffers_and_are_not_reused() -> None:
    session = FakeSession()
    runner = BoundRunner(session, config(CONFIG), device_id=1, cuda_graphs=False, api=FakeApi())
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    first = runner.run({"INPUT0": x}, ["OUTPUT0"])["OUTPUT0"]
    np.testing.assert_array_equal(first, x * 2 + 1)
    second = runner.run({"INPUT0": x + 1}, ["OUTPUT0"])["OUTPUT0"]
    # NOTE: the batcher may still be slicing the first batch's outputs; a new run must not overwrite them.
    np.testing.assert_array_equal(first, x * 2 + 1)
    np.testing.assert_array_equal(second, (x + 1) * 2 + 1)
    assert len(session.bindings) == 1  # one binding per instance, rebound per run
    assert runner.graph_count == 0


def test_a_variable_output_is_allocated_by_ort() -> None:
    runner = BoundRunner(FakeSession(), config(VARIABLE), device_id=0, cuda_graphs=False, api=FakeApi())
    x = np.zeros((3, 4), np.float32)
    out = runner.run({"INPUT0": x}, ["OUTPUT0", "LENGTHS"])
    assert list(out) == ["OUTPUT0", "LENGTHS"]
    np.testing.assert_array_equal(out["OUTPUT0"], np.ones((3, 4), np.float32))
    np.testing.assert_array_equal(out["LENGTHS"], np.arange(4))


def test_a_non_contiguous_input_is_bound_contiguously() -> None:
    runner = BoundRunner(FakeSession(), config(CONFIG), device_id=0, cuda_graphs=False, api=FakeApi())
    x = np.arange(16, dtype=np.float32).reshape(4, 4).T[:2]
    np.testing.assert_array_equal(runner.run({"INPUT0": x}, ["OUTPUT0"])["OUTPUT0"], x * 2 + 1)


def test_cuda_graphs_keep_one_set_of_device_buffers_per_batch_size() -> None:
    session, api = FakeSession(), FakeApi()
    runner = BoundRunner(session, config(CONFIG), device_id=2, cuda_graphs=True, api=api)
    for batch in (4, 4, 2, 4, 2):
        x = np.full((batch, 4), batch, np.float32)
        np.testing.assert_array_equal(runner.run({"INPUT0": x}, ["OUTPUT0"])["OUTPUT0"], x * 2 + 1)
    assert runner.graph_count == 2
    assert [r["gpu_graph_id"] for r in session.runs] == ["1", "1", "2", "1", "2"]
    # one input and one output buffer per batch size, all on the instance's GPU, inputs copied in place
    assert len(api.arrays) == 4
    assert {a.device_id for a in api.arrays} == {2}
    assert [a.updates for a in api.arrays if a.array.shape == (4, 4)] == [3, 0]


def test_cuda_graphs_need_fixed_shapes() -> None:
    with pytest.raises(ModelConfigError) as info:
        check_graph_shapes(config(VARIABLE))
    assert info.value.field == "optimization.cuda.graphs"
    assert "LENGTHS" in str(info.value)
    check_graph_shapes(config(CONFIG))


# ---- the same runner on the real onnxruntime's I/O binding (CPU memory): the ORT calls themselves


def test_real_ort_binding_with_preallocated_host_outputs(tmp_path: Path) -> None:
    import onnxruntime as ort

    from edgeperf.server.model_config import load_model_config
    from edgeperf.server.runtime.binding import ort_api
    from tests.server.core_support import write_tiny

    model_dir = write_tiny(tmp_path, max_batch_size=8)
    session = ort.InferenceSession(str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    runner = BoundRunner(
        session, load_model_config(model_dir), device_id=0, cuda_graphs=False, api=ort_api(ort)
    )
    for batch in (3, 1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 16)).astype(np.float32)
        out = runner.run({"INPUT0": x}, ["OUTPUT0"])["OUTPUT0"]
        np.testing.assert_allclose(out, x * 2 + 1, rtol=1e-6)
        assert out.shape == (batch, 16) and out.flags.owndata  # our own host array, not ORT's


def test_real_ort_binding_lets_ort_allocate_a_variable_output(tmp_path: Path) -> None:
    import onnxruntime as ort

    from edgeperf.server.model_config import load_model_config
    from edgeperf.server.runtime.binding import ort_api
    from tests.server.core_support import write_tiny

    model_dir = write_tiny(tmp_path, max_batch_size=0)  # dims [-1, 16]: the output shape is not known ahead
    session = ort.InferenceSession(str(model_dir / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    runner = BoundRunner(
        session, load_model_config(model_dir), device_id=0, cuda_graphs=False, api=ort_api(ort)
    )
    x = np.ones((5, 16), np.float32)
    np.testing.assert_array_equal(runner.run({"INPUT0": x}, ["OUTPUT0"])["OUTPUT0"], x * 3)


def test_ort_api_run_options_carry_the_graph_id() -> None:
    import onnxruntime as ort

    from edgeperf.server.runtime.binding import ort_api

    api = ort_api(ort)
    assert api.run_options(7).get_run_config_entry("gpu_graph_id") == "7"
    assert isinstance(api.run_options(None), ort.RunOptions)
