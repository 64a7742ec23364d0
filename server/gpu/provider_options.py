"""Triton's accelerator parameters, checked, as ONNX Runtime provider options (strings ORT accepts).

Parameters keep Triton's names (onnxruntime_backend README):

    tensorrt: precision_mode FP32|FP16|INT8 -> trt_fp16_enable / trt_int8_enable;
              max_workspace_size_bytes -> trt_max_workspace_size; int8_calibration_table_name and
              int8_use_native_calibration_table -> trt_-prefixed; every trt_* option of the table as is.
              trt_engine_cache_path and trt_timing_cache_path are relative to the model folder.
    cuda:     cudnn_conv_algo_search (0/1/2 or EXHAUSTIVE/HEURISTIC/DEFAULT), gpu_mem_limit,
              arena_extend_strategy (0/1 or kNextPowerOfTwo/kSameAsRequested), do_copy_in_default_stream,
              cudnn_conv_use_max_workspace, use_ep_level_unified_stream, enable_cuda_graph, use_tf32,
              prefer_nhwc, tunable_op_*; the four deprecated model-level `parameters` of the same names too.
    others:   passed to ORT unchanged.

`device_id` and `user_compute_stream` are never taken from the config (each instance has its own).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn, Protocol

__all__ = ["CUDA_MODEL_PARAMETERS", "Fail", "bool_option", "cuda_option", "tensorrt_options"]

_TRT_BOOL = frozenset(
    [
        "trt_dla_enable",
        "trt_engine_cache_enable",
        "trt_dump_subgraphs",
        "trt_force_sequential_engine_build",
        "trt_context_memory_sharing_enable",
        "trt_layer_norm_fp32_fallback",
        "trt_timing_cache_enable",
        "trt_force_timing_cache",
        "trt_detailed_build_log",
        "trt_build_heuristics_enable",
        "trt_sparsity_enable",
        "trt_cuda_graph_enable",
        "trt_dump_ep_context_model",
        "trt_int8_use_native_calibration_table",
    ]
)
_TRT_INT = frozenset(
    [
        "trt_max_workspace_size",
        "trt_max_partition_iterations",
        "trt_min_subgraph_size",
        "trt_dla_core",
        "trt_builder_optimization_level",
        "trt_auxiliary_streams",
        "trt_ep_context_embed_mode",
    ]
)
_TRT_STRING = frozenset(
    [
        "trt_int8_calibration_table_name",
        "trt_engine_cache_path",
        "trt_engine_cache_prefix",
        "trt_timing_cache_path",
        "trt_tactic_sources",
        "trt_extra_plugin_lib_paths",
        "trt_profile_min_shapes",
        "trt_profile_max_shapes",
        "trt_profile_opt_shapes",
        "trt_ep_context_file_path",
    ]
)
_TRT_PATHS = frozenset({"trt_engine_cache_path", "trt_timing_cache_path"})
_TRT_RENAMED = {
    "max_workspace_size_bytes": "trt_max_workspace_size",
    "int8_calibration_table_name": "trt_int8_calibration_table_name",
    "int8_use_native_calibration_table": "trt_int8_use_native_calibration_table",
}
_CUDA_BOOL = frozenset(
    [
        "do_copy_in_default_stream",
        "cudnn_conv_use_max_workspace",
        "cudnn_conv1d_pad_to_nc1d",
        "enable_cuda_graph",
        "use_ep_level_unified_stream",
        "tunable_op_enable",
        "tunable_op_tuning_enable",
        "prefer_nhwc",
        "use_tf32",
        "enable_skip_layer_norm_strict_mode",
    ]
)
_CUDA_INT = frozenset({"gpu_mem_limit", "tunable_op_max_tuning_duration_ms"})
_CUDA_ENUM: Mapping[str, tuple[str, ...]] = {
    "cudnn_conv_algo_search": ("EXHAUSTIVE", "HEURISTIC", "DEFAULT"),
    "arena_extend_strategy": ("kNextPowerOfTwo", "kSameAsRequested"),
}
CUDA_MODEL_PARAMETERS = (
    "cudnn_conv_algo_search",
    "gpu_mem_limit",
    "arena_extend_strategy",
    "do_copy_in_default_stream",
)
_RESERVED = frozenset({"device_id", "user_compute_stream", "has_user_compute_stream"})
_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"0", "false"})


class Fail(Protocol):
    """The config parser's error callback: raises ModelConfigError naming the file, model and field."""

    def __call__(self, field_name: str, reason: str, line: int = 0) -> NoReturn: ...


def bool_option(value: str, where: str, fail: Fail) -> str:
    """ORT's spelling ("True"/"False") of a config flag written 1/0/true/false."""
    text = value.strip().lower()
    if text in _TRUE:
        return "True"
    if text in _FALSE:
        return "False"
    fail(where, f"expected 1/0/true/false, found '{value}'")


def _int(value: str, where: str, fail: Fail) -> str:
    text = value.strip()
    if not text.lstrip("-").isdigit():
        fail(where, f"expected an integer, found '{value}'")
    return str(int(text))


def tensorrt_options(
    params: Mapping[str, str], where: str, model_dir: Path, fail: Fail
) -> list[tuple[str, str]]:
    """A tensorrt accelerator's parameters as TensorRT provider options; paths relative to `model_dir`."""
    options: list[tuple[str, str]] = []
    for key, value in params.items():
        at = f"{where}.parameters[{key!r}]"
        if key in _RESERVED:
            fail(at, "is set per instance from instance_group.gpus, not in the config")
        if key == "precision_mode":
            mode = value.strip().upper()
            if mode not in ("FP32", "FP16", "INT8"):
                fail(at, f"expected FP32, FP16 or INT8, found '{value}'")
            if mode == "FP16":
                options.append(("trt_fp16_enable", "True"))
            elif mode == "INT8":
                options.append(("trt_int8_enable", "True"))
            continue
        name = _TRT_RENAMED.get(key, key)
        if name in _TRT_BOOL:
            options.append((name, bool_option(value, at, fail)))
        elif name in _TRT_INT:
            options.append((name, _int(value, at, fail)))
        elif name in _TRT_PATHS:
            options.append((name, str(model_dir / value)))
        elif name in _TRT_STRING:
            options.append((name, value))
        else:
            known = sorted({"precision_mode", *_TRT_RENAMED, *_TRT_BOOL, *_TRT_INT, *_TRT_STRING})
            fail(at, f"unknown TensorRT parameter (known: {', '.join(known)})")
    return options


def cuda_option(key: str, value: str, at: str, fail: Fail) -> tuple[str, str]:
    """One CUDA parameter as a CUDA provider option, its value checked and spelled as ORT wants it."""
    if key in _RESERVED:
        fail(at, "is set per instance from instance_group.gpus, not in the config")
    if key in _CUDA_BOOL:
        return key, bool_option(value, at, fail)
    if key in _CUDA_INT:
        return key, _int(value, at, fail)
    if key in _CUDA_ENUM:
        names = _CUDA_ENUM[key]
        text = value.strip()
        if text.isdigit() and int(text) < len(names):
            return key, names[int(text)]
        if text in names:
            return key, text
        fail(at, f"expected one of {', '.join(names)} (or 0-{len(names) - 1}), found '{value}'")
    known = sorted({*_CUDA_BOOL, *_CUDA_INT, *_CUDA_ENUM})
    fail(at, f"unknown CUDA parameter (known: {', '.join(known)})")
