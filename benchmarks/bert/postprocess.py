"""From start/end logits to answer text, as `accuracy-squad.py` (mlcommons/inference `language/bert`) does.

Per example, over all its features that have a response: the `n_best_size` (20) highest start and end
logits form candidate spans; a span is kept when both ends are document tokens of the feature, the start
has its max context in this window, end >= start and the length is at most `max_answer_length` (30).
Candidates sorted by start + end logit; the first whose text is new wins. The text is the WordPiece
span with `##` joins, projected back onto the original words by `get_final_text`; no candidate gives
"empty". The reference tokenises the original text with the full WordPiece `BertTokenizer` inside
`get_final_text` (not BERT's BasicTokenizer), and so do we.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgeperf.benchmarks.bert.spec import MAX_ANSWER_LENGTH, N_BEST_SIZE
from edgeperf.benchmarks.bert.squad import SquadExample, SquadFeature
from edgeperf.benchmarks.bert.tokenization import FullTokenizer

__all__ = ["Logits", "decode_logits", "get_final_text", "predict_answers"]

NO_ANSWER_TEXT = "empty"
PAD_LOGIT = -10000.0


@dataclass(frozen=True, slots=True)
class Logits:
    start: npt.NDArray[np.float64]
    end: npt.NDArray[np.float64]


def decode_logits(
    data: bytes, max_seq_length: int, *, transposed: bool = False, dtype: type[np.generic] = np.float32
) -> Logits:
    """A response's logits, padded with -10000 to `max_seq_length` as `accuracy-squad.py` pads them.

    Args:
        transposed: False for the reference SUT's `np.stack(..., axis=-1)`, `[seq, 2]`, which edgeperf
            logs; True for the served outputs one after the other (start logits then end logits,
            `[2, seq]`; the reference script's `--output_transposed`).
    """
    flat = np.frombuffer(data, dtype=dtype).astype(np.float64)
    values = flat.reshape(2, -1).T if transposed else flat.reshape(-1, 2)
    start = np.full(max_seq_length, PAD_LOGIT)
    end = np.full(max_seq_length, PAD_LOGIT)
    n = min(values.shape[0], max_seq_length)
    start[:n] = values[:n, 0]
    end[:n] = values[:n, 1]
    return Logits(start, end)


def _best_indexes(logits: npt.NDArray[np.float64], n_best_size: int) -> list[int]:
    # A stable sort on the negated values keeps the reference's order for equal logits (lower index first).
    order = np.argsort(-logits, kind="stable")
    return [int(i) for i in order[:n_best_size]]


def _strip_spaces(text: str) -> tuple[str, dict[int, int]]:
    chars: list[str] = []
    mapping: dict[int, int] = {}
    for index, char in enumerate(text):
        if char == " ":
            continue
        mapping[len(chars)] = index
        chars.append(char)
    return "".join(chars), mapping


def get_final_text(tokenizer: FullTokenizer, pred_text: str, orig_text: str) -> str:
    """Project the normalised prediction back onto the original words; `orig_text` when alignment fails."""
    tok_text = " ".join(tokenizer.tokenize(orig_text))
    start_position = tok_text.find(pred_text)
    if start_position == -1:
        return orig_text
    end_position = start_position + len(pred_text) - 1
    orig_ns, orig_ns_to_s = _strip_spaces(orig_text)
    tok_ns, tok_ns_to_s = _strip_spaces(tok_text)
    if len(orig_ns) != len(tok_ns):
        return orig_text
    tok_s_to_ns = {s: ns for ns, s in tok_ns_to_s.items()}
    if start_position not in tok_s_to_ns or end_position not in tok_s_to_ns:
        return orig_text
    orig_start = orig_ns_to_s.get(tok_s_to_ns[start_position])
    orig_end = orig_ns_to_s.get(tok_s_to_ns[end_position])
    if orig_start is None or orig_end is None:
        return orig_text
    return orig_text[orig_start : orig_end + 1]


def _span_text(
    tokenizer: FullTokenizer, example: SquadExample, feature: SquadFeature, start: int, end: int
) -> str:
    tok_text = " ".join(feature.tokens[start : end + 1]).replace(" ##", "").replace("##", "")
    tok_text = " ".join(tok_text.strip().split())
    orig_words = example.doc_tokens[feature.token_to_orig_map[start] : feature.token_to_orig_map[end] + 1]
    return get_final_text(tokenizer, tok_text, " ".join(orig_words))


def predict_answers(
    examples: Sequence[SquadExample],
    features: Sequence[SquadFeature],
    logits: Mapping[int, Logits],
    tokenizer: FullTokenizer,
    *,
    n_best_size: int = N_BEST_SIZE,
    max_answer_length: int = MAX_ANSWER_LENGTH,
) -> dict[str, str]:
    """`qas_id -> answer text` for every example; `logits` maps feature index -> its logits.

    Examples none of whose features has logits are left out (the evaluation then scores them 0).
    """
    by_example: dict[int, list[int]] = {}
    for index, feature in enumerate(features):
        by_example.setdefault(feature.example_index, []).append(index)
    predictions: dict[str, str] = {}
    for example_index, example in enumerate(examples):
        candidates: list[tuple[float, int, int, int]] = []
        answered = False
        for feature_index in by_example.get(example_index, []):
            result = logits.get(feature_index)
            if result is None:
                continue
            answered = True
            feature = features[feature_index]
            n_tokens = len(feature.tokens)
            for start in _best_indexes(result.start, n_best_size):
                for end in _best_indexes(result.end, n_best_size):
                    if start >= n_tokens or end >= n_tokens:
                        continue
                    if start not in feature.token_to_orig_map or end not in feature.token_to_orig_map:
                        continue
                    if not feature.token_is_max_context.get(start, False):
                        continue
                    if end < start or end - start + 1 > max_answer_length:
                        continue
                    score = float(result.start[start] + result.end[end])
                    candidates.append((score, feature_index, start, end))
        if not answered:
            continue
        # Python's sort is stable, so equal scores keep generation order, as in the reference.
        candidates.sort(key=lambda c: c[0], reverse=True)
        # NOTE: the reference builds a deduplicated n-best list, but its top entry, the answer, is
        # always the first candidate.
        if candidates:
            _, feature_index, start, end = candidates[0]
            predictions[example.qas_id] = _span_text(tokenizer, example, features[feature_index], start, end)
        else:
            predictions[example.qas_id] = NO_ANSWER_TEXT
    return predictions
