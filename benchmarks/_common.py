"""What every benchmark package shares: the `Benchmark` object assembled from its parts, and the checks
of its inputs (precision, `synthetic[:COUNT]` sources, logged responses) that would otherwise be
written once per package.

Errors raised by the benchmark packages (a `ValueError`, as bad input they all are):

    BenchmarkError
    ├── DatasetError             a dataset is missing, malformed or inconsistent (ImageError,
    │   │                        LibriSpeechError, KitsDataError name the file)
    │   └── WrongDatasetError    a dataset from another benchmark (also a TypeError)
    ├── ModelMismatch            a model file lacks the benchmark's tensors (ModelCheckError)
    └── PrecisionError           an unknown precision, or one asked of an official file
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Generic, Literal, Protocol, TypeVar, cast, get_args

from edgeperf.benchmarks.base import AccuracyReport, BenchmarkSpec, Dataset, Size
from edgeperf.protos.kserve import TensorSpec

__all__ = [
    "PRECISIONS",
    "BenchmarkError",
    "DatasetError",
    "ModelMismatch",
    "PackagedBenchmark",
    "Precision",
    "PrecisionError",
    "SyntheticCases",
    "WrongDatasetError",
    "check_precision",
    "default_cache_dir",
    "first_responses",
    "lazy_model_writer",
    "pipeline_config_text",
    "synthetic_count",
]

Precision = Literal["fp32", "fp16", "int8"]
"""Stand-in variants: the FP32 reference, FP16 weights and compute, int8 static quantisation."""

PRECISIONS: tuple[Precision, ...] = get_args(Precision)
"""Every stand-in variant: fp32 (the reference), fp16, int8."""

DatasetT = TypeVar("DatasetT", bound=Dataset)
DatasetT_co = TypeVar("DatasetT_co", bound=Dataset, covariant=True)
DatasetT_contra = TypeVar("DatasetT_contra", bound=Dataset, contravariant=True)


class BenchmarkError(ValueError):
    """Root of the benchmark packages' errors; the message says which file, tensor or option is wrong."""


class DatasetError(BenchmarkError):
    """A dataset is missing, malformed or inconsistent; the message says where."""


class WrongDatasetError(DatasetError, TypeError):
    """`accuracy` got a dataset that its benchmark's `open_dataset` did not make."""


class ModelMismatch(BenchmarkError):
    """A model file does not have the benchmark's tensors; the message names the file and the tensor."""


class PrecisionError(BenchmarkError):
    """A precision no stand-in has, or a precision asked of an official file (used as it is)."""


def check_precision(precision: str, *, from_file: Path | None = None) -> None:
    """Raises `PrecisionError` unless `precision` is one of `PRECISIONS` (and fp32 for an official file)."""
    if precision not in PRECISIONS:
        raise PrecisionError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if from_file is not None and precision != "fp32":
        raise PrecisionError(
            f"precision {precision} is for stand-ins; {from_file} is used as it is (its own precision)"
        )


def default_cache_dir() -> Path:
    """Where synthetic ground truth is cached: $EDGEPERF_CACHE_DIR or ~/.cache/edgeperf."""
    configured = os.environ.get("EDGEPERF_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "edgeperf"


class SyntheticCases:
    """`count` synthetic items whose ground truth is the FP32 stand-in's output, cached under `cache_dir`.

    The FP32 stand-in then scores its own outputs perfectly, and the gate checks a reduced-precision
    variant against 99% of the FP32 model, as the rules do with the real model.
    """

    item: ClassVar[str] = "item"
    """What one sample is called in error messages ("utterance", "case")."""
    truth_from_standin: ClassVar[bool] = True
    """Scoring needs the FP32 stand-in's outputs, computed with onnx and ONNX Runtime where it is scored."""

    def __init__(self, count: int, size: Size, *, cache_dir: Path | None = None) -> None:
        if count <= 0:
            raise ValueError(f"a synthetic dataset needs at least one {self.item}, not {count}")
        self.count = count
        self.size: Size = size
        self.cache_dir = cache_dir if cache_dir is not None else default_cache_dir()

    def __len__(self) -> int:
        return self.count

    def _check(self, index: int) -> None:
        if not 0 <= index < self.count:
            raise IndexError(f"{self.item} {index} is outside the synthetic dataset of {self.count}")


def synthetic_count(source: str, *, default: int) -> int | None:
    """The COUNT of a `synthetic[:COUNT]` source (`default` when absent), or None for any other source.

    Raises:
        DatasetError: COUNT is not a positive integer (the message names COUNT).
    """
    if source != "synthetic" and not source.startswith("synthetic:"):
        return None
    _, _, count_text = source.partition(":")
    if not count_text:
        return default
    if not count_text.isdigit() or int(count_text) <= 0:
        raise DatasetError(f"{source!r}: expected synthetic:COUNT with a positive integer COUNT")
    return int(count_text)


def first_responses(
    results: Sequence[tuple[int, bytes]], *, dataset_size: int, unit: str
) -> Iterator[tuple[int, bytes]]:
    """The logged `(qsl_idx, data)` pairs, each index once (LoadGen may log a sample more than once; the
    first response counts).

    Raises:
        DatasetError: an index outside the dataset of `dataset_size` `unit`.
    """
    seen: set[int] = set()
    for index, data in results:
        if index in seen:
            continue
        seen.add(index)
        if not 0 <= index < dataset_size:
            raise DatasetError(f"qsl_idx {index} is outside the dataset of {dataset_size} {unit}")
        yield index, data


def pipeline_config_text(name: str, spec: BenchmarkSpec, factory: str, provenance: Mapping[str, str]) -> str:
    """`config.pbtxt` of a server-side pipeline model (platform `edgeperf_pipeline`, no batching, one
    instance) with the spec's tensors; its parameters name the pipeline `factory` ("module:function"), the
    benchmark and the model's provenance."""

    def tensors(kind: str, declared: Sequence[TensorSpec]) -> str:
        entries = (
            f'{{ name: "{t.name}" data_type: TYPE_{t.datatype} dims: [ {", ".join(map(str, t.shape))} ] }}'
            for t in declared
        )
        return f"{kind} [ {', '.join(entries)} ]"

    lines = [
        f'name: "{name}"',
        'platform: "edgeperf_pipeline"',
        "max_batch_size: 0",
        tensors("input", spec.inputs),
        tensors("output", spec.outputs),
        "instance_group [ { count: 1 kind: KIND_CPU } ]",
    ]
    parameters = {"pipeline": factory, "edgeperf_benchmark": spec.name, **provenance}
    lines += [f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}' for k, v in parameters.items()]
    return "\n".join(lines) + "\n"


class ModelWriter(Protocol):
    def __call__(
        self, model_dir: Path, *, size: Size, from_file: Path | None, precision: Precision
    ) -> object: ...


class DatasetOpener(Protocol[DatasetT_co]):
    def __call__(self, source: str, *, size: Size) -> DatasetT_co: ...


class PayloadEncoder(Protocol):
    def __call__(self, raw: bytes, qsl_idx: int, *, size: Size) -> bytes: ...


def lazy_model_writer(module: str) -> ModelWriter:
    """The `write_model` of `module`, imported when a model is first written.

    The model builders need onnx (the server extra); a client that only reads a benchmark's dataset and
    spec must be able to import the benchmark without it.
    """

    def write(model_dir: Path, *, size: Size, from_file: Path | None, precision: Precision) -> object:
        writer = cast(ModelWriter, importlib.import_module(module).write_model)
        return writer(model_dir, size=size, from_file=from_file, precision=precision)

    return write


def same_payload(raw: bytes, qsl_idx: int, *, size: Size) -> bytes:
    """The served outputs already are what the reference SUT logs."""
    return raw


class Scorer(Protocol[DatasetT_contra]):
    def __call__(
        self, dataset: DatasetT_contra, results: Sequence[tuple[int, bytes]], /
    ) -> AccuracyReport: ...


class PackagedBenchmark(Generic[DatasetT]):
    """`edgeperf.benchmarks.base.Benchmark` assembled from a package's spec, model writer, dataset
    opener and scorer; `write_model` also takes `precision` (`fp32`, `fp16` or `int8` stand-ins)."""

    __slots__ = ("_dataset_types", "_open", "_payload", "_score", "_write", "spec")

    def __init__(
        self,
        *,
        spec: BenchmarkSpec,
        write_model: ModelWriter,
        open_dataset: DatasetOpener[DatasetT],
        score: Scorer[DatasetT],
        dataset_types: tuple[type[DatasetT], ...],
        log_payload: PayloadEncoder = same_payload,
    ) -> None:
        self.spec = spec
        self._payload = log_payload
        self._write = write_model
        self._open = open_dataset
        self._score = score
        self._dataset_types = dataset_types

    def write_model(
        self,
        model_dir: Path,
        *,
        size: Size = "full",
        from_file: Path | None = None,
        precision: Precision = "fp32",
    ) -> None:
        """Write the model's folder (see `Benchmark.write_model`); `precision` picks the stand-in variant.

        Raises:
            PrecisionError: an unknown `precision`, or one other than fp32 with `from_file`.
        """
        check_precision(precision, from_file=from_file)
        self._write(model_dir, size=size, from_file=from_file, precision=precision)

    def open_dataset(self, source: str, *, size: Size = "full") -> DatasetT:
        return self._open(source, size=size)

    def log_payload(self, raw: bytes, qsl_idx: int, *, size: Size = "full") -> bytes:
        """What the reference SUT logs for this response (see `Benchmark.log_payload`)."""
        return self._payload(raw, qsl_idx, size=size)

    def accuracy(
        self, dataset: Dataset, results: Sequence[tuple[int, bytes]], *, size: Size = "full"
    ) -> AccuracyReport:
        """Score the logged responses against `dataset`, which must come from this `open_dataset`.

        Raises:
            WrongDatasetError: `dataset` is another benchmark's (or another kind of object).
        """
        if not isinstance(dataset, self._dataset_types):
            raise WrongDatasetError(
                f"{self.spec.name} accuracy needs a dataset from its own open_dataset, not {type(dataset).__name__}"
            )
        return self._score(dataset, results)
