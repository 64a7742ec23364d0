from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeperf.benchmarks._images import DatasetError, center_crop, resize_with_aspectratio
from edgeperf.benchmarks.resnet50.dataset import ImagenetDataset, parse_synthetic, preprocess
from edgeperf.benchmarks.resnet50.spec import INPUT_NAME
from edgeperf.benchmarks.resnet50.standin import SyntheticImagenet, open_dataset


def test_resize_keeps_aspect_ratio_with_short_side_256():
    # 300x400 (h x w): short side 300 -> 256, long side int(256 * 400 / 300) = 341.
    img = np.zeros((300, 400, 3), np.uint8)
    assert resize_with_aspectratio(img, 224, 224).shape == (256, 341, 3)
    # portrait: the width is the short side.
    assert resize_with_aspectratio(np.zeros((512, 256, 3), np.uint8), 224, 224).shape == (512, 256, 3)


def test_center_crop_takes_the_middle():
    img = np.arange(10 * 12, dtype=np.uint8).reshape(10, 12, 1).repeat(3, axis=2)
    crop = center_crop(img, 4, 6)
    assert crop.shape == (4, 6, 3)
    assert crop[0, 0, 0] == img[3, 3, 0]


def test_preprocess_constant_image_gives_minus_means():
    img = np.full((300, 400, 3), (10, 20, 30), np.uint8)
    out = preprocess(img, 224)
    assert out.shape == (3, 224, 224) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 100, 100], [10 - 123.68, 20 - 116.78, 30 - 103.94], rtol=1e-6)


def test_real_layout_sample_matches_reference_recipe(imagenet_dir: Path):
    ds = ImagenetDataset(imagenet_dir)
    assert len(ds) == 3
    sample = ds.sample(0)[INPUT_NAME]
    assert sample.shape == (3, 224, 224) and sample.dtype == np.float32
    # The reference recipe written out longhand with OpenCV: BGR read, RGB, INTER_AREA to 256x341,
    # crop at (16, 58), minus means, CHW.
    bgr = cv2.imread(str(imagenet_dir / "ILSVRC2012_val_00000001.png"))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    resized = cv2.resize(rgb, (341, 256), interpolation=cv2.INTER_AREA)
    top, left = (256 - 224) // 2, int((341 - 224) / 2)
    pixel = resized[top + 5, left + 7].astype(np.float32) - np.array([123.68, 116.78, 103.94], np.float32)
    np.testing.assert_array_equal(sample[:, 5, 7], pixel)
    assert ds.labels([2, 0]).tolist() == [20, 0]


def test_square_image_is_area_averaged_to_256_then_cropped(imagenet_dir: Path):
    # 256x256: no resize, so the crop is exactly the middle 224 pixels of the file.
    ds = ImagenetDataset(imagenet_dir)
    rgb = cv2.cvtColor(cv2.imread(str(imagenet_dir / "ILSVRC2012_val_00000003.png")), cv2.COLOR_BGR2RGB)
    got = ds.sample(2)[INPUT_NAME]
    np.testing.assert_array_equal(got[0, 0, 0], np.float32(rgb[16, 16, 0]) - np.float32(123.68))


def test_missing_image_and_bad_val_map_are_reported(imagenet_dir: Path, tmp_path: Path):
    (imagenet_dir / "ILSVRC2012_val_00000002.png").unlink()
    with pytest.raises(DatasetError, match="missing"):
        ImagenetDataset(imagenet_dir)
    bad = tmp_path / "val_map.txt"
    bad.write_text("only_a_name\n")
    with pytest.raises(DatasetError, match=":1:"):
        ImagenetDataset(bad)


def test_synthetic_is_deterministic_and_sized():
    a = SyntheticImagenet(5, size="small")
    b = SyntheticImagenet(5, size="small")
    assert a.sample(3)[INPUT_NAME].shape == (3, 64, 64)
    np.testing.assert_array_equal(a.sample(3)[INPUT_NAME], b.sample(3)[INPUT_NAME])
    assert not np.array_equal(a.image(3), a.image(4))
    with pytest.raises(IndexError):
        a.sample(5)


def test_sources():
    assert parse_synthetic("synthetic") == 1024
    assert parse_synthetic("synthetic:12") == 12
    assert parse_synthetic("/data/imagenet") is None
    with pytest.raises(DatasetError):
        parse_synthetic("synthetic:zero")
    assert len(open_dataset("synthetic:7", size="small")) == 7
