"""Fixtures for the ResNet50 tests: a tiny ImageNet folder in the published layout."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest


@pytest.fixture
def imagenet_dir(tmp_path: Path) -> Path:
    """Three PNG images (lossless, so pixel values are known) and a val_map.txt."""
    root = tmp_path / "imagenet"
    root.mkdir()
    rng = np.random.default_rng(7)
    sizes = [(300, 400), (512, 256), (256, 256)]
    lines = []
    for i, (h, w) in enumerate(sizes):
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        name = f"ILSVRC2012_val_{i + 1:08d}.png"
        cv2.imwrite(str(root / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        lines.append(f"{name} {i * 10}")
    (root / "val_map.txt").write_text("\n".join(lines) + "\n")
    return root
