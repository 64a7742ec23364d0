"""bert.squad and bert.dataset: the published SQuAD format into features with doc-stride windows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeperf.benchmarks.bert.dataset import open_dataset
from edgeperf.benchmarks.bert.squad import (
    DatasetFormatError,
    SquadExample,
    convert_examples_to_features,
    read_squad_examples,
)
from edgeperf.benchmarks.bert.tokenization import FullTokenizer, load_vocab


def test_examples_keep_whitespace_words_and_answers(squad_dir: Path) -> None:
    examples = read_squad_examples(squad_dir / "dev-v1.1.json")
    assert [e.qas_id for e in examples] == ["q1", "q2"]
    assert examples[0].doc_tokens[:4] == ("The", "cat", "sat", "on")
    assert examples[0].doc_tokens[-1] == "(1895-1943)."
    assert examples[1].answers == ("1895",)


def test_feature_layout_ids_mask_and_segments(squad_dir: Path, vocab_tokens: list[str]) -> None:
    dataset = open_dataset(str(squad_dir), size="small")  # max_seq_length 64: one window each
    assert len(dataset) == 2
    feature = dataset.features[0]
    assert feature.unique_id == 1000000000 and dataset.features[1].unique_id == 1000000001
    query = ["who", "sat", "on", "the", "mat", "?"]
    doc = [
        "the",
        "cat",
        "sat",
        "on",
        "the",
        "mat",
        ".",
        "steve",
        "smith",
        "'",
        "s",
        "cat",
        "was",
        "born",
        "in",
    ]
    doc += ["(", "1895", "-", "1943", ")", "."]
    assert list(feature.tokens) == ["[CLS]", *query, "[SEP]", *doc, "[SEP]"]
    n = len(feature.tokens)
    expected_ids = [vocab_tokens.index(t) for t in feature.tokens] + [0] * (64 - n)
    sample = dataset.sample(0)
    assert sample["input_ids"].dtype == np.int64 and sample["input_ids"].shape == (64,)
    assert sample["input_ids"].tolist() == expected_ids
    assert sample["input_mask"].tolist() == [1] * n + [0] * (64 - n)
    assert sample["segment_ids"].tolist() == [0] * 8 + [1] * (n - 8) + [0] * (64 - n)
    # Document positions map to whitespace words: "Smith's" is word 7; the first doc token is word 0.
    assert feature.token_to_orig_map[8] == 0
    assert feature.token_to_orig_map[8 + doc.index("smith")] == 7
    assert feature.token_to_orig_map[8 + doc.index("s")] == 7
    assert all(feature.token_is_max_context.values())


def test_doc_stride_windows_and_max_context(squad_dir: Path) -> None:
    tokenizer = FullTokenizer(load_vocab(squad_dir / "vocab.txt"))
    words = tuple(["the", "cat", "sat", "on", "the", "mat"] * 4)  # 24 document tokens
    example = SquadExample(qas_id="x", question_text="who sat?", doc_tokens=words, answers=("cat",))
    # max_seq 16, query 3 tokens -> 16 - 3 - 3 = 10 document tokens a window, windows start every 4.
    features = convert_examples_to_features(
        [example], tokenizer, max_seq_length=16, doc_stride=4, max_query_length=8
    )
    starts = [f.token_to_orig_map[5] for f in features]
    assert starts == [0, 4, 8, 12, 16]
    assert features[-1].tokens[-1] == "[SEP]" and len(features[-1].tokens) == 5 + 8 + 1
    # Document token 9 sits at offsets 9, 5, 1 of the first three windows: context min(9,0), min(5,4),
    # min(1,8); the second window wins. Token 6 (offsets 6, 2): min(6,3) beats min(2,7), the first wins.
    first, second, third = features[0], features[1], features[2]
    assert (first.token_is_max_context[5 + 9], second.token_is_max_context[5 + 5]) == (False, True)
    assert third.token_is_max_context[5 + 1] is False
    assert (first.token_is_max_context[5 + 6], second.token_is_max_context[5 + 2]) == (True, False)
    assert [f.doc_span_index for f in features] == [0, 1, 2, 3, 4]


def test_long_queries_are_cut_to_max_query_length(squad_dir: Path) -> None:
    tokenizer = FullTokenizer(load_vocab(squad_dir / "vocab.txt"))
    example = SquadExample(qas_id="x", question_text="the cat " * 10, doc_tokens=("mat",), answers=())
    (feature,) = convert_examples_to_features(
        [example], tokenizer, max_seq_length=16, doc_stride=4, max_query_length=3
    )
    assert list(feature.tokens) == ["[CLS]", "the", "cat", "the", "[SEP]", "mat", "[SEP]"]


def test_missing_files_and_fields_are_named(tmp_path: Path, squad_dir: Path) -> None:
    with pytest.raises(DatasetFormatError, match=r"vocab\.txt"):
        open_dataset(str(tmp_path), size="small")
    (squad_dir / "dev-v1.1.json").write_text(json.dumps({"data": [{"paragraphs": [{"qas": []}]}]}))
    with pytest.raises(DatasetFormatError, match=r"paragraphs\[0\]: missing 'context'"):
        open_dataset(str(squad_dir), size="small")


def test_synthetic_dataset_has_exact_count_windows_and_is_deterministic() -> None:
    first = open_dataset("synthetic:50", size="small")
    again = open_dataset("synthetic:50", size="small")
    assert len(first) == 50
    assert [f.input_ids.tolist() for f in first.features] == [f.input_ids.tolist() for f in again.features]
    assert any(f.doc_span_index > 0 for f in first.features)  # some paragraphs need several windows
    assert len({f.unique_id for f in first.features}) == 50
    assert max(int(f.input_ids.max()) for f in first.features) < first.config.vocab_size
    with pytest.raises(ValueError, match="synthetic count"):
        open_dataset("synthetic:many", size="small")
