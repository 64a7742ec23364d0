"""What the MLPerf Inference Edge v2.1 rules and the reference implementation fix for RetinaNet 800x800.

Facts (mlcommons/inference at tag v2.1, `vision/classification_and_detection`):
- Official ONNX model `resnext50_32x4d_fpn.onnx` (zenodo record 6617879), exported by
  `tools/retinanet_pytorch_to_onnx.py`: ResNeXt50-32x4d FPN backbone, 264 classes, a fixed
  torch.randn(1, 3, 800, 800) sample input (no dynamic axes, opset 13), outputs named
  ["boxes", "scores", "labels"]; `main.py` profile `retinanet-onnxruntime` feeds input `images` with
  max-batchsize 1. Boxes are x1, y1, x2, y2 in input pixels; labels are the category ids of
  openimages-mlperf.json (no inverse label map for the ONNX model).
- Preprocessing `pre_process_openimages_retinanet`: float32 BGR->RGB, cv2.resize to 800x800 with
  INTER_LINEAR, divide by 255, CHW (the model normalises by the ImageNet mean and std itself).
- Post-processing `PostProcessOpenImagesRetinanet(False, 0.05, 800, 800, False)`: detections with score
  below 0.05 are dropped; each is logged as float32 [idx, ymin/800, xmin/800, ymax/800, xmax/800,
  score, label] and `accuracy-openimages.py` scales by the original image size and runs COCOeval bbox.
- Quality: mAP 0.3757 (ONNX, README); submission-checker v2.1 target ("mAP", 37.55 * 0.99).
- mlperf.conf v2.1: performance_sample_count 64; MultiStream samples_per_query 8. Edge scenarios:
  SingleStream, MultiStream, Offline (submission-checker v2.1 `required-scenarios-edge`; the mlperf.conf
  MultiStream target_latency of 528 ms is a hint, not a bound).
- The MLPerf OpenImages validation subset has 24,781 images (mlcommons/inference `docs/index.md`, later
  than v2.1: the v2.1 tree builds the subset with `openimages_mlperf.sh` without stating its size).
"""

from __future__ import annotations

from edgeperf.benchmarks.base import BenchmarkSpec, QualityTarget, Size
from edgeperf.protos.kserve import TensorSpec

INPUT_NAME = "images"
OUTPUT_NAMES: tuple[str, str, str] = ("boxes", "scores", "labels")
NUM_CLASSES = 264
IMAGE_SIZE: dict[Size, int] = {"full": 800, "small": 128}
"""Input height and width of each stand-in size (the real model is 800)."""
SCORE_THRESHOLD = 0.05
NMS_IOU = 0.5
TOPK_CANDIDATES = 1000
"""Per-level candidates before NMS (torchvision RetinaNet, which MLPerf's model follows)."""
DETECTIONS_PER_IMAGE = 300
REFERENCE_MAP = 37.55
"""submission-checker v2.1 uses the PyTorch model's 37.55 (the ONNX file scores 37.57)."""
OPENIMAGES_MLPERF_IMAGES = 24781
# NOTE: zenodo publishes only md5; the sha256 of the official file is unverified here.
REFERENCE_SHA256: str | None = None


def tensors(size: Size = "full") -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Inputs and outputs at `size`.

    The official model takes a fixed batch of one and is served with max_batch_size 0, so these are
    the model's full shapes (the leading 1 of `images` included); -1 is the number of detections.
    """
    side = IMAGE_SIZE[size]
    inputs = (TensorSpec(name=INPUT_NAME, datatype="FP32", shape=(1, 3, side, side)),)
    outputs = (
        TensorSpec(name="boxes", datatype="FP32", shape=(-1, 4)),
        TensorSpec(name="scores", datatype="FP32", shape=(-1,)),
        TensorSpec(name="labels", datatype="INT64", shape=(-1,)),
    )
    return inputs, outputs


_INPUTS, _OUTPUTS = tensors()

SPEC = BenchmarkSpec(
    name="retinanet",
    mlperf_model="retinanet",
    inputs=_INPUTS,
    outputs=_OUTPUTS,
    qsl_size=64,
    dataset_size=OPENIMAGES_MLPERF_IMAGES,
    quality=QualityTarget(metric="mAP", reference_value=REFERENCE_MAP, fractions=(0.99,)),
    edge_scenarios=("SingleStream", "MultiStream", "Offline"),
    # NOTE: the Server bound (100 ms) belongs to the datacenter suite; Edge has no Server scenario.
    server_latency_ns=None,
    multi_stream_samples_per_query=8,
    reference_model_sha256=REFERENCE_SHA256,
    # NOTE: accuracy.decode_detections reads the three outputs concatenated (28 bytes a detection).
    response_outputs=OUTPUT_NAMES,
)
