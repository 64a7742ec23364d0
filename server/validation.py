"""Checking a request against its model's config, and the synthetic inputs that warm a model up."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from edgeperf.server.errors import InvalidInput
from edgeperf.server.model_config import ModelConfig, TensorConfig
from edgeperf.server.types import InferRequest, datatype_of, numpy_dtype

__all__ = ["RequestValidator", "validate_request", "warmup_batch_sizes", "warmup_inputs"]

_SEEN_LIMIT: Final = 64
"""Input signatures a RequestValidator remembers as valid (forgets them all when full)."""


class RequestValidator:
    """`validate_request` for one model, with what it checks worked out once (it runs for every request).

    The fast path only decides that a request is valid; anything it does not accept goes through
    `validate_request`, which says precisely what is wrong.
    """

    def __init__(self, config: ModelConfig) -> None:
        self._config = config
        batching = config.max_batch_size > 0
        self._max_batch = config.max_batch_size
        self._batching = batching
        self._required = tuple(t.name for t in config.inputs if not t.optional)
        self._specs: dict[str, tuple[np.dtype[Any] | None, int, tuple[tuple[int, int], ...]]] = {}
        for t in config.inputs:
            dims = ((-1,) if batching else ()) + t.shape
            fixed = tuple((i, d) for i, d in enumerate(dims) if d != -1)
            dtype = None if t.datatype == "BYTES" else numpy_dtype(t.datatype)
            self._specs[t.name] = (dtype, len(dims), fixed)
        self._all_outputs = tuple(t.name for t in config.outputs)
        self._output_set = frozenset(self._all_outputs)
        self._seen: dict[tuple[str, np.dtype[Any], tuple[int, ...]], int] = {}
        """The batch size of each (name, dtype, shape) of a one-input request found valid before."""

    def __call__(self, request: InferRequest) -> tuple[int, tuple[str, ...]]:
        """As `validate_request(config, request)`."""
        inputs = request.inputs
        if len(inputs) != 1:
            return self._checked(request)
        # NOTE: a client sends the same one or few shapes again and again; their checks are remembered.
        ((name, array),) = inputs.items()
        if type(array) is not np.ndarray:
            return self._checked(request)
        key = (name, array.dtype, array.shape)
        batch = self._seen.get(key)
        if batch is None:
            batch, outputs = self._checked(request)
            if len(self._seen) >= _SEEN_LIMIT:
                self._seen.clear()
            self._seen[key] = batch
            return batch, outputs
        wanted = request.requested_outputs
        if not wanted:
            return batch, self._all_outputs
        if not self._output_set.issuperset(wanted):
            return validate_request(self._config, request)
        return batch, tuple(n for n in self._all_outputs if n in wanted)

    def _checked(self, request: InferRequest) -> tuple[int, tuple[str, ...]]:
        inputs = request.inputs
        batch = 0
        for name, array in inputs.items():
            spec = self._specs.get(name)
            if spec is None or type(array) is not np.ndarray:
                return validate_request(self._config, request)
            dtype, rank, fixed = spec
            shape = array.shape
            if dtype is None or array.dtype != dtype or len(shape) != rank:
                return validate_request(self._config, request)
            for i, d in fixed:
                if shape[i] != d:
                    return validate_request(self._config, request)
            tensor_batch = shape[0] if self._batching else 1
            if (batch and tensor_batch != batch) or not 1 <= tensor_batch <= max(self._max_batch, 1):
                return validate_request(self._config, request)
            batch = tensor_batch
        for name in self._required:
            if name not in inputs:
                return validate_request(self._config, request)
        wanted = request.requested_outputs
        if wanted:
            if not self._output_set.issuperset(wanted):
                return validate_request(self._config, request)
            return batch or 1, tuple(n for n in self._all_outputs if n in wanted)
        return batch or 1, self._all_outputs


def validate_request(config: ModelConfig, request: InferRequest) -> tuple[int, tuple[str, ...]]:
    """Check input names, count, datatypes and shapes, and the requested outputs.

    Returns:
        The request's batch size (1 for a model without batching) and the outputs to return in model
        output order.

    Raises:
        InvalidInput: with a message naming the model, the tensor and what was expected.
    """
    model = config.name
    known = {t.name: t for t in config.inputs}
    for name in request.inputs:
        if name not in known:
            raise InvalidInput(
                f"unexpected inference input '{name}' for model '{model}'; expected {_names(config.inputs)}"
            )
    missing = [t.name for t in config.inputs if not t.optional and t.name not in request.inputs]
    if missing:
        raise InvalidInput(
            f"expected {len(config.inputs)} inputs but got {len(request.inputs)} inputs for model '{model}';"
            f" missing {', '.join(repr(n) for n in missing)}"
        )
    batch = 0
    for name, array in request.inputs.items():
        tensor_batch = _check_tensor(config, known[name], array)
        if batch and tensor_batch != batch:
            raise InvalidInput(
                f"input '{name}' of model '{model}' has batch size {tensor_batch}, but other inputs have {batch}"
            )
        batch = tensor_batch
    output_names = {t.name for t in config.outputs}
    for name in request.requested_outputs:
        if name not in output_names:
            raise InvalidInput(
                f"unexpected inference output '{name}' for model '{model}'; expected {_names(config.outputs)}"
            )
    wanted = set(request.requested_outputs)
    outputs = tuple(t.name for t in config.outputs if not wanted or t.name in wanted)
    return batch or 1, outputs


def _names(tensors: tuple[TensorConfig, ...]) -> str:
    return ", ".join(f"'{t.name}'" for t in tensors)


def _check_tensor(config: ModelConfig, tensor: TensorConfig, array: Any) -> int:
    where = f"input '{tensor.name}' of model '{config.name}'"
    if not isinstance(array, np.ndarray):
        raise InvalidInput(f"{where} is a {type(array).__name__}, not an array")
    expected = numpy_dtype(tensor.datatype)
    ok = array.dtype.kind in ("O", "S") if tensor.datatype == "BYTES" else array.dtype == expected
    if not ok:
        raise InvalidInput(f"{where} has datatype {_datatype(array)}, expected {tensor.datatype}")
    shape = tuple(array.shape)
    batching = config.max_batch_size > 0
    dims = ((-1,) if batching else ()) + tensor.shape
    if len(shape) != len(dims) or any(d != -1 and d != s for d, s in zip(dims, shape, strict=True)):
        shown = [-1, *tensor.shape] if batching else list(tensor.shape)
        raise InvalidInput(f"{where} has shape {list(shape)}, expected {shown}")
    if not batching:
        return 1
    if not 1 <= shape[0] <= config.max_batch_size:
        raise InvalidInput(
            f"{where} has batch size {shape[0]}; it must be between 1 and max_batch_size {config.max_batch_size}"
        )
    return int(shape[0])


def _datatype(array: npt.NDArray[Any]) -> str:
    try:
        return datatype_of(array.dtype)
    except InvalidInput:
        return str(array.dtype)


def warmup_batch_sizes(config: ModelConfig) -> tuple[int, ...]:
    """1, 2, 4, ... up to max_batch_size, plus the preferred sizes and max_batch_size itself.

    Powers of two keep load time bounded while every size ONNX Runtime is likely to see soon is
    planned once; () batch sizes for a model without batching mean a single unbatched run.
    """
    mbs = config.max_batch_size
    if mbs == 0:
        return ()
    sizes = {1 << i for i in range(mbs.bit_length()) if 1 << i <= mbs} | {mbs}
    if config.dynamic_batching is not None:
        sizes |= set(config.dynamic_batching.preferred_batch_sizes)
    return tuple(sorted(sizes))


def warmup_inputs(config: ModelConfig) -> Iterator[Mapping[str, npt.NDArray[Any]]]:
    """Zero-filled inputs for each warm-up batch size (variable dims become 1)."""
    sizes: tuple[int | None, ...] = warmup_batch_sizes(config) or (None,)
    for size in sizes:
        inputs: dict[str, npt.NDArray[Any]] = {}
        for t in config.inputs:
            shape = ([size] if size is not None else []) + [d if d > 0 else 1 for d in t.shape]
            if t.datatype == "BYTES":
                inputs[t.name] = np.full(shape, b"", dtype=object)
            else:
                inputs[t.name] = np.zeros(shape, dtype=numpy_dtype(t.datatype))
        yield inputs
