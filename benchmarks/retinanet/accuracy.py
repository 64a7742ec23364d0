"""mAP of RetinaNet responses with pycocotools, in the format of the reference's accuracy-openimages.py.

A response's data is what the client logs for one sample: the model's outputs' raw bytes in output order,
boxes (K x 4 float32, x1 y1 x2 y2 in input pixels), scores (K float32), labels (K int64): 28 bytes a
detection. As PostProcessOpenImagesRetinanet does, detections are read in order until the first score
below 0.05, boxes are normalised by the input size and scaled to the original image (height, width), and
labels are used as category ids directly (the ONNX model needs no inverse label map). Only the first
response per QSL index counts. accuracy.txt holds COCOeval's summary, then `mAP=XX.XXX%`, then the gate.

On the synthetic dataset the ground truth is the FP32 stand-in's own detections and the reference value
is the FP32 stand-in's own mAP on the scored images (about 100%), so the target is 99% of that.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from edgeperf.benchmarks._common import DatasetError, first_responses
from edgeperf.benchmarks.base import AccuracyReport
from edgeperf.benchmarks.resnet50.accuracy import gate_line
from edgeperf.benchmarks.retinanet.dataset import OpenImagesDataset, SyntheticOpenImages
from edgeperf.benchmarks.retinanet.spec import SCORE_THRESHOLD, SPEC

__all__ = ["Detections", "decode_detections", "score"]

_BYTES_PER_DETECTION = 4 * 4 + 4 + 8

Detections = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(boxes [K, 4] float32, scores [K] float32, labels [K] int64)."""


def decode_detections(data: bytes) -> Detections:
    """Split a logged response into boxes, scores and labels, stopping at the first score below 0.05.

    Raises:
        DatasetError: the payload is not a whole number of 28-byte detections.
    """
    if len(data) % _BYTES_PER_DETECTION:
        raise DatasetError(
            f"RetinaNet response of {len(data)} bytes: expected boxes|scores|labels, 28 bytes a detection"
        )
    k = len(data) // _BYTES_PER_DETECTION
    boxes = np.frombuffer(data, "<f4", count=4 * k).reshape(k, 4)
    scores = np.frombuffer(data, "<f4", count=k, offset=16 * k)
    labels = np.frombuffer(data, "<i8", count=k, offset=20 * k)
    below = np.flatnonzero(scores < SCORE_THRESHOLD)
    n = int(below[0]) if below.size else k
    return boxes[:n], scores[:n], labels[:n]


def _coco(dataset_dict: dict[str, Any]) -> COCO:
    coco = COCO()
    coco.dataset = dataset_dict
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _mean_ap(
    dataset: OpenImagesDataset | SyntheticOpenImages, seen: dict[int, Detections]
) -> tuple[float, str]:
    """COCO bbox mAP (percent) and COCOeval's summary text, as accuracy-openimages.py computes them."""
    side = float(dataset.side)
    detections: list[dict[str, Any]] = []
    image_ids: list[int] = []
    for idx, (boxes, scores, labels) in seen.items():
        image_id, height, width = dataset.image_info(idx)
        image_ids.append(image_id)
        for box, s, label in zip(boxes.tolist(), scores.tolist(), labels.tolist(), strict=True):
            # the reference logs ymin/800, xmin/800, ... and multiplies back by the original size
            xmin, ymin = box[0] / side * width, box[1] / side * height
            xmax, ymax = box[2] / side * width, box[3] / side * height
            detections.append(
                {"image_id": image_id, "category_id": int(label), "bbox": [xmin, ymin, xmax - xmin, ymax - ymin],
                 "score": float(s)}
            )  # fmt: skip
    if not detections:
        return 0.0, ""
    gt = _coco(dataset.ground_truth(list(seen)))
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(detections)
        evaluator = COCOeval(gt, dt, iouType="bbox")
        evaluator.params.imgIds = image_ids
        evaluator.evaluate()
        evaluator.accumulate()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        evaluator.summarize()
    # COCOeval reports -1 when no category has ground truth among the scored images
    return max(0.0, 100.0 * float(evaluator.stats[0])), out.getvalue()


def _first_responses(
    dataset: OpenImagesDataset | SyntheticOpenImages, results: Sequence[tuple[int, bytes]]
) -> dict[int, Detections]:
    return {
        qsl_idx: decode_detections(data)
        for qsl_idx, data in first_responses(results, dataset_size=len(dataset), unit="images")
    }


def score(
    dataset: OpenImagesDataset | SyntheticOpenImages, results: Sequence[tuple[int, bytes]]
) -> AccuracyReport:
    """COCO bbox mAP over the images that have a response, with the reference's output and the gate."""
    seen = _first_responses(dataset, results)
    value, summary = _mean_ap(dataset, seen)
    lines = [summary.rstrip("\n")] if summary else []
    lines.append(f"mAP={value:.3f}%")
    if isinstance(dataset, SyntheticOpenImages):
        fp32 = _first_responses(dataset, dataset.reference_results(list(seen)))
        reference = _mean_ap(dataset, fp32)[0]
        lines.append(
            "ground truth: the FP32 stand-in's detections on the synthetic images (score >= 0.3, or the best 5)"
        )
    else:
        reference = SPEC.quality.reference_value
    fraction = SPEC.quality.fractions[0]
    lines.append(gate_line(SPEC.quality.metric, value, reference, fraction))
    target = reference * fraction
    return AccuracyReport(
        metric=SPEC.quality.metric,
        value=value,
        target=target,
        passed=bool(seen) and value >= target,
        text="\n".join(lines) + "\n",
    )
