"""Pipeline models: the `module:factory` loader and the make_session it hands over."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest

from edgeperf.benchmarks.tiny.model import build_graph
from edgeperf.server.core import InferenceCore
from edgeperf.server.errors import ModelConfigError
from edgeperf.server.model_config import ModelConfig, parse_model_config
from edgeperf.server.runtime.pipeline import load_pipeline
from edgeperf.server.types import InferRequest


class TwoStagePipeline:
    """Runs the tiny graph twice: (2x + 1) * 2 + 1 = 4x + 3."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        self.closed = False

    def run(
        self, inputs: Mapping[str, npt.NDArray[Any]], output_names: Sequence[str]
    ) -> dict[str, npt.NDArray[Any]]:
        (once,) = self.session.run(["OUTPUT0"], {"INPUT0": inputs["INPUT0"]})
        (twice,) = self.session.run(["OUTPUT0"], {"INPUT0": once})
        return {"OUTPUT0": twice}

    def warmup(self) -> None:
        WARMED.append(id(self))

    def close(self) -> None:
        self.closed = True


WARMED: list[int] = []


def build_two_stage(
    version_dir: Path, make_session: Callable[[Path], ort.InferenceSession]
) -> TwoStagePipeline:
    return TwoStagePipeline(make_session(version_dir / "stage.onnx"))


def build_broken(version_dir: Path, make_session: Callable[[Path], ort.InferenceSession]) -> Any:
    raise FileNotFoundError("weights.bin")


def build_not_a_runtime(version_dir: Path, make_session: Callable[[Path], ort.InferenceSession]) -> Any:
    return object()


NOT_CALLABLE = 42


def pipeline_config(model_dir: Path, factory: str, extra: str = "") -> ModelConfig:
    text = f"""
        platform: "edgeperf_pipeline"
        max_batch_size: 8
        input {{ name: "INPUT0" data_type: TYPE_FP32 dims: [16] }}
        output {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [16] }}
        parameters {{ key: "pipeline" value: {{ string_value: "{factory}" }} }}
        {extra}
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "config.pbtxt").write_text(text)
    (model_dir / "1").mkdir(exist_ok=True)
    onnx.save(build_graph(), str(model_dir / "1" / "stage.onnx"))
    return parse_model_config(text, path=model_dir / "config.pbtxt", model_name=model_dir.name)


def test_factory_gets_the_version_dir_and_a_configured_make_session(tmp_path: Path) -> None:
    extra = 'parameters { key: "intra_op_thread_count" value: { string_value: "1" } }'
    config = pipeline_config(tmp_path / "p", f"{__name__}:build_two_stage", extra)
    runtime = load_pipeline(tmp_path / "p" / "1", config)
    assert isinstance(runtime, TwoStagePipeline)
    assert runtime.session.get_session_options().intra_op_num_threads == 1
    x = np.ones((2, 16), np.float32)
    np.testing.assert_array_equal(runtime.run({"INPUT0": x}, ["OUTPUT0"])["OUTPUT0"], 4 * x + 3)


@pytest.mark.parametrize(
    ("factory", "reason"),
    [
        ("no_colon_here", "is not of the form 'module:factory'"),
        ("edgeperf.no_such_module:build", "cannot import 'edgeperf.no_such_module'"),
        (f"{__name__}:missing", "has no callable 'missing'"),
        (f"{__name__}:NOT_CALLABLE", "has no callable 'NOT_CALLABLE'"),
        (f"{__name__}:build_broken", "failed: FileNotFoundError('weights.bin')"),
        (f"{__name__}:build_not_a_runtime", "returned object, which lacks run() and close()"),
    ],
)
def test_bad_factories_are_config_errors(tmp_path: Path, factory: str, reason: str) -> None:
    config = pipeline_config(tmp_path / "p", factory)
    with pytest.raises(ModelConfigError) as info:
        load_pipeline(tmp_path / "p" / "1", config)
    assert info.value.field == "parameters.pipeline"
    assert reason in str(info.value)


async def test_pipeline_model_is_served_and_batched_by_the_core(tmp_path: Path) -> None:
    pipeline_config(tmp_path / "p", f"{__name__}:build_two_stage", "dynamic_batching { }")
    WARMED.clear()
    async with InferenceCore(tmp_path) as core:
        assert len(WARMED) == 1  # the pipeline's own warmup(), once per instance
        x = np.full((3, 16), 2.0, np.float32)
        response = await core.infer(InferRequest(model_name="p", inputs={"INPUT0": x}))
        np.testing.assert_array_equal(response.outputs["OUTPUT0"], 4 * x + 3)
        assert core.model("p").config.platform == "edgeperf_pipeline"
