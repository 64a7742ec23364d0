"""Greedy transducer decoding with scripted prediction and joint networks: the reference's rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgeperf.benchmarks.rnnt.model import SMALL
from edgeperf.benchmarks.rnnt.pipeline import GreedyDecoder

BLANK = SMALL.blank_index


class Prediction:
    """g[0, 0] is the last token fed in; records every call."""

    def __init__(self) -> None:
        self.tokens: list[int] = []

    def run(self, output_names: Sequence[str] | None, feed: Mapping[str, Any]) -> list[Any]:
        token = int(feed["token"][0, 0])
        self.tokens.append(token)
        g = np.zeros((1, SMALL.pred_hidden), np.float32)
        g[0, 0] = token
        return [g, feed["h_in"] + 1.0, feed["c_in"]]


class Joint:
    """Emits the labels of `script[step]` one after another, then blank."""

    def __init__(self, script: dict[int, list[int]]) -> None:
        self.script = script
        self.calls = 0

    def run(self, output_names: Sequence[str] | None, feed: Mapping[str, Any]) -> list[Any]:
        self.calls += 1
        step = int(feed["f"][0, 0])
        last = int(feed["g"][0, 0])
        wanted = self.script.get(step, [])
        # position in this step's script: after the start symbol or after the step's previous label
        index = wanted.index(last) + 1 if last in wanted else 0
        logits = np.zeros((1, SMALL.num_classes), np.float32)
        logits[0, wanted[index] if index < len(wanted) else BLANK] = 1.0
        return [logits]


def _encoded(steps: int) -> np.ndarray:
    encoded = np.zeros((steps, 1, SMALL.encoder_hidden), np.float32)
    encoded[:, 0, 0] = np.arange(steps)
    return encoded


def test_labels_per_step_until_blank() -> None:
    prediction, joint = Prediction(), Joint({0: [5, 6], 2: [7]})
    labels = GreedyDecoder(prediction, joint, SMALL).decode(_encoded(3))
    assert labels == [5, 6, 7]
    # start symbol first, then one prediction step per emitted label, fed the label just emitted
    assert prediction.tokens == [BLANK, 5, 6, 7]
    # step 0: 5, 6, blank; step 1: blank; step 2: 7, blank
    assert joint.calls == 6


class Always:
    def run(self, output_names: Sequence[str] | None, feed: Mapping[str, Any]) -> list[Any]:
        logits = np.zeros((1, SMALL.num_classes), np.float32)
        logits[0, 3] = 1.0
        return [logits]


def test_at_most_30_symbols_per_step() -> None:
    labels = GreedyDecoder(Prediction(), Always(), SMALL).decode(_encoded(2))
    assert labels == [3] * 60


def test_no_steps_no_labels() -> None:
    assert GreedyDecoder(Prediction(), Always(), SMALL).decode(_encoded(0)) == []
