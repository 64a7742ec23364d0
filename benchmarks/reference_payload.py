"""What the reference SUTs write into `mlperf_log_accuracy.json`, made from the outputs' raw bytes.

The reference accuracy scripts (mlcommons/inference) decode the log in the layout their own SUT wrote,
so edgeperf logs that layout, not the served model's raw outputs, and a log edgeperf wrote scores the
same with the reference script as with edgeperf's `accuracy`:

- ResNet50 (`vision/classification_and_detection/python/main.py`, `PostProcessArgMax(offset=-1)`):
  float32(ArgMax - 1), one value; `accuracy-imagenet.py` reads float32 by default.
- RetinaNet (`PostProcessOpenImagesRetinanet`): float32 `[qsl_idx, ymin/H, xmin/W, ymax/H, xmax/W,
  score, label]` per detection, in model order, up to the first score below 0.05; no detection is an
  empty payload. `accuracy-openimages.py` reads 7 float32 at a time.
- BERT (`language/bert/onnxruntime_SUT.py`): `np.stack([start, end], axis=-1)`, float32 `[seq, 2]`;
  `accuracy-squad.py` reads that unless told `--output_transposed`.
- 3D-UNet (uint8 segmentation, `accuracy_kits.py --output_dtype uint8`) and RNN-T (int64 label ids,
  `accuracy_eval.py --output_dtype int64`): the served outputs already are the reference payload.

Only numpy: the client encodes on the response path and must not need the server's dependencies.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PayloadError", "bert_payload", "identity_payload", "resnet50_payload", "retinanet_payload"]

RESNET50_LABEL_OFFSET = -1
"""`resnet50.spec.LABEL_OFFSET` (not imported: the package's __init__ loads the model writer): the
1001-class model's background class 0 is dropped, label = ArgMax - 1 (val_map.txt is 0-based)."""
RETINANET_SCORE_THRESHOLD = 0.05
_RETINANET_BYTES_PER_DETECTION = 4 * 4 + 4 + 8


class PayloadError(ValueError):
    """A response's bytes are not the outputs the benchmark requests; the message says what was expected."""


def identity_payload(raw: bytes, qsl_idx: int) -> bytes:
    """The served outputs already are the reference payload (3D-UNet, RNN-T, the tiny model)."""
    return raw


def resnet50_payload(raw: bytes, qsl_idx: int) -> bytes:
    """float32(ArgMax - 1) from `ArgMax:0` (one little-endian int64, optionally followed by the softmax)."""
    if len(raw) < 8:
        raise PayloadError(f"ResNet50 response of {len(raw)} bytes: expected ArgMax:0, one int64 (8 bytes)")
    argmax = int(np.frombuffer(raw, "<i8", count=1)[0])
    return np.array([argmax + RESNET50_LABEL_OFFSET], np.float32).tobytes()


def retinanet_payload(raw: bytes, qsl_idx: int, *, side: int) -> bytes:
    """The reference's detection records from boxes (K x 4 float32, x1 y1 x2 y2 in input pixels), scores
    (K float32) and labels (K int64) of a `side` x `side` input."""
    if len(raw) % _RETINANET_BYTES_PER_DETECTION:
        raise PayloadError(
            f"RetinaNet response of {len(raw)} bytes: expected boxes|scores|labels, 28 bytes a detection"
        )
    k = len(raw) // _RETINANET_BYTES_PER_DETECTION
    boxes = np.frombuffer(raw, "<f4", count=4 * k).reshape(k, 4)
    scores = np.frombuffer(raw, "<f4", count=k, offset=16 * k)
    labels = np.frombuffer(raw, "<i8", count=k, offset=20 * k)
    # NOTE: the reference breaks at the first low score instead of filtering (scores come sorted).
    below = np.flatnonzero(scores < RETINANET_SCORE_THRESHOLD)
    n = int(below[0]) if below.size else k
    records = np.empty((n, 7), np.float32)
    records[:, 0] = float(qsl_idx)
    records[:, 1] = boxes[:n, 1] / np.float32(side)
    records[:, 2] = boxes[:n, 0] / np.float32(side)
    records[:, 3] = boxes[:n, 3] / np.float32(side)
    records[:, 4] = boxes[:n, 2] / np.float32(side)
    records[:, 5] = scores[:n]
    records[:, 6] = labels[:n].astype(np.float32)
    return records.tobytes()


def bert_payload(raw: bytes, qsl_idx: int) -> bytes:
    """float32 `[seq, 2]` (start, end per position) from the start logits' bytes then the end logits'."""
    if len(raw) % 8:
        raise PayloadError(
            f"BERT response of {len(raw)} bytes: expected start and end logits, float32, of equal length"
        )
    logits = np.frombuffer(raw, "<f4").reshape(2, -1)
    return np.ascontiguousarray(logits.T).tobytes()
