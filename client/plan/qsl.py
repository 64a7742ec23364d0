"""The query sample library: samples loaded and serialized to KServe v2 request bytes before the timed run.

The timed path only concatenates bytes: `load_samples` turns each sample into the raw bytes of every
input and a complete batch-1 `ModelInferRequest` (inputs in `raw_input_contents`); `RequestEncoder`
builds a batch of n samples by appending length-delimited protobuf fields to a cached header, which
protobuf parses exactly like a message built field by field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edgeperf.client.errors import QslError
from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos.kserve import DATATYPES, TensorSpec, raw_input_field

__all__ = [
    "EncodedSample",
    "ModelSignature",
    "QuerySampleLibrary",
    "RequestEncoder",
    "SampleSource",
    "SerializedQsl",
    "SyntheticSource",
    "numpy_dtype",
]


def numpy_dtype(datatype: str) -> np.dtype[Any]:
    """The numpy dtype of a KServe datatype (`FP32` -> float32); BYTES is not a fixed-size dtype.

    Raises:
        QslError: for an unknown or variable-size datatype.
    """
    dtype = DATATYPES.get(datatype)
    if dtype is None or datatype == "BYTES":
        raise QslError(f"datatype {datatype!r} is not supported for raw tensors")
    return dtype


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSignature:
    """The tensors and batching of a served model (from ModelMetadata/ModelConfig or a benchmark spec)."""

    name: str
    version: str = ""
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int = 0
    """0: the model takes no batch dimension, every request carries one sample."""


class QuerySampleLibrary(Protocol):
    """LoadGen's QSL: sample counts, and loading samples into RAM before they are issued."""

    @property
    def name(self) -> str: ...

    @property
    def total_sample_count(self) -> int: ...

    @property
    def performance_sample_count(self) -> int: ...

    def load_samples(self, indices: Sequence[int]) -> None:
        """Make `indices` ready to issue (read, preprocess, serialize). Called before the timed run."""
        ...

    def unload_samples(self, indices: Sequence[int]) -> None: ...


class SampleSource(Protocol):
    """Preprocessed samples by index (`edgeperf.benchmarks.base.Dataset` satisfies it)."""

    def __len__(self) -> int: ...

    def sample(self, index: int) -> Mapping[str, npt.NDArray[Any]]: ...


class SyntheticSource:
    """Deterministic random samples shaped from a model signature (variable dimensions become 1)."""

    def __init__(self, signature: ModelSignature, count: int, *, seed: int = 0) -> None:
        if count <= 0:
            raise QslError(f"a synthetic dataset needs at least one sample, not {count}")
        self._signature = signature
        self._count = count
        self._seed = seed

    def __len__(self) -> int:
        return self._count

    def sample(self, index: int) -> Mapping[str, npt.NDArray[Any]]:
        if not 0 <= index < self._count:
            raise QslError(f"sample {index} is outside the synthetic dataset of {self._count}")
        # NOTE: numpy's generator is fine here: sample *contents* need not match LoadGen, only the schedule.
        rng = np.random.default_rng([self._seed, index])
        out: dict[str, npt.NDArray[Any]] = {}
        for tensor in self._signature.inputs:
            shape = tuple(1 if d < 0 else d for d in tensor.shape)
            dtype = numpy_dtype(tensor.datatype)
            if dtype.kind == "f":
                out[tensor.name] = rng.standard_normal(shape).astype(dtype)
            elif dtype.kind == "b":
                out[tensor.name] = rng.integers(0, 2, shape).astype(dtype)
            else:
                out[tensor.name] = rng.integers(0, 100, shape).astype(dtype)
        return out


@dataclass(frozen=True, slots=True)
class EncodedSample:
    """One sample, serialized."""

    raw: tuple[bytes, ...]
    """Raw bytes of each input, in signature order."""
    shapes: tuple[tuple[int, ...], ...]
    """Each input's shape for this sample (without batch dimension)."""
    request: bytes
    """A complete batch-1 ModelInferRequest without id."""


class RequestEncoder:
    """Builds ModelInferRequest bytes for one sample or a batch of samples of one model."""

    def __init__(self, signature: ModelSignature, *, requested_outputs: Sequence[str] = ()) -> None:
        self.signature = signature
        self._outputs = tuple(requested_outputs)
        self._headers: dict[tuple[int, tuple[tuple[int, ...], ...]], bytes] = {}

    def header(self, batch: int, shapes: tuple[tuple[int, ...], ...]) -> bytes:
        """Everything of a request but the tensor data and the id, cached per batch size and shapes."""
        key = (batch, shapes)
        cached = self._headers.get(key)
        if cached is not None:
            return cached
        batched = self.signature.max_batch_size > 0
        request = pb.ModelInferRequest(
            model_name=self.signature.name,
            model_version=self.signature.version,
            inputs=[
                pb.ModelInferRequest.InferInputTensor(
                    name=t.name, datatype=t.datatype, shape=((batch, *s) if batched else s)
                )
                for t, s in zip(self.signature.inputs, shapes, strict=True)
            ],
            outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name=n) for n in self._outputs],
        )
        header = request.SerializeToString()
        self._headers[key] = header
        return header

    def encode_sample(self, sample: Mapping[str, npt.NDArray[Any]], index: int) -> EncodedSample:
        """Serialize one preprocessed sample.

        Raises:
            QslError: a tensor is missing or its dtype or shape does not fit the model.
        """
        raws: list[bytes] = []
        shapes: list[tuple[int, ...]] = []
        for tensor in self.signature.inputs:
            if tensor.name not in sample:
                raise QslError(f"sample {index} has no tensor {tensor.name!r} (has {sorted(sample)})")
            array = np.asarray(sample[tensor.name])
            expected = numpy_dtype(tensor.datatype)
            if array.dtype != expected:
                raise QslError(
                    f"sample {index} tensor {tensor.name!r} is {array.dtype}, the model wants "
                    f"{tensor.datatype} ({expected})"
                )
            if len(array.shape) != len(tensor.shape) or any(
                d >= 0 and d != a for d, a in zip(tensor.shape, array.shape, strict=True)
            ):
                raise QslError(
                    f"sample {index} tensor {tensor.name!r} has shape {array.shape}, the model wants "
                    f"{tensor.shape} per sample"
                )
            raws.append(np.ascontiguousarray(array).tobytes())
            shapes.append(tuple(int(d) for d in array.shape))
        raw = tuple(raws)
        shape_key = tuple(shapes)
        request = self.header(1, shape_key) + b"".join(raw_input_field(r) for r in raw)
        return EncodedSample(raw=raw, shapes=shape_key, request=request)

    def batch_request(self, samples: Sequence[EncodedSample]) -> bytes:
        """One request carrying `samples` (same shapes, model batches) along the batch dimension."""
        if len(samples) == 1:
            return samples[0].request
        header = self.header(len(samples), samples[0].shapes)
        fields = [raw_input_field(b"".join(s.raw[k] for s in samples)) for k in range(len(samples[0].raw))]
        return header + b"".join(fields)


class SerializedQsl:
    """A QSL over a `SampleSource` that keeps each loaded sample as request bytes."""

    def __init__(
        self,
        source: SampleSource,
        encoder: RequestEncoder,
        *,
        performance_sample_count: int | None = None,
        name: str = "edgeperf-qsl",
    ) -> None:
        self._source = source
        self.encoder = encoder
        total = len(source)
        self._performance_count = min(total, performance_sample_count or total)
        self._name = name
        self._loaded: dict[int, EncodedSample] = {}

    @property
    def source(self) -> SampleSource:
        """Where the samples come from (the network check encodes one to size the run's requests)."""
        return self._source

    @property
    def name(self) -> str:
        return self._name

    @property
    def total_sample_count(self) -> int:
        return len(self._source)

    @property
    def performance_sample_count(self) -> int:
        return self._performance_count

    @property
    def loaded_count(self) -> int:
        return len(self._loaded)

    def load_samples(self, indices: Sequence[int]) -> None:
        for index in indices:
            i = int(index)
            if i not in self._loaded:
                try:
                    sample = self._source.sample(i)
                except (ValueError, OSError) as exc:
                    # NOTE: a corrupt or truncated file in a dataset: one line naming it, not a traceback.
                    raise QslError(f"{self.name}: sample {i}: {exc}") from None
                self._loaded[i] = self.encoder.encode_sample(sample, i)

    def unload_samples(self, indices: Sequence[int]) -> None:
        for index in indices:
            self._loaded.pop(int(index), None)

    def get(self, index: int) -> EncodedSample:
        """The serialized sample `index`.

        Raises:
            QslError: the sample was not loaded (a bug in the caller: the timed path never loads).
        """
        try:
            return self._loaded[index]
        except KeyError:
            raise QslError(f"sample {index} was issued but not loaded") from None
