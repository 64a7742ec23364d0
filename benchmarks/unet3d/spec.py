"""What the MLPerf Inference v2.1 rules and the KiTS19 reference fix for the 3D-UNet benchmark.

Facts and where they come from (mlcommons/inference at tag v2.1 unless noted):

- `vision/medical_imaging/3d-unet-kits19/global_vars.py`: ROI (patch) 128^3, sliding-window overlap 0.5,
  HU clip [-79, 304], mean 101.0, std 76.9, padding value -2.2, target spacing (1.6, 1.2, 1.2) mm.
- `onnxruntime_SUT.py`: the official ONNX model is run as `sess.run(["output"], {"input": patch})` on a
  [1, 1, 128, 128, 128] FP32 patch and gives [1, 3, 128, 128, 128] (background, kidney, tumour).
- `base_SUT.py`: one LoadGen sample is one whole preprocessed case; the SUT runs the sliding window and
  answers with the argmax as uint8 bytes of the case's shape.
- `meta/inference_cases.json`: 43 cases. `tools/submission/submission-checker.py` for v2.1:
  accuracy target DICE 0.86170 x 0.99 and x 0.999 ("3d-unet-99" / "3d-unet-99.9"), performance sample
  count 42, Edge scenarios SingleStream and Offline. (v2.0 used 0.86331 and 42; v3.0 to v5.0 keep
  0.86170 with a performance sample count of 43.)
- `mlperf.conf` v2.1: `3d-unet.*.performance_sample_count_override = 0` and equal-issue mode
  (`sample_concatenate_permutation = 1`).

The model the server exposes is the pipeline (whole case in, whole segmentation out), so `SPEC.inputs`
and `SPEC.outputs` describe the pipeline; `PATCH_INPUT` / `PATCH_OUTPUT` describe the official ONNX
graph it runs per patch. Max batch size is 0: a request carries one case of its own size.

Wire size: one preprocessed KiTS19 case is 1 x D x H x W FP32 with D, H, W multiples of 64, typically
between 128 and ~512 per axis, so a request is tens to a few hundred MB (e.g. 256 x 320 x 320 is 105 MB);
the answer is a quarter of that (uint8). Server and client need gRPC message limits of at least 512 MiB
for the real dataset.
"""

from __future__ import annotations

from edgeperf.benchmarks.base import BenchmarkSpec, QualityTarget
from edgeperf.protos.kserve import TensorSpec

__all__ = [
    "CLIP_MAX_HU",
    "CLIP_MIN_HU",
    "DATASET_SIZE",
    "MEAN_HU",
    "NUM_CLASSES",
    "OVERLAP",
    "PADDING_VALUE",
    "PATCH_INPUT",
    "PATCH_OUTPUT",
    "REFERENCE_DICE",
    "ROI_SHAPE",
    "SPEC",
    "STD_HU",
    "TARGET_SPACING_MM",
]

ROI_SHAPE: tuple[int, int, int] = (128, 128, 128)
"""Patch (region of interest) the official network runs on."""
OVERLAP = 0.5
"""Sliding-window overlap factor; strides are int(roi * (1 - overlap)) = 64."""
MEAN_HU = 101.0
STD_HU = 76.9
CLIP_MIN_HU = -79.0
CLIP_MAX_HU = 304.0
PADDING_VALUE = -2.2
"""Constant the preprocessing pads normalised images with."""
TARGET_SPACING_MM: tuple[float, float, float] = (1.6, 1.2, 1.2)
NUM_CLASSES = 3
"""Background, kidney, tumour."""
REFERENCE_DICE = 0.86170
"""Mean composite DICE of the FP32 reference model in the v2.1 submission checker."""
DATASET_SIZE = 43
"""Cases in meta/inference_cases.json at v2.1."""

PATCH_INPUT = TensorSpec(name="input", datatype="FP32", shape=(1, 1, *ROI_SHAPE))
PATCH_OUTPUT = TensorSpec(name="output", datatype="FP32", shape=(1, NUM_CLASSES, *ROI_SHAPE))

SPEC = BenchmarkSpec(
    name="3d-unet",
    mlperf_model="3d-unet",
    inputs=(TensorSpec(name="image", datatype="FP32", shape=(1, -1, -1, -1)),),
    outputs=(TensorSpec(name="segmentation", datatype="UINT8", shape=(1, -1, -1, -1)),),
    qsl_size=42,
    dataset_size=DATASET_SIZE,
    quality=QualityTarget(metric="DICE", reference_value=REFERENCE_DICE, fractions=(0.99, 0.999)),
    edge_scenarios=("SingleStream", "Offline"),
    server_latency_ns=None,
    reference_model_sha256=None,
    response_outputs=("segmentation",),
)
"""The server-side pipeline model: one preprocessed case (C=1, D, H, W) in, its argmax segmentation out."""
