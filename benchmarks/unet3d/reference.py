"""Ground truth for synthetic cases: the FP32 stand-in's own segmentation, computed in-process and cached."""

from __future__ import annotations

import hashlib
import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from edgeperf.benchmarks.base import Size
from edgeperf.benchmarks.unet3d.model import PipelineSettings, build_standin, config_for
from edgeperf.benchmarks.unet3d.pipeline import SlidingWindowPipeline

if TYPE_CHECKING:
    from edgeperf.benchmarks.unet3d.dataset import SyntheticKits

__all__ = ["standin_segmentation"]

_LOCK = threading.Lock()


@lru_cache(maxsize=2)
def _standin(size: Size) -> tuple[str, SlidingWindowPipeline]:
    import onnxruntime as ort

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
