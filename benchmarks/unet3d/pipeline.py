"""The 3D-UNet server-side pipeline: one case in, sliding-window inference with the patch graph, labels out.

The server loads it from config.pbtxt (`platform: "edgeperf_pipeline"`, parameter `pipeline` =
`edgeperf.benchmarks.unet3d.pipeline:build`) and calls `run` on the instance thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edgeperf.benchmarks.unet3d.model import PIPELINE_FILENAME, PipelineSettings
from edgeperf.benchmarks.unet3d.sliding_window import sliding_window_inference
from edgeperf.benchmarks.unet3d.spec import NUM_CLASSES, PATCH_INPUT, PATCH_OUTPUT, SPEC

__all__ = ["OrtSession", "SlidingWindowPipeline", "build"]

INPUT_NAME = SPEC.inputs[0].name
OUTPUT_NAME = SPEC.outputs[0].name


class OrtSession(Protocol):
    """The part of onnxruntime.InferenceSession the pipeline uses."""

    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any]) -> list[Any]: ...


class SlidingWindowPipeline:
    """Runs a whole preprocessed case through a patch network; blocking, one call at a time."""

    def __init__(self, session: OrtSession, settings: PipelineSettings) -> None:
        self._session = session
        self._settings = settings

    def _run_patch(self, patch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        out = self._session.run([PATCH_OUTPUT.name], {PATCH_INPUT.name: patch})[0]
        return np.asarray(out, dtype=np.float32)

    def run(
        self, inputs: Mapping[str, npt.NDArray[Any]], output_names: Sequence[str]
    ) -> dict[str, npt.NDArray[Any]]:
        """Segment `inputs["image"]` ([1, D, H, W] FP32) into `{"segmentation": uint8 [1, D, H, W]}`.

        Raises:
            KeyError: the input or a requested output is not this model's.
            ValueError: the case's shape cannot be covered by the windows.
        """
        unknown = [n for n in output_names if n != OUTPUT_NAME]
        if unknown:
            raise KeyError(f"unknown outputs {unknown}; this model has {OUTPUT_NAME!r}")
        labels = sliding_window_inference(
            inputs[INPUT_NAME],
            self._run_patch,
            roi=self._settings.roi,
            overlap=self._settings.overlap,
            num_classes=NUM_CLASSES,
            patch_batch=self._settings.patch_batch,
        )
        return {OUTPUT_NAME: labels}

    def warmup(self) -> None:
        """One patch-sized case of padding values, so the first real case does not pay for allocation."""
        roi = self._settings.roi
        self.run({INPUT_NAME: np.full((1, roi, roi, roi), -2.2, dtype=np.float32)}, [OUTPUT_NAME])

    def close(self) -> None:
        """Drop the session (ONNX Runtime frees it with the last reference)."""
        self._session = _Closed()


class _Closed:
    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any]) -> list[Any]:
        raise RuntimeError("the 3D-UNet pipeline is closed")


def build(version_dir: Path, make_session: Callable[[Path], Any]) -> SlidingWindowPipeline:
    """The pipeline factory the server calls with the model's version folder and its session maker.

    Raises:
        ValueError: pipeline.json asks for batches of patches the graph's fixed batch size cannot take.
    """
    settings = PipelineSettings.from_json((version_dir / PIPELINE_FILENAME).read_text())
    session = make_session(version_dir / settings.model_file)
    batch = session.get_inputs()[0].shape[0] if settings.patch_batch > 1 else None
    if isinstance(batch, int) and batch < settings.patch_batch:
        raise ValueError(f"{settings.model_file} takes {batch} patch(es) a run; set patch_batch to 1")
    return SlidingWindowPipeline(session, settings)
