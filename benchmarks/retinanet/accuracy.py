"""mAP of RetinaNet responses with pycocotools, in the format of the reference's accuracy-openimages.py.

A logged payload is what the reference SUT logs (`reference_payload.retinanet_payload`): float32
`[qsl_idx, ymin, xmin, ymax, xmax, score, label]` per detection, coordinates normalised by the input
size, detections below score 0.05 already dropped. As accuracy-openimages.py does, the coordinates are
multiplied by the original image's height and width in float32, labels are used as category ids (the
ONNX model needs no inverse label map), and an image with no detection is still scored. Only the first
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
import numpy.typing as npt
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from edgeperf.benchmarks._common import DatasetError, first_responses
from edgeperf.benchmarks.base import AccuracyReport
from edgeperf.benchmarks.resnet50.accuracy import gate_line
from edgeperf.benchmarks.retinanet.dataset import OpenImagesDataset
from edgeperf.benchmarks.retinanet.spec import SPEC
from edgeperf.benchmarks.retinanet.standin import SyntheticOpenImages

__all__ = ["Detections", "decode_detections", "score"]

_FLOATS_PER_DETECTION = 7

Detections = npt.NDArray[np.float32]
"""[K, 7] float32: qsl_idx, ymin, xmin, ymax, xmax (normalised), score, label."""


def decode_detections(data: bytes) -> Detections:
    """The detection records of a logged payload.

    Raises:
        DatasetError: the payload is not a whole number of 7-float32 records.
    """
    if len(data) % (4 * _FLOATS_PER_DETECTION):
        raise DatasetError(
            f"RetinaNet payload of {len(data)} bytes: expected the reference's 7 float32 per detection"
        )
    return np.frombuffer(data, np.float32).reshape(-1, _FLOATS_PER_DETECTION)


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
    detections: list[dict[str, Any]] = []
    image_ids: list[int] = []
    for idx, records in seen.items():
        image_id, height, width = dataset.image_info(idx)
        image_ids.append(image_id)
        # the reference multiplies the float32 values by the integer size (float32 results) and takes
        # the box's width and height in float32 too
        ymin, xmax = records[:, 1] * height, records[:, 4] * width
        xmin, ymax = records[:, 2] * width, records[:, 3] * height
        for k in range(records.shape[0]):
            detections.append(
                {"image_id": image_id, "category_id": int(records[k, 6]),
                 "bbox": [float(xmin[k]), float(ymin[k]), float(xmax[k] - xmin[k]), float(ymax[k] - ymin[k])],
                 "score": float(records[k, 5])}
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
