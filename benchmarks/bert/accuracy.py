"""SQuAD v1.1 exact match and F1 (`evaluate_v1.1.py`), accuracy.txt and the quality gate.

Scoring, as the official script: answers are normalised (lower case, punctuation removed, articles
a/an/the removed, whitespace collapsed); per question the best score over its accepted answers counts;
exact match and F1 are averaged over every question of the dataset (an unanswered question scores 0) and
printed in percent as `{"exact_match": ..., "f1": ...}`, the line the submission checker reads.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from edgeperf.benchmarks.base import AccuracyReport
from edgeperf.benchmarks.bert.dataset import BertDataset
from edgeperf.benchmarks.bert.postprocess import Logits, decode_logits, predict_answers
from edgeperf.benchmarks.bert.spec import SPEC

__all__ = [
    "SquadScore",
    "accuracy_report",
    "evaluate",
    "exact_match_score",
    "f1_score",
    "gate_line",
    "normalize_answer",
]

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
STANDIN_REFERENCE = 100.0
"""F1 of the FP32 stand-in against its own answers: the reference value of the synthetic gate."""


@dataclass(frozen=True, slots=True)
class SquadScore:
    exact_match: float
    """Percent."""
    f1: float
    """Percent."""
    answered: int
    total: int


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def f1_score(prediction: str, ground_truth: str) -> float:
    predicted = normalize_answer(prediction).split()
    truth = normalize_answer(ground_truth).split()
    same = sum((Counter(predicted) & Counter(truth)).values())
    if same == 0:
        return 0.0
    precision = same / len(predicted)
    recall = same / len(truth)
    return 2 * precision * recall / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def evaluate(answers: Mapping[str, Sequence[str]], predictions: Mapping[str, str]) -> SquadScore:
    """Score `predictions` (qas_id -> text) against `answers` (qas_id -> accepted texts), in percent."""
    exact = f1 = 0.0
    answered = 0
    for qas_id, truths in answers.items():
        if qas_id not in predictions or not truths:
            continue
        answered += 1
        prediction = predictions[qas_id]
        exact += max(exact_match_score(prediction, t) for t in truths)
        f1 += max(f1_score(prediction, t) for t in truths)
    total = len(answers)
    if total == 0:
        return SquadScore(0.0, 0.0, 0, 0)
    return SquadScore(100.0 * exact / total, 100.0 * f1 / total, answered, total)


def gate_line(metric: str, value: float, reference: float, fraction: float) -> tuple[bool, float, str]:
    """`(passed, target, line)` for "value >= fraction * reference"."""
    target = fraction * reference
    passed = value >= target
    verdict = "PASS" if passed else "FAIL"
    return (
        passed,
        target,
        f"{verdict} {metric} {value:.3f} target {target:.3f} ({fraction:.1%} of {reference:.3f})",
    )


def accuracy_report(
    dataset: BertDataset,
    results: Sequence[tuple[int, bytes]],
    *,
    fraction: float = 0.99,
    transposed: bool = False,
) -> AccuracyReport:
    """Post-process logged responses into answers, score them, and gate F1 at `fraction` of FP32.

    `transposed`: the response layout (see `postprocess.decode_logits`); edgeperf's client logs the
    reference SUT's `[seq, 2]` (`reference_payload.bert_payload`), as `accuracy-squad.py` reads it.

    Real SQuAD is scored against its annotated answers with the reference F1 90.874; the synthetic set
    against the FP32 stand-in's answers (`ground_truth.py`), whose own F1 is 100 by construction.
    """
    seq = dataset.config.max_seq_length
    logits: dict[int, Logits] = {}
    for qsl_idx, data in results:
        if 0 <= qsl_idx < len(dataset):
            logits[qsl_idx] = decode_logits(data, seq, transposed=transposed)
    predictions = predict_answers(dataset.examples, dataset.features, logits, dataset.tokenizer)
    if dataset.synthetic:
        from edgeperf.benchmarks.bert.ground_truth import reference_answers

        truth: dict[str, Sequence[str]] = {k: (v,) for k, v in reference_answers(dataset).items()}
        reference = STANDIN_REFERENCE
        basis = "ground truth: the FP32 stand-in's answers"
    else:
        truth = {e.qas_id: e.answers for e in dataset.examples}
        reference = SPEC.quality.reference_value
        basis = "ground truth: SQuAD v1.1 annotations"
    score = evaluate(truth, predictions)
    lines = [
        f"dataset: {dataset.source} ({len(dataset)} features, {len(dataset.examples)} questions); {basis}",
        f"responses: {len(logits)} features, {score.answered} of {score.total} questions answered",
        json.dumps({"exact_match": score.exact_match, "f1": score.f1}),
    ]
    for other in SPEC.quality.fractions:
        if other != fraction:
            lines.append("variant " + gate_line("F1", score.f1, reference, other)[2])
    passed, target, line = gate_line("F1", score.f1, reference, fraction)
    lines.append(line)
    return AccuracyReport(
        metric="F1", value=score.f1, target=target, passed=passed, text="\n".join(lines) + "\n"
    )
