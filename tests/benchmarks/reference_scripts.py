"""How the reference accuracy scripts of mlcommons/inference read `mlperf_log_accuracy.json`, step by step.

Each function follows its script's loop over the log line by line (dtypes, de-duplication, reshapes,
arithmetic), with the file reading and the dataset's metadata passed in, so a test can rescore a log
edgeperf wrote the way the reference would and compare the result with edgeperf's accuracy.txt:

- `imagenet_top1`: vision/classification_and_detection/tools/accuracy-imagenet.py (`--dtype float32`)
- `openimages_detections`: .../tools/accuracy-openimages.py (no `--use-inv-map`: the ONNX model)
- `kits_predictions`: vision/medical_imaging/3d-unet-kits19/accuracy_kits.py `load_loadgen_log`
  (`--output_dtype uint8`)
- `rnnt_hypotheses`: speech_recognition/rnnt/accuracy_eval.py (`--output_dtype int64`) and the
  `__gather_predictions` label mapping
- `squad_raw_results`: language/bert/accuracy-squad.py `load_loadgen_log` (no `--output_transposed`)
"""

from __future__ import annotations

import array
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

RNNT_LABELS = [" ", *"abcdefghijklmnopqrstuvwxyz", "'"]
SQUAD_MAX_SEQ_LENGTH = 384


def _load(log: Path) -> list[dict[str, Any]]:
    with open(log) as f:
        results: list[dict[str, Any]] = json.load(f)
    return results


def imagenet_top1(log: Path, labels: Sequence[int]) -> tuple[int, int]:
    """(good, total) as accuracy-imagenet.py counts them; `labels[idx]` is val_map.txt's label."""
    seen: set[int] = set()
    good = 0
    for j in _load(log):
        idx = j["qsl_idx"]
        if idx in seen:
            continue
        seen.add(idx)
        label = labels[idx]
        data = np.frombuffer(bytes.fromhex(j["data"]), np.float32)
        found = int(data[0])
        if label == found:
            good += 1
    return good, len(seen)


def openimages_detections(
    log: Path, image_map: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], set[int]]:
    """(pycocotools detections, scored image ids) as accuracy-openimages.py builds them; `image_map` is
    the annotations' `images` list (id, height, width), indexed by qsl_idx."""
    detections: list[dict[str, Any]] = []
    image_ids: set[int] = set()
    seen: set[int] = set()
    for j in _load(log):
        idx = j["qsl_idx"]
        if idx in seen:
            continue
        seen.add(idx)
        data = np.frombuffer(bytes.fromhex(j["data"]), np.float32)
        if len(data) < 7:
            image_ids.add(image_map[idx]["id"])
            continue
        for i in range(0, len(data), 7):
            image_idx, ymin, xmin, ymax, xmax, score, label = data[i : i + 7]
            image = image_map[idx]
            assert int(image_idx) == idx, "loadgen and payload disagree on image_idx"
            image_id = image["id"]
            height, width = image["height"], image["width"]
            ymin *= height
            xmin *= width
            ymax *= height
            xmax *= width
            detections.append(
                {
                    "image_id": image_id,
                    "category_id": int(label),
                    "bbox": [float(xmin), float(ymin), float(xmax - xmin), float(ymax - ymin)],
                    "score": float(score),
                }
            )
            image_ids.add(image_id)
    return detections, image_ids


def kits_predictions(log: Path, image_shape: Callable[[int], Sequence[int]]) -> dict[int, np.ndarray]:
    """qsl_idx -> uint8 segmentation as load_loadgen_log reshapes it (the last response of a case wins)."""
    predictions = _load(log)
    results: dict[int, np.ndarray] = {}
    for prediction in predictions:
        qsl_idx = prediction["qsl_idx"]
        assert 0 <= qsl_idx < len(predictions), "Invalid qsl_idx!"
        result_shape = np.array(list(image_shape(qsl_idx)))
        results[qsl_idx] = np.frombuffer(bytes.fromhex(prediction["data"]), np.uint8).reshape(result_shape)
    assert len(results) == len(predictions), "Missing some results!"
    return results


def rnnt_hypotheses(log: Path) -> list[tuple[int, str]]:
    """(qsl_idx, transcript) per log entry, duplicates included, as accuracy_eval.py reads them."""
    labels_map = dict(enumerate(RNNT_LABELS))
    out: list[tuple[int, str]] = []
    for result in _load(log):
        ids = array.array("q", bytes.fromhex(result["data"])).tolist()
        out.append((result["qsl_idx"], "".join(labels_map[c] for c in ids)))
    return out


def squad_raw_results(log: Path) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(qsl_idx, start logits, end logits) per log entry, padded to 384, as load_loadgen_log makes them."""
    results: list[tuple[int, np.ndarray, np.ndarray]] = []
    for prediction in _load(log):
        logits = np.frombuffer(bytes.fromhex(prediction["data"]), np.float32).reshape(-1, 2)
        seq_length = logits.shape[0]
        start_logits = np.ones(SQUAD_MAX_SEQ_LENGTH) * -10000.0
        end_logits = np.ones(SQUAD_MAX_SEQ_LENGTH) * -10000.0
        start_logits[:seq_length] = logits[:, 0]
        end_logits[:seq_length] = logits[:, 1]
        results.append((prediction["qsl_idx"], start_logits, end_logits))
    return results
