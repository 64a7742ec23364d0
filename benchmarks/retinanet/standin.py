"""Synthetic OpenImages scored against the FP32 stand-in: its images, the stand-in's detections, the opener.

Synthetic data needs the stand-in model for its ground truth and the stand-in builder needs synthetic
images for calibration; this module sits above both (`dataset` and `model` import only downward). The
model module, and with it onnx and ONNX Runtime, is imported only when ground truth is first needed, so
a performance run on synthetic data needs neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from edgeperf.benchmarks._common import synthetic_count
from edgeperf.benchmarks.base import Size
from edgeperf.benchmarks.reference_payload import retinanet_payload
from edgeperf.benchmarks.retinanet.dataset import (
    SYNTHETIC_SEED,
    ImageInfo,
    OpenImagesDataset,
    SyntheticPixels,
)

__all__ = ["GT_SCORE", "SyntheticOpenImages", "open_dataset"]

DEFAULT_SYNTHETIC_COUNT = 64
"""`synthetic` without a count: the QSL size."""
GT_SCORE = 0.3
"""FP32 stand-in detections at or above this score are the synthetic ground truth."""
GT_MIN_PER_IMAGE = 5
"""An image with fewer detections at GT_SCORE takes its best five as ground truth instead."""
GT_PER_IMAGE = 100
"""COCOeval's maxDets, applied per image and category: ground truth beyond it could never be matched."""


class SyntheticOpenImages(SyntheticPixels):
    """Deterministic random images of any count; the ground truth is the FP32 stand-in's own detections.

    Image i depends only on (seed, i, size) and is generated at the model's input size, which is also its
    "original" size. Ground truth: every detection of the FP32 stand-in of the same size scoring at least
    GT_SCORE (its 100 best per image and class; its best five where fewer score that high), computed
    once per image when first needed. The FP32
    stand-in scores (nearly) 100% on it: boxes clipped to zero area can match nothing, not even themselves.
    The gate's reference is therefore the FP32 stand-in's own mAP on the same images, as MLPerf's rule
    ("99% of FP32") asks.
    """

    truth_from_standin: ClassVar[bool] = True
    """Scoring needs the FP32 stand-in's outputs, computed with onnx and ONNX Runtime where it is scored."""

    def __init__(self, count: int, *, size: Size = "full", seed: int = SYNTHETIC_SEED) -> None:
        super().__init__(count, size=size, seed=seed)
        self._annotations: dict[int, list[dict[str, Any]]] = {}
        self._fp32: dict[int, bytes] = {}

    def image_info(self, index: int) -> ImageInfo:
        return (index + 1, self.side, self.side)

    def _run_fp32(self, indices: Sequence[int]) -> None:
        todo = sorted({int(i) for i in indices} - self._fp32.keys())
        if not todo:
            return
        # NOTE: imported here: scoring a synthetic set needs onnx and onnxruntime, a performance run does not.
        from edgeperf.benchmarks._onnx import ort_session
        from edgeperf.benchmarks.retinanet.model import standin_bytes

        sess = ort_session(standin_bytes(self.size))
        for index in todo:
            boxes, scores, labels = sess.run(["boxes", "scores", "labels"], self.sample(index))
            self._fp32[index] = boxes.tobytes() + scores.tobytes() + labels.tobytes()
            per_class: dict[int, int] = {}
            kept: list[dict[str, Any]] = []
            chosen = np.flatnonzero(scores >= GT_SCORE)  # NMS output is score-ordered
            if chosen.size < GT_MIN_PER_IMAGE:
                chosen = np.arange(min(GT_MIN_PER_IMAGE, scores.size))
            for k in chosen.tolist():
                label = int(labels[k])
                per_class[label] = per_class.get(label, 0) + 1
                if per_class[label] <= GT_PER_IMAGE:
                    kept.append(_annotation(index + 1, boxes[k], label))
            self._annotations[index] = kept

    def reference_results(self, indices: Sequence[int]) -> list[tuple[int, bytes]]:
        """The FP32 stand-in's own responses for `indices`, as the client logs them (the reference payload)."""
        self._run_fp32(indices)
        return [(int(i), retinanet_payload(self._fp32[int(i)], int(i), side=self.side)) for i in indices]

    def ground_truth(self, indices: Sequence[int]) -> dict[str, Any]:
        """COCO ground truth covering `indices`, from the FP32 stand-in's detections."""
        self._run_fp32(indices)
        scored = sorted({int(i) for i in indices})
        annotations = [dict(ann) for index in scored for ann in self._annotations[index]]
        for n, ann in enumerate(annotations, start=1):
            ann["id"] = n
        return {
            "images": [
                {
                    "id": index + 1,
                    "height": self.side,
                    "width": self.side,
                    "file_name": f"synthetic_{index}.jpg",
                }
                for index in scored
            ],
            "annotations": annotations,
            # NOTE: only the classes present: mAP averages over classes with ground truth anyway, and
            # COCOeval's cost grows with the number of categories listed.
            "categories": [
                {"id": c, "name": f"class_{c}"} for c in sorted({a["category_id"] for a in annotations})
            ],
        }


def _annotation(image_id: int, box: npt.NDArray[np.float32], label: int) -> dict[str, Any]:
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    return {"image_id": image_id, "category_id": label, "bbox": [x1, y1, w, h], "area": w * h, "iscrowd": 0}


def open_dataset(source: str, *, size: Size = "full") -> OpenImagesDataset | SyntheticOpenImages:
    """`synthetic[:COUNT]` or a folder (or the annotations JSON) in the published layout."""
    count = synthetic_count(source, default=DEFAULT_SYNTHETIC_COUNT)
    if count is not None:
        return SyntheticOpenImages(count, size=size)
    return OpenImagesDataset(Path(source), size=size)
