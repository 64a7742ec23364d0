"""Word error rate as the RNN-T reference computes it, and the 99% gate on 1 - WER.

mlcommons/inference v2.1 `speech_recognition/rnnt/accuracy_eval.py` and `pytorch/metrics.py`: responses
are int64 label ids turned into text with the labels; hypotheses and references are split on whitespace;
WER = (sum of word-level Levenshtein distances) / (sum of reference words), printed as
"Word Error Rate: {wer * 100}%, accuracy={(1 - wer) * 100}%". The v2.1 submission checker requires
(1 - WER) * 100 >= (100 - 7.452) * 0.99.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgeperf.benchmarks._common import DatasetError, first_responses
from edgeperf.benchmarks.base import AccuracyReport
from edgeperf.benchmarks.rnnt.dataset import LibriSpeech, tokens_to_text
from edgeperf.benchmarks.rnnt.spec import SPEC
from edgeperf.benchmarks.rnnt.standin import SyntheticSpeech

__all__ = ["levenshtein", "report", "score", "word_error_rate"]


def levenshtein(a: Sequence[str], b: Sequence[str]) -> int:
    """Edit distance (insertions, deletions, substitutions each cost 1) between two word lists."""
    if len(a) > len(b):
        a, b = b, a
    previous = list(range(len(a) + 1))
    for i, word_b in enumerate(b, start=1):
        current = [i] + [0] * len(a)
        for j, word_a in enumerate(a, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word_a != word_b))
        previous = current
    return previous[-1]


def word_error_rate(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[float, int, int]:
    """(WER, total edits, total reference words); WER is inf when the references hold no word.

    Raises:
        ValueError: the lists differ in length.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    edits = words = 0
    for hypothesis, reference in zip(hypotheses, references, strict=True):
        ref = reference.split()
        words += len(ref)
        edits += levenshtein(hypothesis.split(), ref)
    return (edits / words if words else float("inf")), edits, words


def report(
    hypotheses: Sequence[str], references: Sequence[str], *, reference_wer: float, fraction: float, total: int
) -> AccuracyReport:
    """accuracy.txt: counts, the reference's WER line and the gate line on 1 - WER.

    The report's value is the WER and its target the largest WER that passes, 1 - fraction * (1 - reference).
    """
    wer, edits, words = word_error_rate(hypotheses, references)
    accuracy = 1.0 - wer
    needed = fraction * (1.0 - reference_wer)
    passed = accuracy >= needed
    verdict, sign = ("PASS", ">=") if passed else ("FAIL", "<")
    text = (
        f"utterances scored: {len(hypotheses)} of {total}\n"
        f"word edits: {edits}, reference words: {words}\n"
        f"Word Error Rate: {wer * 100}%, accuracy={accuracy * 100}%\n"
        f"{verdict}: accuracy (1 - WER) {accuracy * 100:.3f}% {sign} target {needed * 100:.3f}% "
        f"({fraction * 100:g}% of {(1.0 - reference_wer) * 100:.3f}%)\n"
    )
    return AccuracyReport(metric="WER", value=wer, target=1.0 - needed, passed=passed, text=text)


def score(dataset: LibriSpeech | SyntheticSpeech, results: Sequence[tuple[int, bytes]]) -> AccuracyReport:
    """WER of the logged int64 label ids against the dataset's transcripts, and the gate.

    Raises:
        DatasetError: a response is not whole int64 values, or an index is out of range.
        ValueError: a response holds an unknown label, or there is none.
    """
    hypotheses: list[str] = []
    references: list[str] = []
    for index, data in first_responses(results, dataset_size=len(dataset), unit="utterances"):
        if len(data) % 8:
            raise DatasetError(f"response for utterance {index} has {len(data)} bytes, not whole int64 ids")
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
