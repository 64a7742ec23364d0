from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeperf.benchmarks._images import DatasetError
from edgeperf.benchmarks.reference_payload import PayloadError
from edgeperf.benchmarks.retinanet import BENCHMARK
from edgeperf.benchmarks.retinanet.accuracy import decode_detections
from edgeperf.benchmarks.retinanet.dataset import OpenImagesDataset


def _raw(dets: list[tuple[list[float], float, int]]) -> bytes:
    boxes = np.array([d[0] for d in dets], np.float32).reshape(-1, 4)
    scores = np.array([d[1] for d in dets], np.float32)
    labels = np.array([d[2] for d in dets], np.int64)
    return boxes.tobytes() + scores.tobytes() + labels.tobytes()


def _payload(dets: list[tuple[list[float], float, int]], qsl_idx: int = 0) -> bytes:
    """What the client logs for the served boxes|scores|labels of a 128 x 128 (small) input."""
    return BENCHMARK.log_payload(_raw(dets), qsl_idx, size="small")


Truth = tuple[dict[int, list[float]], dict[int, tuple[int, int]]]


def _model_box(truth: Truth, image_id: int, side: int = 128, shift: float = 0.0) -> list[float]:
    """The ground-truth box of `image_id` as the model would output it (input pixels, x1 y1 x2 y2)."""
    h, w = truth[1][image_id]
    x, y, bw, bh = truth[0][image_id]
    return [(x + shift) * side / w, y * side / h, (x + shift + bw) * side / w, (y + bh) * side / h]


def test_payload_is_the_reference_records_up_to_the_score_threshold():
    data = _payload([([16, 32, 64, 128], 0.9, 3), ([0, 0, 2, 2], 0.04, 4), ([0, 0, 3, 3], 0.5, 5)], 9)
    records = decode_detections(data)
    # [qsl_idx, ymin/H, xmin/W, ymax/H, xmax/W, score, label], as PostProcessOpenImagesRetinanet writes
    assert records.tolist() == [[9.0, 0.25, 0.125, 1.0, 0.5, pytest.approx(0.9), 3.0]]
    assert decode_detections(b"").shape == (0, 7)
    with pytest.raises(DatasetError):
        decode_detections(b"\x00" * 27)
    with pytest.raises(PayloadError, match="28 bytes a detection"):
        BENCHMARK.log_payload(b"\x00" * 27, 0, size="small")


def test_perfect_detections_score_100(openimages_dir: Path, openimages_truth: Truth):
    ds = OpenImagesDataset(openimages_dir, size="small")
    results = [
        (0, _payload([(_model_box(openimages_truth, 1), 0.9, 7)])),
        (1, _payload([(_model_box(openimages_truth, 2), 0.8, 7)], 1)),
    ]
    report = BENCHMARK.accuracy(ds, results)
    assert report.value == pytest.approx(100.0)
    lines = report.text.splitlines()
    assert lines[0].startswith(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]")
    assert "mAP=100.000%" in lines
    # the real dataset's gate: 99% of the reference 37.55
    assert report.target == pytest.approx(37.55 * 0.99)
    assert report.passed
    assert lines[-1] == "PASS: mAP=100.000% target=37.174% (99% of FP32 reference 37.550%)"


def test_no_detections_score_zero_and_fail(openimages_dir: Path):
    ds = OpenImagesDataset(openimages_dir, size="small")
    report = BENCHMARK.accuracy(ds, [(0, b""), (1, b"")])
    assert report.value == 0.0 and not report.passed
    assert report.text.splitlines()[0] == "mAP=0.000%"
    assert report.text.splitlines()[-1].startswith("FAIL")


def test_half_found_gives_the_101_point_ap(openimages_dir: Path, openimages_truth: Truth):
    # Image 1 found (higher score); image 2's box misses entirely: recall 0.5 at precision 1, so COCO's
    # 101-point interpolated AP is 51/101 at every IoU threshold.
    ds = OpenImagesDataset(openimages_dir, size="small")
    results = [
        (0, _payload([(_model_box(openimages_truth, 1), 0.9, 7)])),
        (1, _payload([([0.0, 0.0, 5.0, 5.0], 0.8, 7)], 1)),
        (
            1,
            _payload([(_model_box(openimages_truth, 2), 0.99, 7)], 1),
        ),  # a duplicate response: ignored, as the reference does
    ]
    report = BENCHMARK.accuracy(ds, results)
    assert report.value == pytest.approx(100.0 * 51 / 101)
    assert f"mAP={100.0 * 51 / 101:.3f}%" in report.text


def test_boxes_are_rescaled_to_the_original_image(openimages_dir: Path, openimages_truth: Truth):
    # Image 1's box shifted by 10 original pixels (x scaled by 128/400 in model pixels): IoU 90*60/(110*60)
    # = 0.818, so it matches at IoU 0.50..0.80 (7 of 10 thresholds). At the 3 stricter ones it is a false
    # positive ranked first, then image 2's hit: precision 0.5 up to recall 0.5, AP 0.5 * 51/101.
    ds = OpenImagesDataset(openimages_dir, size="small")
    shifted = [
        (0, _payload([(_model_box(openimages_truth, 1, shift=10.0), 0.9, 7)])),
        (1, _payload([(_model_box(openimages_truth, 2), 0.8, 7)], 1)),
    ]
    report = BENCHMARK.accuracy(ds, shifted)
    per_threshold_ap = [1.0] * 7 + [0.5 * 51 / 101] * 3
    assert report.value == pytest.approx(100 * sum(per_threshold_ap) / 10)
