"""Tiny SQuAD v1.1 files in the published format, written by the tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "the", "cat", "sat", "on", "mat", "who", "what", "did", "?", ".", ",", "'", "s",
    "un", "##aff", "##able", "steve", "smith", "hello", "world", "!", "cafe",
    "in", "1895", "-", "1943", "(", ")", "born", "was", "he", "when",
]  # fmt: skip
"""Ids are line numbers: [CLS]=2, [SEP]=3, the=5, cat=6, ... (known ids the tests check)."""

CONTEXT = "The cat sat on the mat. Steve Smith's cat was born in (1895-1943)."
QUESTIONS = [
    {"id": "q1", "question": "Who sat on the mat?", "answers": [{"text": "The cat", "answer_start": 0}]},
    {"id": "q2", "question": "When was he born?", "answers": [{"text": "1895", "answer_start": 57}]},
]


@pytest.fixture
def vocab_tokens() -> list[str]:
    return list(VOCAB)


@pytest.fixture
def squad_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "squad"
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    document = {
        "version": "1.1",
        "data": [{"title": "Cats", "paragraphs": [{"context": CONTEXT, "qas": QUESTIONS}]}],
    }
    (folder / "dev-v1.1.json").write_text(json.dumps(document), encoding="utf-8")
    return folder


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The synthetic ground truth is cached; tests keep it out of the user's cache.
    monkeypatch.setenv("EDGEPERF_CACHE_DIR", str(tmp_path / "cache"))
