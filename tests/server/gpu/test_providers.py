"""Execution providers from Triton-style configs: ORT options, placement, errors, CPU fallback."""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort
import pytest

from edgeperf.server.errors import ModelConfigError
from edgeperf.server.gpu.providers import (
    CPU,
    CUDA,
    TENSORRT,
    ProviderSpec,
    UnavailableProvider,
    choose_providers,
)
from edgeperf.server.model_config import ModelConfig, load_model_config, parse_model_config
from edgeperf.server.runtime.onnx import OnnxRuntime
from tests.server.core_support import write_tiny

IO = """max_batch_size: 8
input { name: "x" data_type: TYPE_FP32 dims: [4] }
output { name: "y" data_type: TYPE_FP32 dims: [4] }
"""
PBTXT = Path("/repo/resnet/config.pbtxt")

TRT_FP16 = """
instance_group [ { kind: KIND_GPU count: 2 gpus: [ 0, 3 ] } ]
optimization { execution_accelerators { gpu_execution_accelerator [ {
  name: "tensorrt"
  parameters { key: "precision_mode" value: "FP16" }
  parameters { key: "max_workspace_size_bytes" value: "1073741824" }
  parameters { key: "trt_engine_cache_enable" value: "1" }
  parameters { key: "trt_engine_cache_path" value: "trt-cache" }
} ] } }
parameters { key: "cudnn_conv_algo_search" value: { string_value: "1" } }
"""

TRT_FP16_YAML = """
max_batch_size: 8
input: [{name: x, data_type: FP32, dims: [4]}]
output: [{name: y, data_type: FP32, dims: [4]}]
instance_group: [{kind: KIND_GPU, count: 2, gpus: [0, 3]}]
optimization:
  execution_accelerators:
    gpu_execution_accelerator:
      - name: tensorrt
        parameters:
          precision_mode: FP16
          max_workspace_size_bytes: "1073741824"
          trt_engine_cache_enable: "1"
          trt_engine_cache_path: trt-cache
parameters: {cudnn_conv_algo_search: "1"}
"""


def parse(text: str, path: Path = PBTXT) -> ModelConfig:
    return parse_model_config(text, path=path, model_name=path.parent.name)


def placed(config: ModelConfig, device: int | None) -> list[tuple[str, dict[str, str]]]:
    return [(p.name, p.option_dict()) for p in config.ort.providers.for_device(device)]


def test_tensorrt_fp16_maps_to_ort_options_per_gpu() -> None:
    config = parse(IO + TRT_FP16)
    assert config.instance_devices == (0, 0, 3, 3)
    assert config.instance_count == 4
    assert placed(config, 3) == [
        (
            TENSORRT,
            {
                "trt_fp16_enable": "True",
                "trt_max_workspace_size": "1073741824",
                "trt_engine_cache_enable": "True",
                "trt_engine_cache_path": "/repo/resnet/trt-cache",
                "device_id": "3",
            },
        ),
        # NOTE: Triton's backend always adds CUDA after the listed GPU accelerators; the deprecated
        # model-level CUDA parameter lands there.
        (CUDA, {"cudnn_conv_algo_search": "HEURISTIC", "device_id": "3"}),
        (CPU, {}),
    ]
    assert not config.ort.providers.cpu_fallback
    assert not config.ort.providers.cuda_graphs


def test_yaml_gives_the_same_providers_as_pbtxt() -> None:
    from_yaml = parse(TRT_FP16_YAML, PBTXT.with_name("config.yaml"))
    from_text = parse(IO + TRT_FP16)
    assert from_yaml.ort == from_text.ort
    assert from_yaml.instance_devices == from_text.instance_devices


def test_cuda_accelerator_options_and_cuda_graphs() -> None:
    config = parse(
        IO
        + """
        instance_group { kind: KIND_GPU }
        optimization {
          cuda { graphs: true }
          execution_accelerators { gpu_execution_accelerator [ { name: "cuda"
            parameters { key: "arena_extend_strategy" value: "kSameAsRequested" }
            parameters { key: "gpu_mem_limit" value: "4294967296" }
            parameters { key: "use_tf32" value: "false" } } ] }
        }"""
    )
    assert config.instance_devices == (0,)
    assert placed(config, 0) == [
        (
            CUDA,
            {
                "arena_extend_strategy": "kSameAsRequested",
                "gpu_mem_limit": "4294967296",
                "use_tf32": "False",
                "enable_cuda_graph": "True",
                "device_id": "0",
            },
        ),
        (CPU, {}),
    ]
    assert config.ort.providers.cuda_graphs
    assert config.document["optimization"]["cuda"] == {"graphs": True}


def test_cuda_graphs_reach_tensorrt_too() -> None:
    config = parse(
        IO
        + 'optimization { cuda { graphs: true } execution_accelerators { gpu_execution_accelerator [ { name: "tensorrt" } ] } }'
    )
    trt, cuda, _ = placed(config, 0)
    assert trt[1]["trt_cuda_graph_enable"] == "True"
    assert cuda[1]["enable_cuda_graph"] == "True"


@pytest.mark.parametrize(
    ("extra", "devices"),
    [
        ("", (None,)),  # no instance_group, no GPU accelerator: the CPU, as before
        ('optimization { execution_accelerators { gpu_execution_accelerator [ { name: "cuda" } ] } }', (0,)),
        ("instance_group [ { count: 2 kind: KIND_CPU }, { kind: KIND_GPU gpus: [1] } ]", (None, None, 1)),
        ("instance_group { count: 3 gpus: [2] }", (2, 2, 2)),
        (
            'parameters { key: "execution_providers" value { string_value: "openvino" } }',
            (None,),
        ),
    ],
)
def test_where_instances_run(extra: str, devices: tuple[int | None, ...]) -> None:
    assert parse(IO + extra).instance_devices == devices


def test_kind_gpu_without_accelerators_gets_cuda_then_the_cpu_list() -> None:
    config = parse(
        IO
        + """instance_group { kind: KIND_GPU }
        optimization { execution_accelerators { cpu_execution_accelerator [ { name: "openvino" } ] } }"""
    )
    assert [name for name, _ in placed(config, 0)] == [CUDA, "OpenVINOExecutionProvider", CPU]
    assert [name for name, _ in placed(config, None)] == ["OpenVINOExecutionProvider", CPU]


BAD = [
    (
        'optimization { execution_accelerators { gpu_execution_accelerator [ { name: "tensorrt" parameters { key: "precision_mode" value: "FP8" } } ] } }',
        "optimization.execution_accelerators.gpu_execution_accelerator[0].parameters['precision_mode']",
        "expected FP32, FP16 or INT8",
    ),
    (
        'optimization { execution_accelerators { gpu_execution_accelerator [ { name: "tensorrt" parameters { key: "trt_warp_speed" value: "1" } } ] } }',
        "optimization.execution_accelerators.gpu_execution_accelerator[0].parameters['trt_warp_speed']",
        "unknown TensorRT parameter",
    ),
    (
        'optimization { execution_accelerators { gpu_execution_accelerator [ { name: "cuda" parameters { key: "device_id" value: "1" } } ] } }',
        "optimization.execution_accelerators.gpu_execution_accelerator[0].parameters['device_id']",
        "instance_group.gpus",
    ),
    (
        'optimization { execution_accelerators { gpu_execution_accelerator [ { name: "cuda" parameters { key: "gpu_mem_limit" value: "lots" } } ] } }',
        "optimization.execution_accelerators.gpu_execution_accelerator[0].parameters['gpu_mem_limit']",
        "expected an integer",
    ),
    (
        'optimization { execution_accelerators { gpu_execution_accelerator [ { name: "cuda" }, { name: "cuda" } ] } }',
        "optimization.execution_accelerators.gpu_execution_accelerator[1]",
        "listed twice",
    ),
    (
        'instance_group { kind: KIND_CPU } optimization { execution_accelerators { gpu_execution_accelerator [ { name: "tensorrt" } ] } }',
        "optimization.execution_accelerators.gpu_execution_accelerator",
        "every instance_group is KIND_CPU",
    ),
    (
        "instance_group { kind: KIND_CPU gpus: [0] }",
        "instance_group[0].gpus",
        "only allowed with kind KIND_GPU",
    ),
    ("instance_group { kind: KIND_GPU gpus: [-1] }", "instance_group[0].gpus", "GPU ids are >= 0"),
    ('parameters { key: "cpu_fallback" value { string_value: "maybe" } }', "parameters.cpu_fallback", "1/0"),
    (
        "optimization { cuda { busy_wait_events: true } }",
        "optimization.cuda.busy_wait_events",
        "does not support",
    ),
]


@pytest.mark.parametrize(("extra", "field", "reason"), BAD, ids=[b[1] for b in BAD])
def test_bad_gpu_config_names_file_model_and_field(extra: str, field: str, reason: str) -> None:
    with pytest.raises(ModelConfigError) as info:
        parse(IO + extra)
    assert info.value.field == field
    assert reason in str(info.value)
    assert str(PBTXT) in str(info.value) and "'resnet'" in str(info.value)


def test_choose_providers_fails_on_a_missing_one_unless_fallback() -> None:
    specs = [ProviderSpec(name=TENSORRT, field="f.trt"), ProviderSpec(name=CUDA), ProviderSpec(name=CPU)]
    with pytest.raises(UnavailableProvider) as info:
        choose_providers(specs, [CUDA, CPU], fallback=False)
    assert (info.value.provider, info.value.field) == (TENSORRT, "f.trt")
    chosen = choose_providers(specs, [CPU], fallback=True)
    assert chosen.names == [CPU]
    assert [d.provider for d in chosen.dropped] == [TENSORRT, CUDA]


# ---- with the real (CPU-only) onnxruntime: the GPU config is refused, or falls back where allowed


def _write_gpu_tiny(tmp_path: Path, extra: str) -> Path:
    model_dir = write_tiny(tmp_path, max_batch_size=8)
    config = model_dir / "config.pbtxt"
    text = config.read_text(encoding="utf-8").replace("instance_group [ { count: 1 kind: KIND_CPU } ]", "")
    config.write_text(text + extra, encoding="utf-8")
    return model_dir


TRT_ON_GPU = """
instance_group [ { kind: KIND_GPU gpus: [0] } ]
optimization { execution_accelerators { gpu_execution_accelerator [ { name: "tensorrt" } ] } }
"""


def test_missing_provider_is_a_config_error_naming_the_field(tmp_path: Path) -> None:
    model_dir = _write_gpu_tiny(tmp_path, TRT_ON_GPU)
    config = load_model_config(model_dir)
    with pytest.raises(ModelConfigError) as info:
        OnnxRuntime.load(model_dir / "1" / "model.onnx", config)
    assert info.value.field == "optimization.execution_accelerators.gpu_execution_accelerator[0]"
    assert "TensorrtExecutionProvider is not available" in str(info.value)
    assert str(model_dir / "config.pbtxt") in str(info.value)
    assert "edgeperf[gpu]" in str(info.value) and "cpu_fallback" in str(info.value)


def test_cpu_fallback_runs_on_the_cpu_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import numpy as np

    model_dir = _write_gpu_tiny(
        tmp_path, TRT_ON_GPU + 'parameters { key: "cpu_fallback" value { string_value: "1" } }'
    )
    config = load_model_config(model_dir)
    with caplog.at_level(logging.WARNING):
        runtime = OnnxRuntime.load(model_dir / "1" / "model.onnx", config)
    assert runtime.providers == [CPU]
    assert "TensorrtExecutionProvider is not available" in caplog.text
    assert "CUDAExecutionProvider is not available" in caplog.text
    assert "cpu_fallback is 1" in caplog.text and "model tiny instance 0" in caplog.text
    x = np.ones((2, 16), np.float32)
    np.testing.assert_array_equal(runtime.run({"INPUT0": x}, ["OUTPUT0"])["OUTPUT0"], x * 2 + 1)
    runtime.close()


def test_a_provider_the_session_did_not_take_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An onnxruntime-gpu build on a machine without a GPU lists CUDA as available, and when CUDA
    # fails to start the session falls back to the CPU with only a printed warning: this must not pass
    # for a GPU run. Both behaviours are imitated around the real CPU-only onnxruntime.
    real_session = ort.InferenceSession

    def falls_back(path: str, sess_options: object = None, **_: object) -> object:
        return real_session(path, sess_options=sess_options, providers=[CPU])

    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(ort, "InferenceSession", falls_back)
    model_dir = _write_gpu_tiny(tmp_path, "instance_group [ { kind: KIND_GPU } ]")
    config = load_model_config(model_dir)
    with pytest.raises(ModelConfigError, match="did not start in this session") as info:
        OnnxRuntime.load(model_dir / "1" / "model.onnx", config)
    assert info.value.field == "instance_group.kind"


def test_a_gpu_instance_runs_through_io_binding_with_its_device_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A session that says it took CUDA (it is a CPU session underneath, so it really runs): the GPU path
    # of OnnxRuntime.load gets the instance's device options and runs through the I/O binding.
    import numpy as np

    real_session = ort.InferenceSession
    asked: list[dict[str, object]] = []

    class OnCuda:
        def __init__(self, inner: ort.InferenceSession) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> object:
            return getattr(self._inner, name)

        def get_providers(self) -> list[str]:
            return [CUDA, CPU]

    def session(path: str, sess_options: object = None, **kwargs: object) -> object:
        asked.append(kwargs)
        return OnCuda(real_session(path, sess_options=sess_options, providers=[CPU]))

    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(ort, "InferenceSession", session)
    model_dir = _write_gpu_tiny(
        tmp_path, "instance_group [ { kind: KIND_CPU }, { kind: KIND_GPU count: 1 gpus: [2] } ]"
    )
    config = load_model_config(model_dir)
    assert config.instance_devices == (None, 2)
    runtime = OnnxRuntime.load(model_dir / "1" / "model.onnx", config, 1)
    assert asked[-1] == {"providers": [CUDA, CPU], "provider_options": [{"device_id": "2"}, {}]}
    assert runtime._runner is not None
    x = np.ones((4, 16), np.float32)
    np.testing.assert_array_equal(runtime.run({"INPUT0": x}, ["OUTPUT0"])["OUTPUT0"], x * 3)
    cpu_instance = OnnxRuntime.load(model_dir / "1" / "model.onnx", config, 0)
    assert asked[-1] == {"providers": [CPU], "provider_options": [{}]}
    assert cpu_instance._runner is None
