"""RNN-T on LibriSpeech dev-clean: speech recognition with a transducer and greedy decoding on the server."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgeperf.benchmarks._onnx import Precision
from edgeperf.benchmarks.base import AccuracyReport, BenchmarkSpec, Dataset, Size
from edgeperf.benchmarks.rnnt.accuracy import report
from edgeperf.benchmarks.rnnt.dataset import LibriSpeech, SyntheticSpeech
from edgeperf.benchmarks.rnnt.model import write_model
from edgeperf.benchmarks.rnnt.reference import tokens_to_text
from edgeperf.benchmarks.rnnt.spec import SPEC

__all__ = ["BENCHMARK", "SPEC", "RnntBenchmark"]


class RnntBenchmark:
    """The `rnnt` benchmark (edgeperf.benchmarks.base.Benchmark)."""

    spec: BenchmarkSpec = SPEC

    def write_model(
        self,
        model_dir: Path,
        *,
        size: Size = "full",
        from_file: Path | None = None,
        precision: Precision = "fp32",
    ) -> None:
        """See `edgeperf.benchmarks.rnnt.model.write_model`; `precision` picks an FP16 or int8 variant."""
        write_model(model_dir, size=size, from_file=from_file, precision=precision)

    def open_dataset(self, source: str, *, size: Size = "full") -> Dataset:
        """`synthetic[:COUNT]` (default COUNT: the QSL size for full, 8 for small), a LibriSpeech folder
        (dev-clean's published FLAC layout), or the reference's `dev-clean-wav.json` manifest.

        Raises:
            ValueError: a bad COUNT.
            LibriSpeechError: the path is in neither layout.
        """
        if source == "synthetic" or source.startswith("synthetic:"):
            _, _, count = source.partition(":")
            default = SPEC.qsl_size if size == "full" else 8
            try:
                n = int(count) if count else default
            except ValueError:
                raise ValueError(f"synthetic COUNT must be an integer, not {count!r}") from None
            return SyntheticSpeech(n, size)
        return LibriSpeech(Path(source))

    def accuracy(
        self, dataset: Dataset, results: Sequence[tuple[int, bytes]], *, size: Size = "full"
    ) -> AccuracyReport:
        """WER of the logged int64 label ids against the dataset's transcripts, and the gate.

        Raises:
            TypeError: `dataset` did not come from `open_dataset`.
            ValueError: a response is not whole int64 values, holds an unknown label, or an index is out
                of range.
        """
        if not isinstance(dataset, LibriSpeech | SyntheticSpeech):
            raise TypeError(f"rnnt scores its own datasets, not {type(dataset).__name__}")
        hypotheses: list[str] = []
        references: list[str] = []
        seen: set[int] = set()
        for index, data in results:
            if index in seen:
                continue  # LoadGen may log a sample more than once; the first response counts
            seen.add(index)
            if not 0 <= index < len(dataset):
                raise ValueError(f"qsl_idx {index} is outside the dataset of {len(dataset)} utterances")
            if len(data) % 8:
                raise ValueError(f"response for utterance {index} has {len(data)} bytes, not whole int64 ids")
            hypotheses.append(tokens_to_text(np.frombuffer(data, dtype="<i8")))
            references.append(dataset.transcript(index))
        if not hypotheses:
            raise ValueError("no RNN-T results to score")
        return report(
            hypotheses,
            references,
            reference_wer=dataset.reference_value,
            fraction=SPEC.quality.fractions[0],
            total=len(dataset),
        )


BENCHMARK = RnntBenchmark()
