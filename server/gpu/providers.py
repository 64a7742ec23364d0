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

Accelerator parameters (Triton's names) become ORT provider options in gpu/provider_options.py.

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
from typing import Any

from edgeperf.server.gpu.provider_options import (
    CUDA_MODEL_PARAMETERS,
    Fail,
    bool_option,
    cuda_option,
    tensorrt_options,
)

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
    fallback = bool_option(fallback_text, "parameters.cpu_fallback", fail) == "True"
    model_cuda = [
        cuda_option(k, parameters[k], f"parameters.{k}", fail)
        for k in CUDA_MODEL_PARAMETERS
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
            options = tensorrt_options(params, where, model_dir, fail)
            if graphs and "trt_cuda_graph_enable" not in dict(options):
                options.append(("trt_cuda_graph_enable", "True"))
        elif name == CUDA:
            merged = dict(model_cuda) | dict(
                cuda_option(k, v, f"{where}.parameters[{k!r}]", fail) for k, v in params.items()
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
