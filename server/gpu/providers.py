"""Execution providers from a model config, written Triton's way, as ONNX Runtime providers with options.

No onnxruntime import here: the config is checked and planned at parse time, and the ORT build is
consulted only when a session is made (`choose_providers`, called by runtime/onnx.py).

Where instances run (`instance_group`):

    KIND_CPU            `count` instances on the CPU; `gpus` is an error.
    KIND_GPU            `count` instances on each GPU in `gpus` (default [0]; Triton's default is every
                        visible GPU, edgeperf does not probe devices while parsing, so list them).
    KIND_AUTO, no group GPU 0 when the config names a GPU accelerator, otherwise the CPU.

Which providers, in order (Triton's onnxruntime backend order):

    GPU instance: gpu_execution_accelerator entries as written, CUDA (unless already listed), then the
                  CPU list below. TensorRT and CUDA get `device_id` from the instance's GPU.
    CPU instance: cpu_execution_accelerator entries, the `execution_providers` parameter, then CPU.

A gpu_execution_accelerator on a model whose instances are all KIND_CPU is an error (Triton ignores it).

Accelerator parameters (Triton's names, onnxruntime_backend README) become ORT provider options:

    tensorrt: precision_mode FP32|FP16|INT8 -> trt_fp16_enable / trt_int8_enable;
              max_workspace_size_bytes -> trt_max_workspace_size; int8_calibration_table_name and
              int8_use_native_calibration_table -> trt_-prefixed; every trt_* option of the table as is.
              trt_engine_cache_path and trt_timing_cache_path are relative to the model folder.
    cuda:     cudnn_conv_algo_search (0/1/2 or EXHAUSTIVE/HEURISTIC/DEFAULT), gpu_mem_limit,
              arena_extend_strategy (0/1 or kNextPowerOfTwo/kSameAsRequested), do_copy_in_default_stream,
              cudnn_conv_use_max_workspace, use_ep_level_unified_stream, enable_cuda_graph, use_tf32,
              prefer_nhwc, tunable_op_*; the four deprecated model-level `parameters` of the same names too.
    others:   passed to ORT unchanged.

`optimization { cuda { graphs: true } }` turns on CUDA graph capture (CUDA `enable_cuda_graph`,
TensorRT `trt_cuda_graph_enable`); the runtime then runs through I/O binding at fixed addresses.
`device_id` and `user_compute_stream` are never taken from the config (each instance has its own).

A provider this ORT build lacks, or one the session did not take, is a ModelConfigError naming the file,
the model and the field that asked for it. Only with the edgeperf parameter

    parameters { key: "cpu_fallback" value: { string_value: "1" } }

is it dropped instead, with a WARNING that names the instance, the field and the providers in use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn, Protocol

__all__ = [
    "CPU",
    "CUDA",
    "TENSORRT",
    "ProviderPlan",
    "ProviderSpec",
    "UnavailableProvider",
    "choose_providers",
    "instance_devices",
    "plan_providers",
]

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"

SHORT_NAMES: Mapping[str, str] = {
    "tensorrt": TENSORRT,
    "cuda": CUDA,
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dnnl": "DnnlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
    "acl": "ACLExecutionProvider",
    "armnn": "ArmNNExecutionProvider",
    "cpu": CPU,
}
_DEVICE_PROVIDERS = frozenset({TENSORRT, CUDA})
"""Providers that take `device_id` from the instance's GPU."""

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
_CUDA_MODEL_PARAMETERS = (
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


class UnavailableProvider(Exception):
    """A requested provider this ORT build lacks (or the session did not take); `field` asked for it."""

    def __init__(self, provider: str, field_name: str, why: str) -> None:
        super().__init__(f"{provider} {why}")
        self.provider = provider
        self.field = field_name


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderSpec:
    """One execution provider as the config asks for it."""

    name: str
    """ORT's provider name, e.g. "TensorrtExecutionProvider"."""
    options: tuple[tuple[str, str], ...] = ()
    """ORT provider options, as strings (what InferenceSession's provider_options accepts)."""
    field: str = ""
    """The config field that asked for it, for error messages."""

    def option_dict(self) -> dict[str, str]:
        return dict(self.options)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderPlan:
    """The providers of a model's GPU and CPU instances."""

    gpu: tuple[ProviderSpec, ...] = (ProviderSpec(name=CUDA, field="instance_group.kind"),)
    """For GPU instances, before `cpu`; the device-bound ones get `device_id` per instance."""
    gpu_requested: bool = False
    """The config names a GPU accelerator (so KIND_AUTO instances go on a GPU)."""
    cpu: tuple[ProviderSpec, ...] = (ProviderSpec(name=CPU),)
    """For every instance, last; always ends with CPUExecutionProvider."""
    cpu_fallback: bool = False
    """parameters.cpu_fallback: drop unavailable providers (with a warning) instead of failing."""
    cuda_graphs: bool = False
    """CUDA graph capture is on (optimization.cuda.graphs or the enable_cuda_graph option)."""

    def for_device(self, device: int | None) -> tuple[ProviderSpec, ...]:
        """The providers, in order, of an instance on GPU `device` (None: on the CPU)."""
        if device is None:
            return self.cpu
        placed = tuple(
            replace(p, options=(*p.options, ("device_id", str(device)))) if p.name in _DEVICE_PROVIDERS else p
            for p in self.gpu
        )
        return placed + tuple(p for p in self.cpu if p.name not in {s.name for s in placed})


def _bool(value: str, where: str, fail: Fail) -> str:
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


def _tensorrt_options(
    params: Mapping[str, str], where: str, model_dir: Path, fail: Fail
) -> list[tuple[str, str]]:
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
            options.append((name, _bool(value, at, fail)))
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


def _cuda_option(key: str, value: str, at: str, fail: Fail) -> tuple[str, str]:
    if key in _RESERVED:
        fail(at, "is set per instance from instance_group.gpus, not in the config")
    if key in _CUDA_BOOL:
        return key, _bool(value, at, fail)
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


def _provider_name(name: str, where: str, fail: Fail) -> str:
    provider = SHORT_NAMES.get(name.strip().lower(), name.strip())
    if not provider.endswith("ExecutionProvider"):
        fail(where, f"unknown accelerator '{name}'; use {', '.join(SHORT_NAMES)} or an ORT provider name")
    return provider


def plan_providers(
    optimization: Mapping[str, Any], parameters: Mapping[str, str], model_dir: Path, fail: Fail
) -> ProviderPlan:
    """The ProviderPlan of a config's `optimization` block and `parameters` (protobuf-JSON form).

    Raises:
        ModelConfigError (through `fail`): an unknown accelerator or parameter, or a bad value.
    """
    accelerators = optimization.get("execution_accelerators", {})
    cuda_block = optimization.get("cuda", {})
    graphs = bool(cuda_block.get("graphs", False))
    fallback_text = parameters.get("cpu_fallback", "0")
    fallback = _bool(fallback_text, "parameters.cpu_fallback", fail) == "True"
    model_cuda = [
        _cuda_option(k, parameters[k], f"parameters.{k}", fail)
        for k in _CUDA_MODEL_PARAMETERS
        if k in parameters
    ]

    gpu: list[ProviderSpec] = []
    for i, acc in enumerate(accelerators.get("gpu_execution_accelerator", [])):
        where = f"optimization.execution_accelerators.gpu_execution_accelerator[{i}]"
        name = _provider_name(acc.get("name", ""), where, fail)
        params: Mapping[str, str] = acc.get("parameters", {})
        if any(p.name == name for p in gpu):
            fail(where, f"{name} is listed twice")
        if name == TENSORRT:
            options = _tensorrt_options(params, where, model_dir, fail)
            if graphs and "trt_cuda_graph_enable" not in dict(options):
                options.append(("trt_cuda_graph_enable", "True"))
        elif name == CUDA:
            merged = dict(model_cuda) | dict(
                _cuda_option(k, v, f"{where}.parameters[{k!r}]", fail) for k, v in params.items()
            )
            options = list(merged.items())
        else:
            options = list(params.items())
        gpu.append(ProviderSpec(name=name, options=tuple(options), field=where))
    requested = bool(gpu)
    if not any(p.name == CUDA for p in gpu):
        # NOTE: Triton's onnxruntime backend always adds CUDA after the listed GPU accelerators, so that
        # nodes TensorRT cannot take still run on the GPU.
        gpu.append(ProviderSpec(name=CUDA, options=tuple(model_cuda), field="instance_group.kind"))
    if graphs:
        gpu = [
            replace(p, options=tuple((dict(p.options) | {"enable_cuda_graph": "True"}).items()))
            if p.name == CUDA
            else p
            for p in gpu
        ]

    cpu: list[ProviderSpec] = []
    for i, acc in enumerate(accelerators.get("cpu_execution_accelerator", [])):
        where = f"optimization.execution_accelerators.cpu_execution_accelerator[{i}]"
        name = _provider_name(acc.get("name", ""), where, fail)
        cpu.append(ProviderSpec(name=name, options=tuple(acc.get("parameters", {}).items()), field=where))
    for name in (p.strip() for p in parameters.get("execution_providers", "").split(",")):
        if name:
            provider = _provider_name(name, "parameters.execution_providers", fail)
            cpu.append(ProviderSpec(name=provider, field="parameters.execution_providers"))
    unique: list[ProviderSpec] = []
    for spec in cpu:
        if spec.name != CPU and all(u.name != spec.name for u in unique):
            unique.append(spec)
    unique.append(ProviderSpec(name=CPU))
    cuda_graphs = any(dict(p.options).get("enable_cuda_graph") == "True" for p in gpu)
    return ProviderPlan(
        gpu=tuple(gpu),
        gpu_requested=requested,
        cpu=tuple(unique),
        cpu_fallback=fallback,
        cuda_graphs=cuda_graphs,
    )


def instance_devices(
    groups: Sequence[Mapping[str, Any]], plan: ProviderPlan, fail: Fail
) -> tuple[int | None, ...]:
    """Where each instance runs: a GPU id, or None for the CPU, in instance_group order.

    Raises:
        ModelConfigError (through `fail`): a count below 1, `gpus` on a CPU group, a negative GPU id,
        or GPU accelerators on a model without GPU instances.
    """
    devices: list[int | None] = []
    for i, group in enumerate(groups or [{}]):
        count = group.get("count", 1)
        if count < 1:
            fail(f"instance_group[{i}].count", f"must be >= 1, found {count}")
        kind = group.get("kind", "KIND_AUTO")
        gpus = list(group.get("gpus", []))
        if any(g < 0 for g in gpus):
            fail(f"instance_group[{i}].gpus", f"GPU ids are >= 0, found {gpus}")
        if kind == "KIND_CPU":
            if gpus:
                fail(f"instance_group[{i}].gpus", "only allowed with kind KIND_GPU")
            devices += [None] * count
        elif kind == "KIND_GPU" or gpus or plan.gpu_requested:
            devices += [g for g in (gpus or [0]) for _ in range(count)]
        else:
            devices += [None] * count
    if plan.gpu_requested and all(d is None for d in devices):
        fail(
            "optimization.execution_accelerators.gpu_execution_accelerator",
            "applies to GPU instances, and every instance_group is KIND_CPU",
        )
    return tuple(devices)


@dataclass(frozen=True, slots=True)
class ChosenProviders:
    """What a session is built with, and what was dropped (only with cpu_fallback)."""

    names: list[str]
    options: list[dict[str, str]]
    dropped: list[UnavailableProvider] = field(default_factory=list)


def choose_providers(
    specs: Sequence[ProviderSpec], available: Sequence[str], *, fallback: bool
) -> ChosenProviders:
    """The providers of `specs` that `available` (ORT's get_available_providers()) has.

    Raises:
        UnavailableProvider: the first missing one, unless `fallback`.
    """
    names: list[str] = []
    options: list[dict[str, str]] = []
    dropped: list[UnavailableProvider] = []
    for spec in specs:
        if spec.name in available:
            names.append(spec.name)
            options.append(spec.option_dict())
            continue
        missing = UnavailableProvider(spec.name, spec.field, "is not available in this onnxruntime build")
        if not fallback:
            raise missing
        dropped.append(missing)
    if CPU not in names:
        names.append(CPU)
        options.append({})
    return ChosenProviders(names, options, dropped)
