"""BERT datasets: SQuAD v1.1 (`dev-v1.1.json` + `vocab.txt`) and a synthetic SQuAD of any size.

A sample is one feature (a document window), as in the reference QSL (`squad_QSL.py`): the QSL size
counts features, not questions. The published format is a folder holding `dev-v1.1.json` and
`vocab.txt` (or the JSON path with `vocab.txt` beside it).

Synthetic data: a generated vocabulary of word pieces, paragraphs of generated words (several questions
per paragraph, lengths that need doc-stride windows) and questions made of paragraph words. Its answers
are the FP32 stand-in's own predictions (see `ground_truth.py`), so the gate measures a variant against
FP32.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeperf.benchmarks.base import Sample, Size
from edgeperf.benchmarks.bert.config import BertConfig, config_for
from edgeperf.benchmarks.bert.spec import SPEC
from edgeperf.benchmarks.bert.squad import (
    FIRST_UNIQUE_ID,
    DatasetFormatError,
    SquadExample,
    SquadFeature,
    convert_examples_to_features,
    read_squad_examples,
)
from edgeperf.benchmarks.bert.tokenization import FullTokenizer, load_vocab

__all__ = ["BertDataset", "open_dataset", "synthetic_dataset", "synthetic_vocab"]

SYNTHETIC_SEED = 1_000_003
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


@dataclass(frozen=True, slots=True, kw_only=True)
class BertDataset:
    """Examples, their features (the samples) and the tokenizer that made them."""

    examples: tuple[SquadExample, ...]
    features: tuple[SquadFeature, ...]
    tokenizer: FullTokenizer
    config: BertConfig
    synthetic: bool
    source: str

    @property
    def truth_from_standin(self) -> bool:
        """Scoring needs the FP32 stand-in's answers (the synthetic set), computed with ONNX Runtime."""
        return self.synthetic

    def __len__(self) -> int:
        return len(self.features)

    def sample(self, index: int) -> Sample:
        feature = self.features[index]
        return {
            "input_ids": feature.input_ids,
            "input_mask": feature.input_mask,
            "segment_ids": feature.segment_ids,
        }


def _features(
    examples: Sequence[SquadExample],
    tokenizer: FullTokenizer,
    config: BertConfig,
    document_cache: dict[tuple[str, ...], tuple[list[str], list[int]]] | None = None,
) -> list[SquadFeature]:
    return convert_examples_to_features(
        examples,
        tokenizer,
        max_seq_length=config.max_seq_length,
        doc_stride=config.doc_stride,
        max_query_length=config.max_query_length,
        document_cache=document_cache,
    )


def _dataset(
    examples: Sequence[SquadExample],
    features: Sequence[SquadFeature],
    tokenizer: FullTokenizer,
    config: BertConfig,
    *,
    synthetic: bool,
    source: str,
) -> BertDataset:
    return BertDataset(
        examples=tuple(examples),
        features=tuple(features),
        tokenizer=tokenizer,
        config=config,
        synthetic=synthetic,
        source=source,
    )


def load_squad(path: Path, *, size: Size = "full") -> BertDataset:
    """SQuAD v1.1 from a folder with `dev-v1.1.json` and `vocab.txt`, or from the JSON file's path."""
    json_path = path / "dev-v1.1.json" if path.is_dir() else path
    vocab_path = json_path.parent / "vocab.txt"
    for required in (json_path, vocab_path):
        if not required.is_file():
            raise DatasetFormatError(f"{required}: missing (SQuAD needs dev-v1.1.json and vocab.txt)")
    config = config_for(size)
    tokenizer = FullTokenizer(load_vocab(vocab_path), do_lower_case=True)
    if max(tokenizer.vocab.values(), default=0) >= config.vocab_size:
        raise DatasetFormatError(
            f"{vocab_path}: more tokens than the model's vocabulary ({config.vocab_size})"
        )
    examples = read_squad_examples(json_path)
    features = _features(examples, tokenizer, config)
    return _dataset(examples, features, tokenizer, config, synthetic=False, source=str(json_path))


def synthetic_vocab(n_words: int = 2000) -> dict[str, int]:
    """Special tokens, punctuation, generated syllable words and `##` continuation pieces."""
    tokens = [*SPECIAL_TOKENS, ".", ",", "?", "'", "-"]
    syllables = [c + v for c in _CONSONANTS for v in _VOWELS]
    rng = np.random.default_rng(SYNTHETIC_SEED)
    words: set[str] = set()
    while len(words) < n_words:
        count = int(rng.integers(1, 4))
        words.add("".join(syllables[int(i)] for i in rng.integers(0, len(syllables), count)))
    tokens.extend(sorted(words))
    tokens.extend("##" + s for s in syllables)
    return {token: index for index, token in enumerate(tokens)}


def _word(rng: np.random.Generator, words: Sequence[str], pieces: Sequence[str]) -> str:
    word = words[int(rng.integers(0, len(words)))]
    # One word in eight is a compound that WordPiece splits into a word and `##` pieces.
    if rng.random() < 0.125:
        word += "".join(pieces[int(i)] for i in rng.integers(0, len(pieces), int(rng.integers(1, 3))))
    if rng.random() < 0.1:
        word = word.capitalize()
    if rng.random() < 0.08:
        word += "," if rng.random() < 0.5 else "."
    return word


def synthetic_dataset(count: int, *, size: Size = "full") -> BertDataset:
    """`count` features from generated paragraphs and questions (deterministic for count and size)."""
    if count < 1:
        raise ValueError("a synthetic dataset needs at least one sample")
    config = config_for(size)
    vocab = synthetic_vocab()
    tokenizer = FullTokenizer(vocab, do_lower_case=True)
    words = [t for t in vocab if t.isalpha()]
    pieces = [t[2:] for t in vocab if t.startswith("##")]
    rng = np.random.default_rng(SYNTHETIC_SEED + count)
    # Paragraph lengths as in SQuAD: most fit one window, one in eight needs doc-stride windows.
    one_window_words = config.max_seq_length * 2 // 3
    long_words = int(config.max_seq_length * 1.6)
    documents: dict[tuple[str, ...], tuple[list[str], list[int]]] = {}
    examples: list[SquadExample] = []
    features: list[SquadFeature] = []
    paragraph: tuple[str, ...] = ()
    questions_left = 0
    while len(features) < count:
        room = count - len(features)
        if questions_left == 0 or room < 3:
            longest = long_words if rng.random() < 0.125 else one_window_words
            n_words = int(rng.integers(config.max_seq_length // 4, longest))
            if room < 3:
                n_words = config.max_seq_length // 4  # one window only, so the count comes out exact
            paragraph = tuple(_word(rng, words, pieces) for _ in range(n_words))
            questions_left = int(rng.integers(1, 6))
        questions_left -= 1
        n_question = int(rng.integers(3, config.max_query_length // 2 + 3))
        question = " ".join([*(_word(rng, words, pieces) for _ in range(n_question)), "?"])
        example = SquadExample(
            qas_id=f"synthetic-{len(examples):06d}",
            question_text=question,
            doc_tokens=paragraph,
            answers=(),
        )
        new = _features([example], tokenizer, config, documents)
        if len(new) > room:
            questions_left = 0
            continue
        for feature in new:
            features.append(
                dataclasses.replace(
                    feature, unique_id=FIRST_UNIQUE_ID + len(features), example_index=len(examples)
                )
            )
        examples.append(example)
    return _dataset(examples, features, tokenizer, config, synthetic=True, source=f"synthetic:{count}")


def open_dataset(source: str, *, size: Size = "full") -> BertDataset:
    """`synthetic` (the QSL size), `synthetic:COUNT`, or a path to SQuAD v1.1 in its published format.

    Raises:
        DatasetFormatError: the files are missing or not in the published format.
        ValueError: a bad synthetic count.
    """
    if source == "synthetic" or source.startswith("synthetic:"):
        _, _, count_text = source.partition(":")
        try:
            count = int(count_text) if count_text else SPEC.qsl_size
        except ValueError:
            raise ValueError(f"bad synthetic count in {source!r}") from None
        return synthetic_dataset(count, size=size)
    return load_squad(Path(source), size=size)
