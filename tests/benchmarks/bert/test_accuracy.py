"""bert.accuracy and bert.postprocess: SQuAD F1/EM on crafted cases, logits to answers, the gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeperf.benchmarks.bert import BENCHMARK
from edgeperf.benchmarks.bert.accuracy import evaluate, exact_match_score, f1_score, normalize_answer
from edgeperf.benchmarks.bert.dataset import BertDataset, open_dataset
from edgeperf.benchmarks.bert.ground_truth import standin_logits
from edgeperf.benchmarks.bert.postprocess import decode_logits, get_final_text
from edgeperf.benchmarks.bert.tokenization import FullTokenizer, load_vocab


def test_normalisation_and_scores_on_known_cases() -> None:
    assert normalize_answer("  The  Cat's, an   apple!") == "cats apple"
    assert exact_match_score("the cat", "Cat.") == 1.0
    assert f1_score("the cat sat", "cat sat on mat") == pytest.approx(2 / 3)  # p = 1, r = 1/2
    assert f1_score("dog", "cat") == 0.0
    assert f1_score("a", "cat") == 0.0  # empty after normalisation: no common tokens


def test_evaluate_perfect_none_and_partial() -> None:
    answers = {"q1": ("The cat", "cat"), "q2": ("1895",), "q3": ("cat sat on mat",)}
    perfect = evaluate(answers, {"q1": "cat", "q2": "1895", "q3": "cat sat on mat"})
    assert (perfect.exact_match, perfect.f1) == (100.0, 100.0)
    none = evaluate(answers, {"q1": "dog", "q2": "1943"})
    assert (none.exact_match, none.f1, none.answered) == (0.0, 0.0, 2)
    partial = evaluate(answers, {"q1": "the cat", "q2": "1895 1943", "q3": "cat sat"})
    # q1 exact; q2 p = 1/2 r = 1 -> 2/3; q3 p = 1 r = 1/2 -> 2/3; unanswered questions would count 0.
    assert partial.exact_match == pytest.approx(100 / 3)
    assert partial.f1 == pytest.approx(100 * (1 + 2 / 3 + 2 / 3) / 3)


def test_final_text_projects_back_onto_original_words(squad_dir: Path) -> None:
    tokenizer = FullTokenizer(load_vocab(squad_dir / "vocab.txt"))
    assert get_final_text(tokenizer, "steve smith", "Steve Smith's") == "Steve Smith"
    assert get_final_text(tokenizer, "1895", "(1895-1943).") == "1895"
    assert get_final_text(tokenizer, "dog", "Steve Smith's") == "Steve Smith's"


def _response(start: np.ndarray, end: np.ndarray) -> bytes:
    # the served outputs in model order (start logits, then end logits), logged as the reference's [seq, 2]
    return BENCHMARK.log_payload(np.concatenate([start, end]).astype(np.float32).tobytes(), 0)


def test_both_response_layouts_decode_to_the_same_logits() -> None:
    start, end = np.arange(4.0), -np.arange(4.0)
    served = np.concatenate([start, end]).astype(np.float32).tobytes()
    assert _response(start, end) == np.stack([start, end], axis=-1).astype(np.float32).tobytes()
    logged = decode_logits(_response(start, end), 6)
    concatenated = decode_logits(served, 6, transposed=True)
    for logits in (concatenated, logged):
        assert logits.start.tolist() == [0, 1, 2, 3, -10000, -10000]
        assert logits.end.tolist() == [0, -1, -2, -3, -10000, -10000]


def test_crafted_logits_give_known_answers_and_accuracy_txt(squad_dir: Path) -> None:
    dataset = open_dataset(str(squad_dir), size="small")
    seq = dataset.config.max_seq_length
    tokens = dataset.features[0].tokens
    # q1: best span "the cat" (doc tokens 8..9); a higher-scoring start inside the question is invalid.
    start, end = np.zeros(seq), np.zeros(seq)
    start[[1, 8]] = [9.0, 5.0]
    end[[9, 12]] = [5.0, 1.0]
    assert tokens[8:10] == ("the", "cat")
    # q2: "1895" from the bracketed word "(1895-1943)." (get_final_text trims the punctuation).
    tokens2 = dataset.features[1].tokens
    at = tokens2.index("1895")
    start2, end2 = np.zeros(seq), np.zeros(seq)
    start2[at], end2[at] = 4.0, 4.0
    end2[at + 2] = 3.0  # "1895-1943" scores lower
    report = BENCHMARK.accuracy(
        dataset, [(0, _response(start, end)), (1, _response(start2, end2))], size="small"
    )
    lines = report.text.splitlines()
    assert json.loads(lines[-3]) == {"exact_match": 100.0, "f1": 100.0}
    assert report.passed and report.value == 100.0
    assert report.target == pytest.approx(0.99 * 90.874)
    assert lines[-1].startswith("PASS F1 100.000 target 89.965")
    assert lines[-2].startswith("variant PASS F1 100.000 target 90.783")


def test_missing_responses_score_zero_and_fail_the_gate(squad_dir: Path) -> None:
    dataset = open_dataset(str(squad_dir), size="small")
    seq = dataset.config.max_seq_length
    start, end = np.zeros(seq), np.zeros(seq)
    start[8], end[9] = 5.0, 5.0
    report = BENCHMARK.accuracy(dataset, [(0, _response(start, end))], size="small")
    assert report.value == pytest.approx(50.0) and not report.passed
    assert report.text.splitlines()[-1].startswith("FAIL F1 50.000 target 89.965")


@pytest.fixture(scope="module")
def synthetic() -> BertDataset:
    return open_dataset("synthetic:40", size="small")


def test_synthetic_gate_fp32_passes_and_perturbed_fails(
    synthetic: BertDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGEPERF_CACHE_DIR", str(tmp_path / "cache"))
    logits = standin_logits(synthetic)
    exact = [(i, _response(lg.start, lg.end)) for i, lg in logits.items()]
    report = BENCHMARK.accuracy(synthetic, exact, size="small")
    assert report.passed and report.value == pytest.approx(100.0) and report.target == pytest.approx(99.0)
    assert list((tmp_path / "cache" / "bert").glob("synthetic-answers-*.json"))  # ground truth cached
    rng = np.random.default_rng(1)
    noisy = [(i, _response(lg.start + rng.normal(0, 2, lg.start.shape), lg.end)) for i, lg in logits.items()]
    failed = BENCHMARK.accuracy(synthetic, noisy, size="small")
    assert not failed.passed and failed.value < 99.0
    assert failed.text.splitlines()[-1].startswith("FAIL F1")


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_reduced_precision_variants_are_gated_against_fp32(
    synthetic: BertDataset, tmp_path: Path, precision: str
) -> None:
    import onnxruntime as ort

    BENCHMARK.write_model(tmp_path / "bert", size="small", precision=precision)
    assert f'string_value: "{precision}"' in (tmp_path / "bert" / "config.pbtxt").read_text()
    session = ort.InferenceSession(str(tmp_path / "bert" / "1" / "model.onnx"))
    feed = {
        name: np.stack([synthetic.sample(i)[name] for i in range(len(synthetic))])
        for name in synthetic.sample(0)
    }
    start, end = session.run(["output_start_logits", "output_end_logits"], feed)
    assert start.dtype == np.float32  # FP32 inputs and outputs are kept
    report = BENCHMARK.accuracy(synthetic, [(i, _response(start[i], end[i])) for i in range(len(synthetic))])
    # The variant's logits really differ from FP32's; its answers are scored against FP32's answers and
    # the verdict follows the value (on a set this small it may keep every answer or lose some).
    fp32 = standin_logits(synthetic)
    assert not np.array_equal(start[0], fp32[0].start.astype(np.float32))
    assert 0.0 < report.value <= 100.0
    assert report.passed == (report.value >= report.target) and report.target == pytest.approx(99.0)
