"""The contract every benchmark package fulfils, so the server, the client and the suite can use any of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from edgeperf.protos.kserve import TensorSpec

Size = Literal["full", "small"]
"""`full` is the architecture at its real size; `small` is scaled down for tests and quick looks."""

Scenario = Literal["SingleStream", "MultiStream", "Server", "Offline"]


@dataclass(frozen=True, slots=True, kw_only=True)
class QualityTarget:
    """The accuracy gate: `fraction` of the FP32 reference value of `metric`."""

    metric: str
    """Name of the headline metric as printed in accuracy.txt (e.g. "top1", "mAP", "DICE", "WER", "F1")."""
    reference_value: float
    """FP32 reference score of the official model on the official dataset."""
    fractions: tuple[float, ...] = (0.99,)
    """Accepted fractions of the reference (0.99, and 0.999 for high-accuracy variants)."""
    higher_is_better: bool = True
    """WER is lower-is-better; the gate then uses 1 - WER as the reference does."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchmarkSpec:
    """What the MLPerf Inference Edge v2.1 rules and the reference implementation fix for one benchmark."""

    name: str
    """Benchmark name used on the command line and in the model repository ("resnet50", "3d-unet", ...)."""
    mlperf_model: str
    """Model name used for mlperf.conf lookups ("resnet50", "retinanet", "3d-unet", "rnnt", "bert")."""
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    qsl_size: int
    """performance_sample_count of the v2.1 rules."""
    dataset_size: int
    """Samples in the full published validation set used for accuracy."""
    quality: QualityTarget
    edge_scenarios: tuple[Scenario, ...]
    server_latency_ns: int | None = None
    """Server scenario latency bound of the v2.1 rules (None where the Edge suite has no Server)."""
    multi_stream_samples_per_query: int = 8
    reference_model_sha256: str | None = None
    """Checksum of the official ONNX file; a match means closed-division model."""
    response_outputs: tuple[str, ...] = ()
    """Outputs the client requests and logs (the ones `accuracy` decodes); () = all."""


Sample = Mapping[str, npt.NDArray[np.generic]]
"""One preprocessed sample: input tensor name -> array without the batch dimension."""


class Dataset(Protocol):
    """Preprocessed samples plus the ground truth the accuracy metric needs."""

    def __len__(self) -> int: ...

    def sample(self, index: int) -> Sample:
        """The preprocessed inputs of sample `index`, ready to serialize."""
        ...


class Benchmark(Protocol):
    """One MLPerf benchmark: its spec, model writer, datasets and accuracy metric."""

    spec: BenchmarkSpec

    def write_model(self, model_dir: Path, *, size: Size = "full", from_file: Path | None = None) -> None:
        """Write `<model_dir>/config.pbtxt` and `<model_dir>/1/...` for the server.

        Args:
            model_dir: the model's folder inside a model repository; its name is the model name.
            size: stand-in size when `from_file` is None.
            from_file: the official ONNX model (checked against the spec) instead of a stand-in.
        """
        ...

    def open_dataset(self, source: str, *, size: Size = "full") -> Dataset:
        """`synthetic[:COUNT]` for generated data, or a path to the dataset in its published format."""
        ...

    def log_payload(self, raw: bytes, qsl_idx: int, *, size: Size = "full") -> bytes:
        """What the reference SUT logs for sample `qsl_idx` (see `reference_payload`), from the bytes of
        `spec.response_outputs` one after the other; the client logs this, `accuracy` reads it.

        Raises:
            PayloadError: `raw` is not the outputs the benchmark requests.
        """
        ...

    def accuracy(
        self, dataset: Dataset, results: Sequence[tuple[int, bytes]], *, size: Size = "full"
    ) -> AccuracyReport:
        """Score the logged payloads `(qsl_index, log_payload bytes)` from mlperf_log_accuracy.json."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class AccuracyReport:
    """A metric value, the gate verdict and the text of accuracy.txt in the reference scripts' format."""

    metric: str
    value: float
    target: float
    passed: bool
    text: str
    """The full accuracy.txt, ending with the gate line (`PASS` or `FAIL`, the value, the target)."""
