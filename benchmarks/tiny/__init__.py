"""The tiny overhead model (INPUT0 FP32 [-1, 16] -> OUTPUT0 = 2 * INPUT0 + 1); its fixed-delay variant is
`edgeperf.benchmarks.tiny.model.write_delay_model` (server-side tests and benches only: it needs onnx)."""

from __future__ import annotations

from pathlib import Path

from edgeperf.benchmarks._common import PackagedBenchmark, Precision
from edgeperf.benchmarks.base import Size
from edgeperf.benchmarks.tiny.accuracy import score
from edgeperf.benchmarks.tiny.dataset import TinyDataset, open_dataset
from edgeperf.benchmarks.tiny.spec import SPEC

__all__ = ["BENCHMARK", "SPEC", "TinyBenchmark", "write_model"]


# NOTE: the builders are imported when called: they need onnx, and the client must not (performance runs).
def write_model(
    model_dir: Path, *, size: Size = "full", from_file: Path | None = None, precision: Precision = "fp32"
) -> None:
    """See `edgeperf.benchmarks.tiny.model.write_model`."""
    from edgeperf.benchmarks.tiny import model

    model.write_model(model_dir, size=size, from_file=from_file, precision=precision)


class TinyBenchmark(PackagedBenchmark[TinyDataset]):
    """`edgeperf.benchmarks.base.Benchmark` for the tiny model; `write_model` takes only fp32."""


BENCHMARK = TinyBenchmark(
    spec=SPEC, write_model=write_model, open_dataset=open_dataset, score=score, dataset_types=(TinyDataset,)
)
