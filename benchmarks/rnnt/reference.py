"""Ground truth for synthetic utterances: the FP32 stand-in's own transcript, computed in-process and cached."""

from __future__ import annotations

import hashlib
import json
import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeperf.benchmarks.base import Size
from edgeperf.benchmarks.rnnt.spec import LABELS

if TYPE_CHECKING:
    from edgeperf.benchmarks.rnnt.dataset import SyntheticSpeech
    from edgeperf.benchmarks.rnnt.pipeline import RnntPipeline

__all__ = ["standin_transcript", "tokens_to_text"]

_LOCK = threading.Lock()


def tokens_to_text(tokens: np.ndarray[Any, Any] | list[int]) -> str:
    """Label ids -> characters, as the reference's __gather_predictions does.

    Raises:
        ValueError: an id outside the 28 labels (blank is never emitted).
    """
    ids = [int(t) for t in tokens]
    bad = [t for t in ids if not 0 <= t < len(LABELS)]
    if bad:
        raise ValueError(f"label ids {bad[:5]} are outside 0..{len(LABELS) - 1}")
    return "".join(LABELS[t] for t in ids)


@lru_cache(maxsize=2)
def _standin(size: Size) -> tuple[str, RnntPipeline]:
    # NOTE: imported here: scoring a synthetic set needs onnx and onnxruntime, a performance run does not.
    import onnxruntime as ort

    from edgeperf.benchmarks.rnnt.model import GRAPH_FILES, config_for, standin_graphs
    from edgeperf.benchmarks.rnnt.pipeline import RnntPipeline

    graphs = standin_graphs(size, "fp32")
    data = [graphs[name] for name in GRAPH_FILES]
    digest = hashlib.sha256(b"".join(data)).hexdigest()[:16]
    sessions: list[Any] = [ort.InferenceSession(d, providers=["CPUExecutionProvider"]) for d in data]
    return digest, RnntPipeline(sessions[0], sessions[1], sessions[2], config_for(size))


def standin_transcript(dataset: SyntheticSpeech, index: int) -> str:
    """The FP32 stand-in's transcript of synthetic utterance `index`."""
    with _LOCK:
        digest, pipeline = _standin(dataset.size)
        path = dataset.cache_dir / f"rnnt-{dataset.size}-{digest}" / f"utt_{index:05d}.json"
        if path.exists():
            return str(json.loads(path.read_text())["transcript"])
        tokens = pipeline.transcribe(dataset.sample(index)["audio"])
        text = tokens_to_text(tokens)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"transcript": text}))
        tmp.replace(path)
        return text
