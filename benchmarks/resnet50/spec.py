"""What the MLPerf Inference Edge v2.1 rules and the reference implementation fix for ResNet50-v1.5.

Facts (mlcommons/inference at tag v2.1, `vision/classification_and_detection`):
- Official ONNX model `resnet50_v1.onnx` (zenodo records 2592612 opset 8, 4735647 opset 11), converted
  from the TF model with NCHW inputs: input `input_tensor:0` FP32 [N, 3, 224, 224], outputs `ArgMax:0`
  INT64 [N] and `softmax_tensor:0` FP32 [N, 1001]. Class 0 is background, hence the 1001 classes.
- `main.py` profile `resnet50-onnxruntime` reads `ArgMax:0`; dataset `imagenet` post-processes it with
  `PostProcessCommon(offset=-1)`, so the logged label is ArgMax - 1, compared with val_map.txt labels.
- Preprocessing `pre_process_vgg`: BGR->RGB, aspect-preserving resize so the short side is
  224 / 0.875 = 256 with cv2.INTER_AREA, centre crop 224, float32, minus means [123.68, 116.78, 103.94],
  HWC->CHW.
- Quality: top-1 76.456% (README); submission-checker v2.1 target ("acc", 76.46 * 0.99).
- mlperf.conf v2.1: performance_sample_count 1024; MultiStream samples_per_query 8. Edge scenarios
  (submission-checker v2.1 `required-scenarios-edge`): SingleStream, MultiStream, Offline.
"""

from __future__ import annotations

from edgeperf.benchmarks.base import BenchmarkSpec, QualityTarget, Size
from edgeperf.protos.kserve import TensorSpec

INPUT_NAME = "input_tensor:0"
ARGMAX_NAME = "ArgMax:0"
SOFTMAX_NAME = "softmax_tensor:0"
NUM_CLASSES = 1001
"""ImageNet's 1000 classes plus background at index 0."""
LABEL_OFFSET = -1
"""Added to ArgMax:0 to get the val_map.txt label (reference PostProcessCommon(offset=-1))."""
MEANS_RGB: tuple[float, float, float] = (123.68, 116.78, 103.94)
CROP_FRACTION = 0.875
"""resize_with_aspectratio's scale=87.5: the short side is resized to crop / 0.875."""
IMAGE_SIZE: dict[Size, int] = {"full": 224, "small": 64}
"""Input height and width of each stand-in size (the real model is 224)."""
REFERENCE_TOP1 = 76.46
IMAGENET_VAL_IMAGES = 50000
# NOTE: the official file's sha256 is not published (zenodo gives md5 only) and could not be checked
# here, so no file is recognised as the reference yet; set it once verified against the download.
REFERENCE_SHA256: str | None = None


def tensors(size: Size = "full") -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Per-sample inputs and outputs of the model at `size` (`small` only shrinks the image)."""
    side = IMAGE_SIZE[size]
    inputs = (TensorSpec(name=INPUT_NAME, datatype="FP32", shape=(3, side, side)),)
    outputs = (
        TensorSpec(name=ARGMAX_NAME, datatype="INT64", shape=()),
        TensorSpec(name=SOFTMAX_NAME, datatype="FP32", shape=(NUM_CLASSES,)),
    )
    return inputs, outputs


_INPUTS, _OUTPUTS = tensors()

SPEC = BenchmarkSpec(
    name="resnet50",
    mlperf_model="resnet50",
    inputs=_INPUTS,
    outputs=_OUTPUTS,
    qsl_size=1024,
    dataset_size=IMAGENET_VAL_IMAGES,
    quality=QualityTarget(metric="top1", reference_value=REFERENCE_TOP1, fractions=(0.99,)),
    edge_scenarios=("SingleStream", "MultiStream", "Offline"),
    # NOTE: the Server bound (15 ms) belongs to the datacenter suite; Edge has no Server scenario.
    server_latency_ns=None,
    multi_stream_samples_per_query=8,
    reference_model_sha256=REFERENCE_SHA256,
    # NOTE: accuracy.decode_label reads ArgMax:0 alone (8 bytes); the 1001-float softmax would add ~4 KB
    # a sample to the accuracy log (~8 KB as hex) and is not scored.
    response_outputs=(ARGMAX_NAME,),
)
