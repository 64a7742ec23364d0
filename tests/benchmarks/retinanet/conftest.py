"""Fixtures for the RetinaNet tests: a tiny OpenImages-MLPerf folder (COCO JSON + images)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

# Image 1 is 200 high and 400 wide, image 2 is 300 x 300; one ground-truth box each, category 7.
GT_BOXES = {1: [40.0, 20.0, 100.0, 60.0], 2: [150.0, 150.0, 90.0, 120.0]}
SIZES = {1: (200, 400), 2: (300, 300)}


@pytest.fixture
def openimages_truth() -> tuple[dict[int, list[float]], dict[int, tuple[int, int]]]:
    """(ground-truth box [x, y, w, h] per image id, (height, width) per image id) of `openimages_dir`."""
    return GT_BOXES, SIZES


@pytest.fixture
def openimages_dir(tmp_path: Path) -> Path:
    root = tmp_path / "openimages"
    (root / "annotations").mkdir(parents=True)
    (root / "validation" / "data").mkdir(parents=True)
    images, annotations = [], []
    for image_id, (h, w) in SIZES.items():
        name = f"{image_id:016x}.png"
        rgb = np.zeros((h, w, 3), np.uint8)
        rgb[:, : w // 2] = (255, 0, 0)  # left half red, right half blue
        rgb[:, w // 2 :] = (0, 0, 255)
        cv2.imwrite(str(root / "validation" / "data" / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        images.append({"id": image_id, "file_name": name, "height": h, "width": w})
        x, y, bw, bh = GT_BOXES[image_id]
        annotations.append(
            {"id": image_id, "image_id": image_id, "category_id": 7, "bbox": [x, y, bw, bh], "area": bw * bh,
             "iscrowd": 0}
        )  # fmt: skip
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 7, "name": "Cat"}]}
    (root / "annotations" / "openimages-mlperf.json").write_text(json.dumps(coco))
    return root
