"""BERT's WordPiece tokenizer: basic tokenisation (clean, lower-case, strip accents, split punctuation and
CJK characters) followed by greedy longest-match-first WordPiece with `##` continuations.

Behaviour follows google-research/bert `tokenization.py` (BasicTokenizer, WordpieceTokenizer,
FullTokenizer), which the MLPerf reference uses through `transformers.BertTokenizer` with
`do_lower_case=True`: words longer than 100 characters and words with no WordPiece cover become `[UNK]`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

__all__ = ["BasicTokenizer", "FullTokenizer", "WordpieceTokenizer", "load_vocab", "whitespace_tokenize"]

UNK_TOKEN = "[UNK]"
MAX_INPUT_CHARS_PER_WORD = 100


def load_vocab(path: Path) -> dict[str, int]:
    """`vocab.txt`: one token a line; the id is the line number (0-based)."""
    vocab: dict[str, int] = {}
    with path.open(encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            token = line.rstrip("\n").strip()
            vocab[token] = index
    return vocab


def whitespace_tokenize(text: str) -> list[str]:
    return text.strip().split()


def _is_whitespace(char: str) -> bool:
    # \t, \n and \r are control characters but count as whitespace here, as in BERT.
    if char in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    if char in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char: str) -> bool:
    # All non-letter/number ASCII counts as punctuation ("$", "^", "`"), as in BERT, besides Unicode P*.
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


class BasicTokenizer:
    """Cleaning, CJK spacing, lower-casing with accent stripping, and punctuation splitting."""

    def __init__(self, *, do_lower_case: bool = True) -> None:
        self.do_lower_case = do_lower_case

    def tokenize(self, text: str) -> list[str]:
        text = self._clean(text)
        text = "".join(f" {c} " if _is_cjk(ord(c)) else c for c in text)
        tokens: list[str] = []
        for token in whitespace_tokenize(text):
            if self.do_lower_case:
                token = self._strip_accents(token.lower())
            tokens.extend(self._split_punctuation(token))
        return whitespace_tokenize(" ".join(tokens))

    @staticmethod
    def _clean(text: str) -> str:
        out: list[str] = []
        for char in text:
            cp = ord(char)
            if cp == 0 or cp == 0xFFFD or _is_control(char):
                continue
            out.append(" " if _is_whitespace(char) else char)
        return "".join(out)

    @staticmethod
    def _strip_accents(text: str) -> str:
        return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")

    @staticmethod
    def _split_punctuation(text: str) -> list[str]:
        pieces: list[str] = []
        current: list[str] = []
        for char in text:
            if _is_punctuation(char):
                if current:
                    pieces.append("".join(current))
                    current = []
                pieces.append(char)
            else:
                current.append(char)
        if current:
            pieces.append("".join(current))
        return pieces


class WordpieceTokenizer:
    """Greedy longest-match-first split of each word into vocabulary pieces (`##` marks continuations)."""

    def __init__(self, vocab: Mapping[str, int], *, unk_token: str = UNK_TOKEN) -> None:
        self.vocab = vocab
        self.unk_token = unk_token

    def tokenize(self, text: str) -> list[str]:
        output: list[str] = []
        for word in whitespace_tokenize(text):
            if len(word) > MAX_INPUT_CHARS_PER_WORD:
                output.append(self.unk_token)
                continue
            pieces: list[str] = []
            start = 0
            while start < len(word):
                end = len(word)
                match: str | None = None
                while start < end:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    if piece in self.vocab:
                        match = piece
                        break
                    end -= 1
                if match is None:
                    pieces = [self.unk_token]
                    break
                pieces.append(match)
                start = end
            output.extend(pieces)
        return output


class FullTokenizer:
    """Basic tokenisation then WordPiece, and the token/id conversions (`[UNK]` for unknown tokens)."""

    def __init__(self, vocab: Mapping[str, int], *, do_lower_case: bool = True) -> None:
        self.vocab = dict(vocab)
        self.inv_vocab = {index: token for token, index in self.vocab.items()}
        self.basic = BasicTokenizer(do_lower_case=do_lower_case)
        self.wordpiece = WordpieceTokenizer(self.vocab)
        self._pieces: dict[str, list[str]] = {}

    @classmethod
    def from_file(cls, vocab_file: Path, *, do_lower_case: bool = True) -> FullTokenizer:
        return cls(load_vocab(vocab_file), do_lower_case=do_lower_case)

    def tokenize(self, text: str) -> list[str]:
        out: list[str] = []
        for token in self.basic.tokenize(text):
            # NOTE: words repeat a lot in SQuAD; memoising WordPiece per word makes feature creation
            # several times faster and changes nothing (WordPiece of a word is a pure function).
            pieces = self._pieces.get(token)
            if pieces is None:
                pieces = self.wordpiece.tokenize(token)
                self._pieces[token] = pieces
            out.extend(pieces)
        return out

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list[int]:
        unk = self.vocab.get(UNK_TOKEN, 0)
        return [self.vocab.get(token, unk) for token in tokens]

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        return [self.inv_vocab[i] for i in ids]
