"""The tiny preprocessed KiTS19 cases the 3D-UNet tests write and check against."""

from __future__ import annotations

import numpy as np

# Two cases in the reference's preprocessed layout; case_00001 is listed first to check the QSL order.
CASES = ("case_00001", "case_00000")
SHAPES = {"case_00001": (1, 32, 48, 32), "case_00000": (1, 48, 32, 32)}


def case_arrays(case: str) -> tuple[np.ndarray, np.ndarray]:
    shape = SHAPES[case]
    image = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) / 1000.0
    label = np.zeros(shape, dtype=np.uint8)
    label[0, 4:12, 4:12, 4:12] = 1  # 512 kidney voxels
    label[0, 6:8, 6:8, 6:8] = 2  # 8 of them tumour
    return image, label
