"""Image decoding, resizing and cropping as the MLPerf vision reference does it, and synthetic images.

The reference (`vision/classification_and_detection/python/dataset.py`) reads files with `cv2.imread`
(BGR, uint8), converts to RGB with `cv2.cvtColor` and resizes with `cv2.resize`; using OpenCV here too
keeps the interpolation bit-exact with it (INTER_AREA for ImageNet, INTER_LINEAR for OpenImages).
OpenCV is imported only where a real file is read or resized: stand-in builds and synthetic data (what
the server side needs) use numpy alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgeperf.benchmarks._common import DatasetError
from edgeperf.benchmarks.base import Size

__all__ = [
    "DatasetError",
    "ImageError",
    "SyntheticImages",
    "center_crop",
    "read_rgb",
    "resize_bilinear_float",
    "resize_with_aspectratio",
    "synthetic_rgb",
]

U8 = npt.NDArray[np.uint8]


class ImageError(DatasetError):
    """An image file is missing or cannot be decoded; the message names the file."""


def _cv2() -> Any:
    import cv2

    return cv2


def read_rgb(path: Path) -> U8:
    """Decode an image file to RGB uint8 HWC; grayscale images get three equal channels."""
    # NOTE: cv2.imread silently returns None on failure; IMREAD_COLOR always yields 3 channels (the
    # reference's imagenet.py relies on the same flag's default).
    data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else None
    if data is None or data.size == 0:
        raise ImageError(f"{path}: no such image file")
    cv2 = _cv2()
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageError(f"{path}: cannot decode image")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def resize_with_aspectratio(img: U8, out_height: int, out_width: int, *, scale_percent: float = 87.5) -> U8:
    """Resize so the short side becomes out / (scale_percent / 100), keeping the aspect ratio (INTER_AREA).

    The reference computes the long side with int() truncation: for a portrait image
    w = int(100 * out_width / scale) and h = int(new_height * height / width).
    """
    height, width = img.shape[:2]
    new_height = int(100.0 * out_height / scale_percent)
    new_width = int(100.0 * out_width / scale_percent)
    if height > width:
        w = new_width
        h = int(new_height * height / width)
    else:
        h = new_height
        w = int(new_width * width / height)
    cv2 = _cv2()
    return np.asarray(cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA), dtype=np.uint8)


def center_crop(img: U8, out_height: int, out_width: int) -> U8:
    """The central out_height x out_width window (offsets truncated toward zero, as the reference)."""
    height, width = img.shape[:2]
    left = int((width - out_width) / 2)
    top = int((height - out_height) / 2)
    return img[top : top + out_height, left : left + out_width]


def resize_bilinear_float(
    img: npt.NDArray[np.float32], out_height: int, out_width: int
) -> npt.NDArray[np.float32]:
    """Resize a float32 HWC image to exactly out_height x out_width (cv2.INTER_LINEAR, no rounding)."""
    cv2 = _cv2()
    return np.asarray(cv2.resize(img, (out_width, out_height), interpolation=cv2.INTER_LINEAR), np.float32)


def _upsample(grid: npt.NDArray[np.float32], height: int, width: int) -> npt.NDArray[np.float32]:
    """Bilinear (align-corners) upsampling of a small HWC grid with numpy alone."""

    def weights(n_out: int, n_in: int) -> npt.NDArray[np.float32]:
        pos = np.linspace(0.0, n_in - 1, n_out)
        lo = np.minimum(np.floor(pos).astype(np.int64), n_in - 2)
        frac = pos - lo
        w = np.zeros((n_out, n_in), np.float32)
        w[np.arange(n_out), lo] = 1.0 - frac
        w[np.arange(n_out), lo + 1] = frac
        return w

    out = np.einsum("hc,cdk,wd->hwk", weights(height, grid.shape[0]), grid, weights(width, grid.shape[1]))
    return np.asarray(out, np.float32)


def synthetic_rgb(rng: np.random.Generator, height: int, width: int) -> U8:
    """A natural-looking random RGB image: smooth colour fields at two scales plus fine noise.

    Smooth structure (rather than white noise) gives convolutional stand-ins varied, image-dependent
    activations, so their predictions differ from image to image.
    """
    out = np.zeros((height, width, 3), np.float32)
    for cells, amplitude in ((3, 2.0), (9, 1.0)):
        grid = rng.normal(0.0, amplitude, (cells, cells, 3)).astype(np.float32)
        out += _upsample(grid, height, width)
    out += rng.normal(0.0, 0.25, (height, width, 3)).astype(np.float32)
    # NOTE: every image gets the same contrast (std 45 levels) around its own mean colour; stand-ins have
    # no normalisation layers, so their activations scale with contrast, and a fixed contrast keeps the
    # calibrated score levels valid from image to image.
    scaled: npt.NDArray[np.float32] = (out - out.mean()) * np.float32(45.0 / max(float(out.std()), 1e-6))
    scaled += rng.uniform(90.0, 160.0, 3).astype(np.float32)
    return np.asarray(np.clip(np.rint(scaled), 0, 255), dtype=np.uint8)


class SyntheticImages:
    """`count` deterministic random RGB images of `side` x `side` pixels (`synthetic_rgb`); image i
    depends only on (seed, i, side), so any process regenerates the same dataset.

    Raises:
        DatasetError: `count` is not positive.
    """

    def __init__(self, count: int, *, size: Size, side: int, seed: int) -> None:
        if count <= 0:
            raise DatasetError(f"synthetic dataset needs a positive count, got {count}")
        self.count = count
        self.size: Size = size
        self.side = side
        self.seed = seed

    def __len__(self) -> int:
        return self.count

    def image(self, index: int) -> U8:
        """The RGB uint8 image behind sample `index`."""
        if not 0 <= index < self.count:
            raise IndexError(f"sample {index} outside 0..{self.count - 1}")
        return synthetic_rgb(np.random.default_rng((self.seed, index)), self.side, self.side)
