"""An accuracy run of the small RNN-T stand-in through a real server on loopback: accuracy.txt and gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeperf.benchmarks.rnnt import BENCHMARK
from edgeperf.benchmarks.rnnt.accuracy import word_error_rate
from edgeperf.benchmarks.rnnt.standin import SyntheticSpeech
from edgeperf.client.plan.settings import Scenario
from tests.benchmarks._e2e import small_accuracy_run
from tests.benchmarks.reference_scripts import rnnt_hypotheses

pytestmark = pytest.mark.e2e


async def test_accuracy_run_through_the_server(tmp_path: Path, cache_dir: Path) -> None:
    outcome, text = await small_accuracy_run(
        tmp_path, "rnnt", scenario=Scenario.SINGLE_STREAM, dataset="synthetic:4"
    )
    assert outcome.validity == "VALID"
    assert outcome.accuracy is not None and outcome.accuracy.passed and outcome.accuracy.value == 0.0
    assert "utterances scored: 4 of 4" in text
    assert "Word Error Rate: 0.0%, accuracy=100.0%" in text
    assert text.splitlines()[-1] == "PASS: accuracy (1 - WER) 100.000% >= target 99.000% (99% of 100.000%)"
    # accuracy_eval.py's reading of the log (int64 label ids, every entry) gives the same WER
    dataset = BENCHMARK.open_dataset("synthetic:4", size="small")
    assert isinstance(dataset, SyntheticSpeech)
    logged = rnnt_hypotheses(tmp_path / "out" / "mlperf_log_accuracy.json")
    assert sorted(i for i, _ in logged) == [0, 1, 2, 3]
    wer, _, _ = word_error_rate([h for _, h in logged], [dataset.transcript(i) for i, _ in logged])
    assert outcome.accuracy.value == wer
