"""The server-side pipeline through onnxruntime, and the gate on synthetic speech with FP32 ground truth."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeperf.benchmarks.rnnt import BENCHMARK
from edgeperf.benchmarks.rnnt.pipeline import build
from tests.benchmarks._checks import answers, check_unknown_output_and_close, small_score


def test_pipeline_transcribes_an_utterance(
    small_model: Path, make_session: Callable[[Path], Any], cache_dir: Path
) -> None:
    made: list[str] = []

    def tracking(path: Path) -> Any:
        made.append(path.name)
        return make_session(path)

    pipeline = build(small_model / "1", tracking)
    assert made == ["encoder.onnx", "prediction.onnx", "joint.onnx"]
    pipeline.warmup()
    audio = BENCHMARK.open_dataset("synthetic:1", size="small").sample(0)["audio"]
    out = pipeline.run({"audio": audio}, ["tokens"])
    tokens = out["tokens"]
    assert list(out) == ["tokens"] and tokens.dtype == np.int64 and tokens.ndim == 1
    assert tokens.size > 0 and ((tokens >= 0) & (tokens < 28)).all()
    again = pipeline.run({"audio": audio}, ["tokens"])["tokens"]
    assert np.array_equal(tokens, again)
    check_unknown_output_and_close(pipeline, {"audio": audio}, "tokens", "logits")


def test_fp32_standin_passes_and_a_degraded_one_fails(
    small_model: Path, make_session: Callable[[Path], Any], cache_dir: Path
) -> None:
    dataset, outputs = answers(BENCHMARK, build(small_model / "1", make_session), "synthetic:4", "tokens")
    fp32 = small_score(BENCHMARK, dataset, outputs)
    assert fp32.passed and fp32.value == 0.0
    assert (
        fp32.text.splitlines()[-1] == "PASS: accuracy (1 - WER) 100.000% >= target 99.000% (99% of 100.000%)"
    )
    assert len(list(cache_dir.rglob("utt_*.json"))) == 4
    # drop every third label: words change, so the gate fails
    degraded = [np.delete(o, np.s_[::3]) for o in outputs]
    worse = small_score(BENCHMARK, dataset, degraded)
    assert not worse.passed and worse.value > 0.01
