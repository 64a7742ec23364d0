"""WER on crafted transcripts, accuracy.txt in the reference's format, and the gate on 1 - WER."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeperf.benchmarks.rnnt import BENCHMARK
from edgeperf.benchmarks.rnnt.accuracy import levenshtein, report, word_error_rate
from edgeperf.benchmarks.rnnt.dataset import LibriSpeech
from edgeperf.benchmarks.rnnt.spec import LABELS


def _ids(text: str) -> bytes:
    return np.array([LABELS.index(ch) for ch in text], dtype="<i8").tobytes()


def test_levenshtein_counts_word_edits() -> None:
    assert levenshtein(["a", "b", "c"], ["a", "b", "c"]) == 0
    assert levenshtein(["a", "x", "c"], ["a", "b", "c", "d"]) == 2
    assert levenshtein([], ["a", "b"]) == 2
    assert levenshtein(["a", "b"], []) == 2


def test_word_error_rate_perfect_none_and_partial() -> None:
    assert word_error_rate(["go do you hear"], ["go do you hear"])[0] == 0.0
    assert word_error_rate(["x y z w"], ["go do you hear"])[0] == 1.0
    assert word_error_rate(["", "a b"], ["go do", "a b"]) == (0.5, 2, 4)
    assert word_error_rate(["a x c", "e"], ["a b c d", "e"]) == (2 / 5, 2, 5)
    assert word_error_rate(["a"], [""])[0] == float("inf")
    with pytest.raises(ValueError, match="hypotheses"):
        word_error_rate(["a"], [])


def test_report_text_and_gate() -> None:
    passing = report(["a b c d"] * 100, ["a b c d"] * 100, reference_wer=0.07452, fraction=0.99, total=2513)
    assert passing.passed and passing.value == 0.0
    assert passing.target == pytest.approx(1 - 0.99 * (1 - 0.07452))
    lines = passing.text.splitlines()
    assert lines[2] == "Word Error Rate: 0.0%, accuracy=100.0%"
    assert lines[-1] == "PASS: accuracy (1 - WER) 100.000% >= target 91.623% (99% of 92.548%)"
    # 10 edits in 100 words: WER 10% is above the 8.377% the gate allows
    hyps = ["x b c d"] * 10 + ["a b c d"] * 15
    failing = report(hyps, ["a b c d"] * 25, reference_wer=0.07452, fraction=0.99, total=25)
    assert not failing.passed and failing.value == pytest.approx(0.1)
    assert failing.text.splitlines()[-1].startswith("FAIL: accuracy (1 - WER) 90.000% < target 91.623%")


def test_benchmark_scores_logged_int64_ids(dev_clean: Path) -> None:
    dataset = LibriSpeech(dev_clean)
    results = [(0, _ids("go do you hear")), (1, _ids("but in less than six minutes the staircase groaned"))]
    result = BENCHMARK.accuracy(dataset, [*results, (0, b"")])  # the duplicate is ignored
    assert result.value == pytest.approx(1 / 13)  # one substitution in 4 + 9 words
    assert "utterances scored: 2 of 2" in result.text
    with pytest.raises(ValueError, match="int64"):
        BENCHMARK.accuracy(dataset, [(0, b"\x01\x02\x03")])
    with pytest.raises(ValueError, match="outside"):
        BENCHMARK.accuracy(dataset, [(0, np.array([40], "<i8").tobytes())])
