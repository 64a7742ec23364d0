"""Synthetic KiTS cases scored against the FP32 stand-in: the cases, the stand-in's segmentations, the opener.

Synthetic data needs the stand-in model for its ground truth and the stand-in builder needs synthetic
cases for int8 calibration; this module sits above both (`dataset` and `model` import only downward).
The model and pipeline modules, and with them onnx and ONNX Runtime, are imported only when a
segmentation is first needed (then cached under `cache_dir`), so a performance run needs neither.
"""

from __future__ import annotations

import hashlib
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from edgeperf.benchmarks._common import SyntheticCases, synthetic_count
from edgeperf.benchmarks.base import Sample, Size
from edgeperf.benchmarks.unet3d.config import config_for
from edgeperf.benchmarks.unet3d.dataset import INPUT_NAME, KitsDataset, synthetic_image
from edgeperf.benchmarks.unet3d.spec import SPEC

if TYPE_CHECKING:
    from edgeperf.benchmarks.unet3d.pipeline import SlidingWindowPipeline

__all__ = ["SyntheticKits", "open_dataset", "standin_segmentation"]

_LOCK = threading.Lock()


class SyntheticKits(SyntheticCases):
    """`count` synthetic cases; their ground truth is the FP32 stand-in's segmentation (computed lazily).

    With the stand-in's own FP32 outputs as labels, the FP32 stand-in scores DICE 1.0, so the gate checks a
    reduced-precision variant against 99% (99.9%) of the FP32 model, as the rules do with the real one.
    """

    item = "case"
    reference_value = 1.0

    def sample(self, index: int) -> Sample:
        self._check(index)
        return {INPUT_NAME: synthetic_image(index, self.size)}

    def shape(self, index: int) -> tuple[int, ...]:
        return tuple(self.sample(index)[INPUT_NAME].shape)

    def label(self, index: int) -> npt.NDArray[np.uint8]:
        """The FP32 stand-in's segmentation of case `index`, cached under `cache_dir`."""
        self._check(index)
        return standin_segmentation(self, index)

    def case_name(self, index: int) -> str:
        return f"synthetic_{index:05d}"


@lru_cache(maxsize=2)
def _standin(size: Size) -> tuple[str, SlidingWindowPipeline]:
    # NOTE: imported here: scoring a synthetic set needs onnx and onnxruntime, a performance run does not.
    import onnxruntime as ort

    from edgeperf.benchmarks.unet3d.model import PipelineSettings, build_standin
    from edgeperf.benchmarks.unet3d.pipeline import SlidingWindowPipeline

    data = build_standin(size).SerializeToString()
    digest = hashlib.sha256(data).hexdigest()[:16]
    options = ort.SessionOptions()
    session: Any = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    return digest, SlidingWindowPipeline(session, PipelineSettings(roi=config_for(size).roi))


def standin_segmentation(dataset: SyntheticKits, index: int) -> npt.NDArray[np.uint8]:
    """The FP32 stand-in's labels for synthetic case `index` ([1, D, H, W] uint8)."""
    with _LOCK:
        digest, pipeline = _standin(dataset.size)
        path = dataset.cache_dir / f"unet3d-{dataset.size}-{digest}" / f"case_{index:05d}.npy"
        if path.exists():
            cached: npt.NDArray[np.uint8] = np.load(path)
            return cached
        image = dataset.sample(index)["image"]
        labels: npt.NDArray[np.uint8] = pipeline.run({"image": image}, ["segmentation"])["segmentation"]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, labels)
        tmp.replace(path)
        return labels


def open_dataset(source: str, *, size: Size = "full") -> KitsDataset | SyntheticKits:
    """`synthetic[:COUNT]` (default COUNT: the QSL size for full, 4 for small) or the reference's
    preprocessed folder (`preprocessed_files.pkl` and `case_XXXXX.pkl`).

    Raises:
        DatasetError: a bad COUNT.
        KitsDataError: the folder is not in the reference's layout.
    """
    count = synthetic_count(source, default=SPEC.qsl_size if size == "full" else 4)
    if count is not None:
        return SyntheticKits(count, size)
    return KitsDataset(Path(source))
