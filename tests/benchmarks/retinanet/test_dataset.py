from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeperf.benchmarks._images import DatasetError
from edgeperf.benchmarks.retinanet.dataset import OpenImagesDataset, preprocess
from edgeperf.benchmarks.retinanet.standin import SyntheticOpenImages, open_dataset


def test_preprocess_is_float_bilinear_resize_over_255_in_chw():
    rgb = np.zeros((10, 20, 3), np.uint8)
    rgb[..., 0] = np.arange(20, dtype=np.uint8) * 10
    out = preprocess(rgb, 16)
    assert out.shape == (1, 3, 16, 16) and out.dtype == np.float32
    want = cv2.resize(rgb.astype(np.float32), (16, 16), interpolation=cv2.INTER_LINEAR) / np.float32(255)
    np.testing.assert_array_equal(out[0].transpose(1, 2, 0), want)
    assert np.all(out[0, 1:] == 0.0)


def test_real_layout_sample_and_pixels(openimages_dir: Path):
    ds = OpenImagesDataset(openimages_dir, size="small")
    assert len(ds) == 2
    x = ds.sample(0)["images"]
    assert x.shape == (1, 3, 128, 128) and x.dtype == np.float32
    # left half red (RGB order, as the reference's BGR->RGB), right half blue, scaled to [0, 1]
    np.testing.assert_allclose(x[0, :, 64, 10], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(x[0, :, 64, 120], [0.0, 0.0, 1.0])
    assert ds.image_info(0) == (1, 200, 400)
    assert ds.ground_truth([0])["annotations"][0]["category_id"] == 7


def test_full_size_input_is_800(openimages_dir: Path):
    assert OpenImagesDataset(openimages_dir).sample(1)["images"].shape == (1, 3, 800, 800)


def test_layout_errors(openimages_dir: Path):
    next((openimages_dir / "validation" / "data").iterdir()).unlink()
    with pytest.raises(DatasetError, match="found neither"):
        OpenImagesDataset(openimages_dir)
    bad = openimages_dir / "annotations" / "openimages-mlperf.json"
    bad.write_text(json.dumps({"images": []}))
    with pytest.raises(DatasetError, match="annotations"):
        OpenImagesDataset(openimages_dir)
    with pytest.raises(DatasetError, match="no annotations file"):
        OpenImagesDataset(openimages_dir / "nowhere")


def test_synthetic_source():
    ds = open_dataset("synthetic:3", size="small")
    assert isinstance(ds, SyntheticOpenImages) and len(ds) == 3
    np.testing.assert_array_equal(
        ds.sample(2)["images"], SyntheticOpenImages(3, size="small").sample(2)["images"]
    )
    assert len(open_dataset("synthetic", size="small")) == 64
    with pytest.raises(DatasetError):
        open_dataset("synthetic:-1")
