"""Ground truth of the synthetic dataset: the FP32 stand-in's own answers, computed once and cached.

Recipe: build the FP32 stand-in of the dataset's size (`model.build_model`, seeded weights), run every
feature through ONNX Runtime in batches of 8, and post-process the logits exactly as for a result
(`postprocess.predict_answers`, n-best 20, max answer length 30). The answers are cached as JSON under
`$EDGEPERF_CACHE_DIR` (default `~/.cache/edgeperf`) keyed by the recipe version, model config and dataset.
An FP32 run of the same stand-in therefore scores F1 = 100 (up to float ties), and a reduced-precision
variant scores what it really keeps of FP32's answers.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from edgeperf.benchmarks.bert.dataset import BertDataset
from edgeperf.benchmarks.bert.model import build_model
from edgeperf.benchmarks.bert.postprocess import Logits, predict_answers
from edgeperf.benchmarks.bert.spec import INPUT_NAMES, OUTPUT_NAMES

__all__ = ["cache_dir", "reference_answers", "standin_logits"]

RECIPE_VERSION = 2
BATCH = 8


def cache_dir() -> Path:
    configured = os.environ.get("EDGEPERF_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "edgeperf"


def standin_logits(dataset: BertDataset) -> dict[int, Logits]:
    """Feature index -> FP32 stand-in logits, computed in-process with ONNX Runtime."""
    import onnxruntime as ort

    model = build_model(dataset.config)
    options = ort.SessionOptions()
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    del model
    logits: dict[int, Logits] = {}
    for first in range(0, len(dataset), BATCH):
        indices = range(first, min(first + BATCH, len(dataset)))
        feed = {name: np.stack([dataset.sample(i)[name] for i in indices]) for name in INPUT_NAMES}
        start, end = session.run(list(OUTPUT_NAMES), feed)
        for row, index in enumerate(indices):
            logits[index] = Logits(start[row].astype(np.float64), end[row].astype(np.float64))
    return logits


def _key(dataset: BertDataset) -> str:
    text = json.dumps([RECIPE_VERSION, repr(dataset.config), dataset.source, len(dataset)])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def reference_answers(dataset: BertDataset) -> dict[str, str]:
    """`qas_id -> answer` of the synthetic dataset, from the cache or computed (and then cached)."""
    path = cache_dir() / "bert" / f"synthetic-answers-{_key(dataset)}.json"
    if path.is_file():
        cached = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(cached, dict):
            return {str(k): str(v) for k, v in cached.items()}
    answers = predict_answers(dataset.examples, dataset.features, standin_logits(dataset), dataset.tokenizer)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(answers, indent=0, sort_keys=True), encoding="utf-8")
    os.replace(temporary, path)
    return answers
