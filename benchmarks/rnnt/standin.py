"""Synthetic speech scored against the FP32 stand-in: the utterances, the stand-in's transcripts, the opener.

Synthetic data needs the stand-in model for its ground truth and the stand-in builder needs synthetic
audio for calibration; this module sits above both (`dataset` and `model` import only downward). The
model and pipeline modules, and with them onnx and ONNX Runtime, are imported only when a transcript is
first needed (then cached under `cache_dir`), so a performance run on synthetic data needs neither.
"""

from __future__ import annotations

import hashlib
import json
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeperf.benchmarks._common import SyntheticCases, synthetic_count
from edgeperf.benchmarks.base import Sample, Size
from edgeperf.benchmarks.rnnt.dataset import INPUT_NAME, LibriSpeech, synthetic_waveform, tokens_to_text
from edgeperf.benchmarks.rnnt.spec import SPEC

if TYPE_CHECKING:
    from edgeperf.benchmarks.rnnt.pipeline import RnntPipeline

__all__ = ["SyntheticSpeech", "open_dataset", "standin_transcript"]

_LOCK = threading.Lock()


class SyntheticSpeech(SyntheticCases):
    """`count` synthetic utterances; their transcripts are the FP32 stand-in's (computed lazily, cached).

    The FP32 stand-in then scores WER 0, and the gate checks a reduced-precision variant against 99% of
    the FP32 model's 1 - WER, as the rules do with the real model.
    """

    item = "utterance"
    reference_value = 0.0

    def sample(self, index: int) -> Sample:
        self._check(index)
        return {INPUT_NAME: synthetic_waveform(index, self.size)}

    def transcript(self, index: int) -> str:
        self._check(index)
        return standin_transcript(self, index)


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


def open_dataset(source: str, *, size: Size = "full") -> LibriSpeech | SyntheticSpeech:
    """`synthetic[:COUNT]` (default COUNT: the QSL size for full, 8 for small), a LibriSpeech folder
    (dev-clean's published FLAC layout), or the reference's `dev-clean-wav.json` manifest.

    Raises:
        DatasetError: a bad COUNT.
        LibriSpeechError: the path is in neither layout.
    """
    count = synthetic_count(source, default=SPEC.qsl_size if size == "full" else 8)
    if count is not None:
        return SyntheticSpeech(count, size)
    return LibriSpeech(Path(source))
