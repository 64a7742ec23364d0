"""What the MLPerf Inference v2.1 rules and the RNN-T reference fix for the speech benchmark.

Facts and where they come from (mlcommons/inference at tag v2.1 unless noted):

- `speech_recognition/rnnt/QSL.py`: the QSL holds raw float32 waveforms (LibriSpeech dev-clean at 16 kHz,
  utterances of at most 15.0 s); `pytorch_SUT.py` computes features in the SUT and answers with the
  greedy decoder's token ids as int64 ('q') bytes. So the server-side pipeline takes the waveform.
- `pytorch/configs/rnnt.toml` [input_eval]: 16 kHz, 20 ms hann window, 10 ms hop, n_fft 512, 80 log-mel
  features, frame splicing 3, per-feature normalisation, dither 1e-5; [rnnt]: LSTM encoder 1024 hidden,
  2 layers before and 3 after a time-stacking factor of 2, prediction network 2 LSTM layers of 320,
  joint hidden 512; labels " ", a-z, "'" plus blank (29 classes, blank last).
- `pytorch/decoders.py`: greedy decoding with at most 30 symbols per encoder step.
- `tools/submission/submission-checker.py` v2.1: accuracy target ("WER", (100 - 7.452) * 0.99), i.e.
  1 - WER must reach 99% of the FP32 reference's 92.548%; performance sample count 2513; Edge scenarios
  SingleStream and Offline (Server, 1000 ms, is a datacenter scenario).
- `mlperf.conf` v2.1: `rnnt.*.performance_sample_count_override = 2513`; the filtered dev-clean set has
  2513 utterances ("Number of samples: 2513" in `optional_harness_ck/README.md`), so QSL = dataset.

Wire: one request is one utterance, "audio" FP32 [N] (at most 15 s = 240,000 samples, under 1 MB); the
response "tokens" INT64 [K] holds the label indices (may be empty). Max batch size is 0.
"""

from __future__ import annotations

from edgeperf.benchmarks.base import BenchmarkSpec, QualityTarget
from edgeperf.protos.kserve import TensorSpec

__all__ = [
    "BLANK_INDEX",
    "DATACENTER_SERVER_LATENCY_NS",
    "LABELS",
    "MAX_DURATION_S",
    "MAX_SYMBOLS_PER_STEP",
    "REFERENCE_WER",
    "SAMPLE_RATE_HZ",
    "SPEC",
]

LABELS: tuple[str, ...] = (" ", *"abcdefghijklmnopqrstuvwxyz", "'")
"""The dataset vocabulary; the model's classes are these plus blank."""
BLANK_INDEX = len(LABELS)
"""Blank is the last class (helpers.add_blank_label appends it)."""
NUM_CLASSES = len(LABELS) + 1
SAMPLE_RATE_HZ = 16000
MAX_DURATION_S = 15.0
"""Utterances longer than this are left out of the dataset (QSL.py: Manifest(max_duration=15.0))."""
MAX_SYMBOLS_PER_STEP = 30
REFERENCE_WER = 0.07452
"""Word error rate of the FP32 reference model on dev-clean (<= 15 s)."""
DATASET_SIZE = 2513
DATACENTER_SERVER_LATENCY_NS = 1_000_000_000
"""The v2.1 Server latency bound for rnnt (datacenter only; the Edge suite has no Server scenario)."""

SPEC = BenchmarkSpec(
    name="rnnt",
    mlperf_model="rnnt",
    inputs=(TensorSpec(name="audio", datatype="FP32", shape=(-1,)),),
    outputs=(TensorSpec(name="tokens", datatype="INT64", shape=(-1,)),),
    qsl_size=2513,
    dataset_size=DATASET_SIZE,
    quality=QualityTarget(
        metric="WER", reference_value=REFERENCE_WER, fractions=(0.99,), higher_is_better=False
    ),
    edge_scenarios=("SingleStream", "Offline"),
    server_latency_ns=None,
    reference_model_sha256=None,
    response_outputs=("tokens",),
)
"""The server-side pipeline model: a 16 kHz waveform in, the greedy transcript's label indices out."""
