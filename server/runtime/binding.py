"""Running a GPU session through ONNX Runtime's I/O binding (the CPU path, `session.run`, is untouched).

Plain `session.run` on a CUDA/TensorRT session copies each input to the device and each output back
through buffers ORT allocates per run. With I/O binding:

- each input is copied once, from the batch array the batcher built to device memory (`bind_cpu_input`,
  or `update_inplace` into a fixed device buffer when CUDA graphs are on);
- each output with a fixed shape is written by ORT straight into a host array allocated for this run
  (`bind_output(..., buffer_ptr)`), so there is no second host copy. The host array is new for every run
  rather than reused: the batcher may still be slicing the previous batch's outputs for its responses
  when the instance runs the next batch. Outputs with a variable dimension are allocated by ORT on the
  host (`bind_output(name, "cpu")`).
- with CUDA graphs (`enable_cuda_graph`), every input and output lives in a device buffer whose address
  never changes for a given batch size, and each batch size gets its own graph id (ORT's `gpu_graph_id`
  run option), so that one capture per batch size is replayed afterwards. CUDA graphs need fixed
  shapes: the config check (`check_graph_shapes`) refuses a variable dimension.

Every instance has its own session, hence its own CUDA stream; instances on one GPU run concurrently.
The ORT objects are reached through `OrtApi`, so tests drive this with a fake session and binding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edgeperf.server.errors import ModelConfigError
from edgeperf.server.model_config import ModelConfig
from edgeperf.server.types import numpy_dtype

__all__ = ["BoundRunner", "OrtApi", "check_graph_shapes", "ort_api"]


class OrtApi(Protocol):
    """The two ORT factories the runner needs (onnxruntime itself satisfies this through a shim)."""

    def device_array(self, shape: tuple[int, ...], dtype: np.dtype[Any], device_id: int) -> Any:
        """An OrtValue of `shape` in CUDA memory on `device_id`."""
        ...

    def run_options(self, graph_id: int | None) -> Any:
        """RunOptions; with `gpu_graph_id` set when `graph_id` is not None."""
        ...


@dataclass(slots=True)
class _GraphSlot:
    """Fixed device buffers of one batch size, and the CUDA graph id they are captured under."""

    graph_id: int
    binding: Any
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    run_options: Any


def check_graph_shapes(config: ModelConfig) -> None:
    """CUDA graphs replay fixed shapes: every input and output dim must be fixed.

    Raises:
        ModelConfigError: naming the first tensor with a variable dimension.
    """
    for kind, tensors in (("input", config.inputs), ("output", config.outputs)):
        for t in tensors:
            if any(d < 0 for d in t.model_dims) or t.datatype == "BYTES":
                raise ModelConfigError(
                    config.source,
                    "optimization.cuda.graphs",
                    f"CUDA graphs need fixed shapes and numeric types; {kind} '{t.name}' has dims "
                    f"{list(t.model_dims)} and type {t.datatype}",
                )


class BoundRunner:
    """Runs one GPU session with I/O binding; optionally with one CUDA graph per batch size."""

    def __init__(
        self, session: Any, config: ModelConfig, *, device_id: int, cuda_graphs: bool, api: OrtApi
    ) -> None:
        self._session = session
        self._device_id = device_id
        self._cuda_graphs = cuda_graphs
        self._api = api
        self._batching = config.max_batch_size > 0
        self._outputs = {t.name: (t.model_dims, numpy_dtype(t.datatype)) for t in config.outputs}
        self._inputs = {t.name: numpy_dtype(t.datatype) for t in config.inputs}
        self._slots: dict[tuple[tuple[int, ...], ...], _GraphSlot] = {}
        self._binding = None if cuda_graphs else session.io_binding()
        self._plain_options = api.run_options(None)

    def _output_shape(self, name: str, batch: int | None) -> tuple[int, ...] | None:
        dims, _ = self._outputs[name]
        if any(d < 0 for d in dims):
            return None
        return (batch, *dims) if batch is not None else dims

    def run(
        self, inputs: Mapping[str, npt.NDArray[Any]], output_names: Sequence[str]
    ) -> dict[str, npt.NDArray[Any]]:
        batch = next(iter(inputs.values())).shape[0] if self._batching and inputs else None
        if self._cuda_graphs:
            return self._run_graph(inputs, output_names, batch)
        binding = self._binding
        assert binding is not None
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        for name, array in inputs.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(array))
        results: dict[str, npt.NDArray[Any]] = {}
        ort_allocated: list[str] = []
        for name in output_names:
            shape = self._output_shape(name, batch)
            if shape is None:
                binding.bind_output(name, "cpu")
                ort_allocated.append(name)
                continue
            host = np.empty(shape, dtype=self._outputs[name][1])
            binding.bind_output(name, "cpu", 0, host.dtype, list(shape), host.ctypes.data)
            results[name] = host
        self._session.run_with_iobinding(binding, self._plain_options)
        if ort_allocated:
            # NOTE: copy_outputs_to_cpu returns every bound output in binding order; keep ORT's ones.
            copied = dict(zip(output_names, binding.copy_outputs_to_cpu(), strict=True))
            results.update({name: copied[name] for name in ort_allocated})
        return {name: results[name] for name in output_names}

    def _slot(self, inputs: Mapping[str, npt.NDArray[Any]], batch: int | None) -> _GraphSlot:
        key = tuple(tuple(a.shape) for a in inputs.values())
        slot = self._slots.get(key)
        if slot is not None:
            return slot
        binding = self._session.io_binding()
        device_inputs = {}
        for name, array in inputs.items():
            device_inputs[name] = self._api.device_array(
                tuple(array.shape), self._inputs[name], self._device_id
            )
            binding.bind_ortvalue_input(name, device_inputs[name])
        device_outputs = {}
        for name, (_, dtype) in self._outputs.items():
            shape = self._output_shape(name, batch)
            assert shape is not None  # NOTE: check_graph_shapes refused variable dims at load
            device_outputs[name] = self._api.device_array(shape, dtype, self._device_id)
            binding.bind_ortvalue_output(name, device_outputs[name])
        # NOTE: graph id 0 is ORT's default graph; ids from 1 keep each batch size's capture apart.
        graph_id = len(self._slots) + 1
        slot = _GraphSlot(graph_id, binding, device_inputs, device_outputs, self._api.run_options(graph_id))
        self._slots[key] = slot
        return slot

    def _run_graph(
        self, inputs: Mapping[str, npt.NDArray[Any]], output_names: Sequence[str], batch: int | None
    ) -> dict[str, npt.NDArray[Any]]:
        slot = self._slot(inputs, batch)
        for name, array in inputs.items():
            slot.inputs[name].update_inplace(np.ascontiguousarray(array))
        self._session.run_with_iobinding(slot.binding, slot.run_options)
        return {name: slot.outputs[name].numpy() for name in output_names}

    @property
    def graph_count(self) -> int:
        """How many batch sizes have a CUDA graph (0 without CUDA graphs)."""
        return len(self._slots)


def ort_api(ort: Any) -> OrtApi:
    """The OrtApi of the real onnxruntime module."""

    class _Api:
        def device_array(self, shape: tuple[int, ...], dtype: np.dtype[Any], device_id: int) -> Any:
            return ort.OrtValue.ortvalue_from_shape_and_type(list(shape), dtype.type, "cuda", device_id)

        def run_options(self, graph_id: int | None) -> Any:
            options = ort.RunOptions()
            if graph_id is not None:
                options.add_run_config_entry("gpu_graph_id", str(graph_id))
            return options

    return _Api()
