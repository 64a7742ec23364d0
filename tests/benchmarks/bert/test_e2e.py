"""An accuracy run of the small BERT stand-in through a real server on loopback, rescored as
accuracy-squad.py reads the log."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeperf.benchmarks.bert import BENCHMARK
from edgeperf.benchmarks.bert.accuracy import evaluate
from edgeperf.benchmarks.bert.ground_truth import reference_answers
from edgeperf.benchmarks.bert.postprocess import Logits, predict_answers
from edgeperf.client.plan.settings import Scenario
from tests.benchmarks._e2e import small_accuracy_run
from tests.benchmarks.reference_scripts import squad_raw_results

pytestmark = pytest.mark.e2e


async def test_accuracy_run_scores_the_same_with_the_reference_reading(tmp_path: Path) -> None:
    outcome, text = await small_accuracy_run(
        tmp_path, "bert", scenario=Scenario.OFFLINE, dataset="synthetic:8"
    )
    assert outcome.validity == "VALID"
    assert outcome.accuracy is not None and outcome.accuracy.passed and outcome.accuracy.value == 100.0
    # accuracy-squad.py (no --output_transposed) reads each payload as float32 [seq, 2]; the answers it
    # post-processes from those logits score as edgeperf's accuracy.txt says
    dataset = BENCHMARK.open_dataset("synthetic:8", size="small")
    raw = squad_raw_results(tmp_path / "out" / "mlperf_log_accuracy.json")
    assert sorted(i for i, _, _ in raw) == list(range(len(dataset)))
    logits = {i: Logits(start, end) for i, start, end in raw}
    answers = predict_answers(dataset.examples, dataset.features, logits, dataset.tokenizer)
    truth = {k: (v,) for k, v in reference_answers(dataset).items()}
    assert evaluate(truth, answers).f1 == outcome.accuracy.value
    assert '"f1": 100.0' in text
