"""OpenImages (MLPerf subset) for RetinaNet: the COCO-JSON layout, the reference preprocessing, synthetic pixels.

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
from typing import Any

import numpy as np
import numpy.typing as npt

from edgeperf.benchmarks._common import DatasetError
from edgeperf.benchmarks._images import SyntheticImages, read_rgb, resize_bilinear_float
from edgeperf.benchmarks.base import Sample, Size
from edgeperf.benchmarks.retinanet.spec import IMAGE_SIZE, INPUT_NAME

__all__ = [
    "SYNTHETIC_SEED",
    "ImageInfo",
    "OpenImagesDataset",
    "SyntheticPixels",
    "preprocess",
    "scale",
]

SYNTHETIC_SEED = 24_781
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


class SyntheticPixels(SyntheticImages):
    """Deterministic random images of any count, generated at the model's input size; no ground truth.

    Image i depends only on (seed, i, size). The stand-in builder calibrates on these; the scored
    synthetic set (`standin.SyntheticOpenImages`) adds the FP32 stand-in's detections as ground truth.
    """

    def __init__(self, count: int, *, size: Size = "full", seed: int = SYNTHETIC_SEED) -> None:
        super().__init__(count, size=size, side=IMAGE_SIZE[size], seed=seed)

    def sample(self, index: int) -> Sample:
        return {INPUT_NAME: scale(self.image(index))}  # generated at the input size: nothing to resize
