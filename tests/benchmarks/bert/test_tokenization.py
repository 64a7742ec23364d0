"""bert.tokenization: BERT's basic + WordPiece behaviour on known tokens."""

from __future__ import annotations

from pathlib import Path

from edgeperf.benchmarks.bert.tokenization import (
    BasicTokenizer,
    FullTokenizer,
    WordpieceTokenizer,
    load_vocab,
)


def test_basic_lowercases_strips_accents_and_splits_punctuation() -> None:
    basic = BasicTokenizer()
    assert basic.tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["hello", "!", "how", "are", "you", "?"]
    assert basic.tokenize("Café Münchën") == ["cafe", "munchen"]
    assert basic.tokenize("a$b^c`d") == [
        "a",
        "$",
        "b",
        "^",
        "c",
        "`",
        "d",
    ]  # ASCII symbols count as punctuation


def test_basic_drops_control_characters_and_spaces_cjk() -> None:
    basic = BasicTokenizer()
    assert basic.tokenize("ab\x00c\ufffdd\u200b") == ["abcd"]
    assert basic.tokenize("ah博推zz") == ["ah", "博", "推", "zz"]


def test_basic_without_lower_case_keeps_case() -> None:
    assert BasicTokenizer(do_lower_case=False).tokenize("HeLLo!") == ["HeLLo", "!"]


def test_wordpiece_is_greedy_longest_match_first() -> None:
    vocab = {
        t: i
        for i, t in enumerate(["[UNK]", "un", "##aff", "##able", "runn", "##ing", "##s", "want", "##want"])
    }
    wordpiece = WordpieceTokenizer(vocab)
    assert wordpiece.tokenize("unaffable") == ["un", "##aff", "##able"]
    assert wordpiece.tokenize("unwanted running") == ["[UNK]", "runn", "##ing"]
    assert wordpiece.tokenize("wantwant") == ["want", "##want"]
    assert wordpiece.tokenize("x" * 101) == ["[UNK]"]


def test_full_tokenizer_ids_follow_vocab_lines(squad_dir: Path, vocab_tokens: list[str]) -> None:
    vocab = load_vocab(squad_dir / "vocab.txt")
    assert vocab["[CLS]"] == 2 and vocab["the"] == 5 and vocab["##able"] == 20
    tokenizer = FullTokenizer(vocab)
    tokens = tokenizer.tokenize("The UNAFFABLE cat's mat?")
    assert tokens == ["the", "un", "##aff", "##able", "cat", "'", "s", "mat", "?"]
    assert tokenizer.convert_tokens_to_ids(tokens) == [5, 18, 19, 20, 6, 16, 17, 9, 13]
    assert tokenizer.convert_tokens_to_ids(["dog"]) == [vocab_tokens.index("[UNK]")]
    assert tokenizer.convert_ids_to_tokens([2, 3]) == ["[CLS]", "[SEP]"]
