"""Stand-in geometry (layers, sequence length, ...) for each size: needed by the dataset's tokenisation too,
so it lives apart from the ONNX model builder (the client needs no onnx for performance runs)."""

from __future__ import annotations

from dataclasses import dataclass

import edgeperf.benchmarks.bert.spec as bert_spec
from edgeperf.benchmarks.base import Size

__all__ = ["FULL", "SMALL", "BertConfig", "config_for"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BertConfig:
    """Architecture, sequence geometry and weight seed of a stand-in."""

    layers: int
    hidden: int
    heads: int
    intermediate: int
    max_seq_length: int
    vocab_size: int = 30522
    max_position: int = 512
    type_vocab_size: int = 2
    doc_stride: int
    max_query_length: int
    max_batch_size: int
    """max_batch_size of the written config.pbtxt."""
    seed: int = 20221
    qa_head_scale: float = 4.0
    """QA head weights are this many times 1/sqrt(hidden): a clear best span instead of near-ties."""

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


FULL = BertConfig(
    layers=24,
    hidden=1024,
    heads=16,
    intermediate=4096,
    max_seq_length=bert_spec.MAX_SEQ_LENGTH,
    doc_stride=bert_spec.DOC_STRIDE,
    max_query_length=bert_spec.MAX_QUERY_LENGTH,
    max_batch_size=16,
)
SMALL = BertConfig(
    layers=2,
    hidden=64,
    heads=4,
    intermediate=256,
    max_seq_length=64,
    doc_stride=24,
    max_query_length=16,
    max_batch_size=32,
)


def config_for(size: Size) -> BertConfig:
    return FULL if size == "full" else SMALL
