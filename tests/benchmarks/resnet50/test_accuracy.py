from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeperf.benchmarks._images import DatasetError
from edgeperf.benchmarks.reference_payload import PayloadError
from edgeperf.benchmarks.resnet50 import BENCHMARK
from edgeperf.benchmarks.resnet50.accuracy import decode_label
from edgeperf.benchmarks.resnet50.dataset import ImagenetDataset


def _argmax_bytes(argmax: int, *, with_softmax: bool = False) -> bytes:
    """What the client logs for a served ArgMax:0 (and softmax): the reference's float32 label."""
    data = np.array([argmax], "<i8").tobytes()
    return BENCHMARK.log_payload(data + (np.zeros(1001, np.float32).tobytes() if with_softmax else b""), 0)


def test_payload_is_the_reference_float32_label_with_the_background_offset():
    assert _argmax_bytes(66) == np.array([65.0], np.float32).tobytes()
    assert decode_label(_argmax_bytes(66)) == 65
    assert decode_label(_argmax_bytes(1, with_softmax=True)) == 0
    assert decode_label(np.array([65.0], np.float32).tobytes()) == 65  # the reference SUT's payload
    with pytest.raises(DatasetError):
        decode_label(b"\x00" * 5)
    with pytest.raises(DatasetError, match="float32 label"):
        decode_label(np.array([66], "<i8").tobytes())  # a raw ArgMax:0 is not a logged payload
    with pytest.raises(PayloadError, match="ArgMax:0"):
        BENCHMARK.log_payload(b"\x01\x02", 0)


@pytest.mark.parametrize(
    ("predicted", "expected_line", "passed"),
    [
        ([1, 11, 21], "accuracy=100.000%, good=3, total=3", True),
        ([5, 5, 5], "accuracy=0.000%, good=0, total=3", False),
        ([1, 11, 5], "accuracy=66.667%, good=2, total=3", False),
    ],
)
def test_top1_perfect_none_partial(imagenet_dir: Path, predicted, expected_line, passed):
    ds = ImagenetDataset(imagenet_dir)  # labels 0, 10, 20
    results = [(i, _argmax_bytes(p)) for i, p in enumerate(predicted)]
    report = BENCHMARK.accuracy(ds, results)
    assert report.text.splitlines()[0] == expected_line
    assert report.passed is passed
    assert report.target == pytest.approx(76.46 * 0.99)
    assert report.text.splitlines()[-1].startswith("PASS" if passed else "FAIL")


def test_duplicates_count_once_first_wins(imagenet_dir: Path):
    ds = ImagenetDataset(imagenet_dir)
    results = [(0, _argmax_bytes(1)), (0, _argmax_bytes(7)), (1, _argmax_bytes(7))]
    report = BENCHMARK.accuracy(ds, results)
    assert report.text.splitlines()[0] == "accuracy=50.000%, good=1, total=2"
    assert report.value == pytest.approx(50.0)
