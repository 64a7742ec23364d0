"""RNN-T on LibriSpeech dev-clean: speech recognition with a transducer and greedy decoding on the server."""

from __future__ import annotations

from edgeperf.benchmarks._common import PackagedBenchmark, lazy_model_writer
from edgeperf.benchmarks.rnnt.accuracy import score
from edgeperf.benchmarks.rnnt.dataset import LibriSpeech
from edgeperf.benchmarks.rnnt.spec import SPEC
from edgeperf.benchmarks.rnnt.standin import SyntheticSpeech, open_dataset

__all__ = ["BENCHMARK", "SPEC", "RnntBenchmark"]


class RnntBenchmark(PackagedBenchmark[LibriSpeech | SyntheticSpeech]):
    """The `rnnt` benchmark: `edgeperf.benchmarks.rnnt.standin.open_dataset`, `.model.write_model`
    (`precision` picks an FP16 or int8 variant) and `.accuracy.score` (WER and the gate)."""


BENCHMARK = RnntBenchmark(
    spec=SPEC,
    write_model=lazy_model_writer("edgeperf.benchmarks.rnnt.model"),
    open_dataset=open_dataset,
    score=score,
    dataset_types=(LibriSpeech, SyntheticSpeech),
)
