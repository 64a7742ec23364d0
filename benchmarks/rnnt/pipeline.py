"""The RNN-T server-side pipeline: waveform -> features -> encoder -> greedy transducer decoding -> label ids.

Greedy decoding follows mlcommons/inference v2.1 `speech_recognition/rnnt/pytorch/decoders.py`
(ScriptGreedyDecoder): for each encoder step, repeat up to 30 times: run the prediction network on the
last emitted label (the start symbol with zero state before the first one), the joint network on
(encoder step, prediction output), take the arg-max; blank ends the step, any other label is emitted
and the prediction network's new state is kept. The prediction output only changes when a label is
emitted, so it is computed once per emitted label here; the decisions are the reference's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edgeperf.benchmarks.rnnt.features import log_mel_features
from edgeperf.benchmarks.rnnt.model import (
    ENCODER_FILE,
    JOINT_FILE,
    PIPELINE_FILE,
    PREDICTION_FILE,
    RnntConfig,
)
from edgeperf.benchmarks.rnnt.spec import SAMPLE_RATE_HZ, SPEC

__all__ = ["GreedyDecoder", "OrtSession", "RnntPipeline", "build"]

INPUT_NAME = SPEC.inputs[0].name
OUTPUT_NAME = SPEC.outputs[0].name


class OrtSession(Protocol):
    """The part of onnxruntime.InferenceSession the pipeline uses."""

    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any]) -> list[Any]: ...


class GreedyDecoder:
    """Greedy transducer decoding over encoder output with the prediction and joint sessions."""

    def __init__(self, prediction: OrtSession, joint: OrtSession, config: RnntConfig) -> None:
        self._prediction = prediction
        self._joint = joint
        self._config = config

    def _predict(
        self, token: int, h: npt.NDArray[np.float32], c: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        g, h_out, c_out = self._prediction.run(
            ["g", "h_out", "c_out"], {"token": np.array([[token]], dtype=np.int64), "h_in": h, "c_in": c}
        )
        return g, h_out, c_out

    def decode(self, encoded: npt.NDArray[np.float32]) -> list[int]:
        """Label ids for encoder output [T, 1, H] (or [T, H])."""
        cfg = self._config
        steps = encoded.reshape(encoded.shape[0], encoded.shape[-1])
        h = np.zeros((cfg.pred_layers, 1, cfg.pred_hidden), dtype=np.float32)
        c = np.zeros_like(h)
        g, h_next, c_next = self._predict(cfg.blank_index, h, c)  # start symbol
        labels: list[int] = []
        for t in range(steps.shape[0]):
            f = steps[t : t + 1]
            for _ in range(cfg.max_symbols_per_step):
                logits = self._joint.run(["logits"], {"f": f, "g": g})[0]
                k = int(np.argmax(logits[0]))
                if k == cfg.blank_index:
                    break
                labels.append(k)
                h, c = h_next, c_next
                g, h_next, c_next = self._predict(k, h, c)
        return labels


class RnntPipeline:
    """Runs one utterance; blocking, one call at a time."""

    def __init__(
        self, encoder: OrtSession, prediction: OrtSession, joint: OrtSession, config: RnntConfig
    ) -> None:
        self._encoder: OrtSession | None = encoder
        self._decoder: GreedyDecoder | None = GreedyDecoder(prediction, joint, config)

    def transcribe(self, waveform: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
        """Label ids (int64 [K]) of a 16 kHz mono waveform.

        Raises:
            ValueError: the waveform is not 1-D or is too short for one FFT frame.
            RuntimeError: the pipeline is closed.
        """
        if self._encoder is None or self._decoder is None:
            raise RuntimeError("the RNN-T pipeline is closed")
        features = log_mel_features(np.asarray(waveform, dtype=np.float32))
        encoded = self._encoder.run(["encoded"], {"features": features[:, np.newaxis, :]})[0]
        return np.array(self._decoder.decode(np.asarray(encoded, dtype=np.float32)), dtype=np.int64)

    def run(
        self, inputs: Mapping[str, npt.NDArray[Any]], output_names: Sequence[str]
    ) -> dict[str, npt.NDArray[Any]]:
        """`{"audio": FP32 [N]}` -> `{"tokens": INT64 [K]}`.

        Raises:
            KeyError: the input or a requested output is not this model's.
        """
        unknown = [n for n in output_names if n != OUTPUT_NAME]
        if unknown:
            raise KeyError(f"unknown outputs {unknown}; this model has {OUTPUT_NAME!r}")
        return {OUTPUT_NAME: self.transcribe(inputs[INPUT_NAME])}

    def warmup(self) -> None:
        """Half a second of quiet noise through features, encoder and decoder."""
        noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE_HZ // 2).astype(np.float32) * 1e-3
        self.transcribe(noise)

    def close(self) -> None:
        self._encoder = None
        self._decoder = None


def build(version_dir: Path, make_session: Callable[[Path], Any]) -> RnntPipeline:
    """The pipeline factory the server calls with the model's version folder and its session maker."""
    config = RnntConfig.from_json((version_dir / PIPELINE_FILE).read_text())
    return RnntPipeline(
        make_session(version_dir / ENCODER_FILE),
        make_session(version_dir / PREDICTION_FILE),
        make_session(version_dir / JOINT_FILE),
        config,
    )
