"""Building blocks of the RNN-T stand-in: its sizes, weight scales and a small ONNX graph builder."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import helper

from edgeperf.benchmarks._onnx import GraphParts
from edgeperf.benchmarks.base import Size
from edgeperf.benchmarks.rnnt.features import FEATURES
from edgeperf.benchmarks.rnnt.spec import BLANK_INDEX, MAX_SYMBOLS_PER_STEP, NUM_CLASSES

__all__ = [
    "ENCODER_RECURRENT_GAIN",
    "FULL",
    "HIDDEN_STD",
    "OPSET",
    "PRED_FORGET_BIAS",
    "PRED_RECURRENT_GAIN",
    "SEED",
    "SLOW_FORGET_BIAS",
    "SLOW_INPUT_STD",
    "SMALL",
    "GraphBuilder",
    "RnntConfig",
    "config_for",
]

OPSET = 17
SEED = 7452


@dataclass(frozen=True, slots=True, kw_only=True)
class RnntConfig:
    """Sizes of the network; also written to pipeline.json for the server-side decoder."""

    encoder_hidden: int
    pre_layers: int = 2
    post_layers: int = 3
    stack_time: int = 2
    pred_hidden: int
    pred_layers: int = 2
    joint_hidden: int
    feature_size: int = FEATURES.feature_size
    num_classes: int = NUM_CLASSES
    blank_index: int = BLANK_INDEX
    max_symbols_per_step: int = MAX_SYMBOLS_PER_STEP

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> RnntConfig:
        raw = json.loads(text)
        return cls(**{k: int(v) for k, v in raw.items()})


FULL = RnntConfig(encoder_hidden=1024, pred_hidden=320, joint_hidden=512)
SMALL = RnntConfig(encoder_hidden=64, pred_hidden=32, joint_hidden=96)

# Stand-in weight scales: LSTM outputs of a random network have about this standard deviation; the
# encoder's recurrent weights are halved so that rounding errors fade instead of growing over time, and
# its last layer (slow: long memory, soft input) moves smoothly, so that rounding rarely changes which
# label the joint network picks; the prediction network's LSTMs forget fast so that their output says
# which label came last (see joint.build_joint).
HIDDEN_STD = 0.3
ENCODER_RECURRENT_GAIN = 0.5
SLOW_FORGET_BIAS = 3.0
SLOW_INPUT_STD = 2 * HIDDEN_STD
PRED_RECURRENT_GAIN = 0.2
PRED_FORGET_BIAS = -2.0


def config_for(size: Size) -> RnntConfig:
    return FULL if size == "full" else SMALL


class GraphBuilder(GraphParts):
    def const(self, stem: str, value: npt.NDArray[Any]) -> str:
        return self.initializer(stem, np.ascontiguousarray(value))

    def node(self, op: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> list[str]:
        outs = [self.fresh(f"{op.lower()}_out") for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=self.fresh(op.lower()), **attrs))
        return outs

    def permutation(self, n: int) -> npt.NDArray[np.int64]:
        return self.rng.permutation(n).astype(np.int64)

    def normal(self, shape: tuple[int, ...], std: float) -> npt.NDArray[np.float32]:
        return (std * self.rng.standard_normal(shape)).astype(np.float32)

    def lstm(
        self,
        x: str,
        input_size: int,
        hidden: int,
        h0: str = "",
        c0: str = "",
        *,
        input_std: float = HIDDEN_STD,
        recurrent_gain: float = 1.0,
        forget_bias: float = 1.0,
    ) -> tuple[str, str, str]:
        """One LSTM layer on time-major [T, 1, input]; returns (Y [T, 1, H], Y_h, Y_c).

        Input weights are scaled so gate pre-activations have about unit variance for inputs of
        `input_std`, which keeps the random network's states moving with its input.
        """
        w = self.normal((1, 4 * hidden, input_size), 1.0 / (input_std * float(np.sqrt(input_size))))
        r = self.normal((1, 4 * hidden, hidden), recurrent_gain / (HIDDEN_STD * float(np.sqrt(hidden))))
        b = self.normal((1, 8 * hidden), 0.1)
        b[0, 2 * hidden : 3 * hidden] += forget_bias  # ONNX gate order i, o, f, c
        inputs = [x, self.const("W", w), self.const("R", r), self.const("B", b), "", h0, c0]
        while inputs and inputs[-1] == "":
            inputs.pop()
        y, y_h, y_c = self.node("LSTM", inputs, n_out=3, hidden_size=hidden)
        (y,) = self.node("Squeeze", [y, self.const("axis1", np.array([1], dtype=np.int64))])
        return y, y_h, y_c

    def model(
        self, name: str, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto]
    ) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgeperf"
        )
        model.ir_version = 8
        return model
