"""BERT-large on SQuAD v1.1 (MLPerf Inference Edge: SingleStream and Offline, F1 >= 99% of 90.874)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgeperf.benchmarks.base import AccuracyReport, BenchmarkSpec, Dataset, Size
from edgeperf.benchmarks.bert.accuracy import accuracy_report
from edgeperf.benchmarks.bert.dataset import BertDataset
from edgeperf.benchmarks.bert.dataset import open_dataset as _open_dataset
from edgeperf.benchmarks.bert.spec import SPEC
from edgeperf.benchmarks.reference_payload import bert_payload

__all__ = ["BENCHMARK", "BertBenchmark"]


class BertBenchmark:
    """The `Benchmark` for BERT-large; extra keyword options have defaults, so the protocol holds."""

    spec: BenchmarkSpec = SPEC

    def write_model(
        self, model_dir: Path, *, size: Size = "full", from_file: Path | None = None, precision: str = "fp32"
    ) -> None:
        from edgeperf.benchmarks.bert import model  # NOTE: needs onnx; reading the dataset does not

        model.write_model(model_dir, size=size, from_file=from_file, precision=precision)

    def open_dataset(self, source: str, *, size: Size = "full") -> BertDataset:
        return _open_dataset(source, size=size)

    def log_payload(self, raw: bytes, qsl_idx: int, *, size: Size = "full") -> bytes:
        """The reference SUT's `[seq, 2]` logits (see `reference_payload.bert_payload`)."""
        return bert_payload(raw, qsl_idx)

    def accuracy(
        self,
        dataset: Dataset,
        results: Sequence[tuple[int, bytes]],
        *,
        size: Size = "full",
        fraction: float = 0.99,
        transposed: bool = False,
    ) -> AccuracyReport:
        if not isinstance(dataset, BertDataset):
            raise TypeError("BERT accuracy needs a dataset from BERT's open_dataset")
        return accuracy_report(dataset, results, fraction=fraction, transposed=transposed)


BENCHMARK = BertBenchmark()
