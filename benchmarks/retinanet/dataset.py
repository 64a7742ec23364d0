"""OpenImages (MLPerf subset) for RetinaNet: the COCO-JSON layout, the reference preprocessing, synthetic data.

Published layout (the reference's `openimages.py` and `accuracy-openimages.py`): a folder with
`annotations/openimages-mlperf.json` (COCO format: images with id, file_name, height, width; annotations
with image_id, category_id, bbox [x, y, w, h] in original pixels, iscrowd; categories) and the images
under `validation/data/` (or beside the JSON's folder). The QSL index of a sample is its position in the
JSON's `images` list, which is what accuracy-openimages.py indexes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from edgeperf.benchmarks._common import DatasetError, synthetic_count
from edgeperf.benchmarks._images import SyntheticImages, read_rgb, resize_bilinear_float
from edgeperf.benchmarks.base import Sample, Size
from edgeperf.benchmarks.retinanet.spec import IMAGE_SIZE, INPUT_NAME

__all__ = [
    "GT_SCORE",
    "SYNTHETIC_SEED",
    "ImageInfo",
    "OpenImagesDataset",
    "SyntheticOpenImages",
    "open_dataset",
    "preprocess",
    "scale",
]

SYNTHETIC_SEED = 24_781
DEFAULT_SYNTHETIC_COUNT = 64
"""`synthetic` without a count: the QSL size."""
GT_SCORE = 0.3
"""FP32 stand-in detections at or above this score are the synthetic ground truth."""
GT_MIN_PER_IMAGE = 5
"""An image with fewer detections at GT_SCORE takes its best five as ground truth instead."""
GT_PER_IMAGE = 100
"""COCOeval's maxDets, applied per image and category: ground truth beyond it could never be matched."""

ImageInfo = tuple[int, int, int]
"""(COCO image id, original height, original width)."""


def preprocess(rgb: npt.NDArray[np.uint8], side: int = 800) -> npt.NDArray[np.float32]:
    """The reference's pre_process_openimages_retinanet: float32 RGB, bilinear resize to side x side
    (on the float image, as `maybe_resize` does), / 255, CHW, with the model's batch of one in front."""
    return scale(resize_bilinear_float(rgb.astype(np.float32), side, side))


def scale(rgb: npt.NDArray[np.generic]) -> npt.NDArray[np.float32]:
    """The last steps of the preprocessing on an image already at the input size: / 255, CHW, batch of one."""
    img = np.asarray(rgb, np.float32) / np.float32(255.0)
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None])


class OpenImagesDataset:
    """The MLPerf OpenImages validation subset in its published layout."""

    def __init__(self, root: Path, *, size: Size = "full") -> None:
        self.side = IMAGE_SIZE[size]
        annotations = root / "annotations" / "openimages-mlperf.json" if root.is_dir() else root
        if not annotations.is_file():
            raise DatasetError(f"{annotations}: no annotations file")
        try:
            coco: dict[str, Any] = json.loads(annotations.read_text())
            images = coco["images"]
            self.infos: list[ImageInfo] = [(int(i["id"]), int(i["height"]), int(i["width"])) for i in images]
            names = [str(i["file_name"]) for i in images]
            missing = [key for key in ("annotations", "categories") if key not in coco]
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"{annotations}: not a COCO detection file ({exc!r})") from exc
        if missing:
            raise DatasetError(f"{annotations}: not a COCO detection file (no {', '.join(missing)})")
        if not images:
            raise DatasetError(f"{annotations}: no images listed")
        base = annotations.parent.parent
        self.files: list[Path] = []
        for name in names:
            candidates = (base / "validation" / "data" / name, base / name)
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                raise DatasetError(
                    f"{annotations}: image {name!r} found neither in {candidates[0].parent} nor {base}"
                )
            self.files.append(found)
        self.coco = coco

    def __len__(self) -> int:
        return len(self.files)

    def sample(self, index: int) -> Sample:
        return {INPUT_NAME: preprocess(read_rgb(self.files[index]), self.side)}

    def image_info(self, index: int) -> ImageInfo:
        return self.infos[index]

    def ground_truth(self, indices: Sequence[int]) -> dict[str, Any]:
        """The COCO ground truth (the whole file; COCOeval is restricted to the scored images)."""
        del indices
        return self.coco


class SyntheticOpenImages(SyntheticImages):
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
        super().__init__(count, size=size, side=IMAGE_SIZE[size], seed=seed)
        self._annotations: dict[int, list[dict[str, Any]]] = {}
        self._fp32: dict[int, bytes] = {}

    def sample(self, index: int) -> Sample:
        return {INPUT_NAME: scale(self.image(index))}  # generated at the input size: nothing to resize

    def image_info(self, index: int) -> ImageInfo:
        return (index + 1, self.side, self.side)

    def _run_fp32(self, indices: Sequence[int]) -> None:
        todo = sorted({int(i) for i in indices} - self._fp32.keys())
        if not todo:
            return
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
        from edgeperf.benchmarks.reference_payload import retinanet_payload

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
