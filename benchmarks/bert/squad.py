"""SQuAD v1.1 examples and BERT input features with a sliding document window.

Follows `create_squad_data.py` of mlcommons/inference `language/bert` (itself google-research/bert
`run_squad.py`): the paragraph is split on whitespace into words with a character-to-word map; each word
is WordPiece-tokenised; the question keeps at most `max_query_length` tokens; the document is cut into
spans of `max_seq_length - len(query) - 3` tokens starting every `doc_stride` tokens; a feature is
`[CLS] query [SEP] span [SEP]` with segment ids 0 then 1, mask 1 on real tokens, and 0 padding. Each span
token records its original word and whether this span gives it the most context
(`min(left, right) + 0.01 * span length`, the first span wins ties). Unique ids start at 1000000000.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgeperf.benchmarks.bert.tokenization import FullTokenizer

__all__ = [
    "DatasetFormatError",
    "SquadExample",
    "SquadFeature",
    "convert_examples_to_features",
    "parse_squad",
    "read_squad_examples",
]

FIRST_UNIQUE_ID = 1000000000


class DatasetFormatError(ValueError):
    """A dataset file is not in the published format; the message names the file and the field."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SquadExample:
    """One question on one paragraph: the paragraph's whitespace words and the accepted answers."""

    qas_id: str
    question_text: str
    doc_tokens: tuple[str, ...]
    answers: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SquadFeature:
    """One model input: a window of one example's document after the question."""

    unique_id: int
    example_index: int
    doc_span_index: int
    tokens: tuple[str, ...]
    token_to_orig_map: Mapping[int, int]
    """Feature position -> index in the example's `doc_tokens` (document tokens only)."""
    token_is_max_context: Mapping[int, bool]
    input_ids: npt.NDArray[np.int64]
    input_mask: npt.NDArray[np.int64]
    segment_ids: npt.NDArray[np.int64]


def _is_whitespace(char: str) -> bool:
    # create_squad_data.py also treats U+202F (narrow no-break space) as a word separator.
    return char in (" ", "\t", "\r", "\n") or ord(char) == 0x202F


def _split_words(text: str) -> tuple[str, ...]:
    words: list[str] = []
    previous_was_space = True
    for char in text:
        if _is_whitespace(char):
            previous_was_space = True
        elif previous_was_space:
            words.append(char)
            previous_was_space = False
        else:
            words[-1] += char
    return tuple(words)


def _require(mapping: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise DatasetFormatError(f"{where}: missing {key!r}")
    value = mapping[key]
    if not isinstance(value, kind):
        raise DatasetFormatError(f"{where}: {key!r} must be a {kind.__name__}")
    return value


def parse_squad(document: Any, *, source: str = "<squad>") -> list[SquadExample]:
    """The examples of a parsed `dev-v1.1.json`, in file order (articles, paragraphs, questions)."""
    examples: list[SquadExample] = []
    for a, article in enumerate(_require(document, "data", list, source)):
        for p, paragraph in enumerate(_require(article, "paragraphs", list, f"{source}: data[{a}]")):
            where = f"{source}: data[{a}].paragraphs[{p}]"
            doc_tokens = _split_words(_require(paragraph, "context", str, where))
            for q, qa in enumerate(_require(paragraph, "qas", list, where)):
                qwhere = f"{where}.qas[{q}]"
                answers = _require(qa, "answers", list, qwhere)
                examples.append(
                    SquadExample(
                        qas_id=str(_require(qa, "id", str, qwhere)),
                        question_text=_require(qa, "question", str, qwhere),
                        doc_tokens=doc_tokens,
                        answers=tuple(str(_require(x, "text", str, f"{qwhere}.answers")) for x in answers),
                    )
                )
    return examples


def read_squad_examples(path: Path) -> list[SquadExample]:
    """The examples of a SQuAD v1.1 file (`dev-v1.1.json`)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetFormatError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    return parse_squad(document, source=str(path))


def _doc_spans(n_tokens: int, max_tokens_for_doc: int, doc_stride: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = 0
    while start < n_tokens:
        length = min(n_tokens - start, max_tokens_for_doc)
        spans.append((start, length))
        if start + length == n_tokens:
            break
        start += min(length, doc_stride)
    return spans


def _is_max_context(spans: Sequence[tuple[int, int]], current: int, position: int) -> bool:
    best_score: float | None = None
    best_index = -1
    for index, (start, length) in enumerate(spans):
        end = start + length - 1
        if position < start or position > end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best_index = score, index
    return current == best_index


def _tokenize_document(words: Sequence[str], tokenizer: FullTokenizer) -> tuple[list[str], list[int]]:
    pieces: list[str] = []
    tok_to_orig: list[int] = []
    for word_index, word in enumerate(words):
        for piece in tokenizer.tokenize(word):
            tok_to_orig.append(word_index)
            pieces.append(piece)
    return pieces, tok_to_orig


def convert_examples_to_features(
    examples: Sequence[SquadExample],
    tokenizer: FullTokenizer,
    *,
    max_seq_length: int,
    doc_stride: int,
    max_query_length: int,
    document_cache: dict[tuple[str, ...], tuple[list[str], list[int]]] | None = None,
) -> list[SquadFeature]:
    """Every feature of every example, in example then window order, ids from 1000000000 up.

    `document_cache` keeps paragraphs' WordPiece splits across calls (None: one cache for this call).
    """
    if document_cache is None:
        document_cache = {}
    if max_seq_length - max_query_length - 3 <= 0:
        raise ValueError("max_seq_length leaves no room for the document after the query")
    features: list[SquadFeature] = []
    unique_id = FIRST_UNIQUE_ID
    cls_sep = tokenizer.convert_tokens_to_ids(["[CLS]", "[SEP]"])
    for example_index, example in enumerate(examples):
        query = tokenizer.tokenize(example.question_text)[:max_query_length]
        # NOTE: SQuAD asks several questions per paragraph; its WordPiece split is computed once.
        cached = document_cache.get(example.doc_tokens)
        if cached is None:
            cached = _tokenize_document(example.doc_tokens, tokenizer)
            document_cache[example.doc_tokens] = cached
        doc_pieces, tok_to_orig = cached
        spans = _doc_spans(len(doc_pieces), max_seq_length - len(query) - 3, doc_stride)
        query_ids = tokenizer.convert_tokens_to_ids(query)
        for span_index, (start, length) in enumerate(spans):
            tokens = ["[CLS]", *query, "[SEP]"]
            ids = [cls_sep[0], *query_ids, cls_sep[1]]
            segment = [0] * len(tokens)
            to_orig: dict[int, int] = {}
            max_context: dict[int, bool] = {}
            piece_ids = tokenizer.convert_tokens_to_ids(doc_pieces[start : start + length])
            for offset in range(length):
                position = start + offset
                to_orig[len(tokens)] = tok_to_orig[position]
                max_context[len(tokens)] = _is_max_context(spans, span_index, position)
                tokens.append(doc_pieces[position])
            ids.extend(piece_ids)
            tokens.append("[SEP]")
            ids.append(cls_sep[1])
            segment.extend([1] * (length + 1))
            input_ids = np.zeros(max_seq_length, dtype=np.int64)
            input_mask = np.zeros(max_seq_length, dtype=np.int64)
            segment_ids = np.zeros(max_seq_length, dtype=np.int64)
            input_ids[: len(ids)] = ids
            input_mask[: len(ids)] = 1
            segment_ids[: len(segment)] = segment
            features.append(
                SquadFeature(
                    unique_id=unique_id,
                    example_index=example_index,
                    doc_span_index=span_index,
                    tokens=tuple(tokens),
                    token_to_orig_map=to_orig,
                    token_is_max_context=max_context,
                    input_ids=input_ids,
                    input_mask=input_mask,
                    segment_ids=segment_ids,
                )
            )
            unique_id += 1
    return features
