"""Pipeline models: a Runtime built by a Python factory named in the config, from several ONNX graphs.

config.pbtxt:

    platform: "edgeperf_pipeline"
    parameters { key: "pipeline" value: { string_value: "edgeperf.benchmarks.rnnt.pipeline:build" } }

The factory is called as `factory(version_dir, make_session)`; `make_session(path)` builds an ONNX Runtime
session with the model's ORT options (threads, optimisation level, providers). It returns an object with
the Runtime methods `run(inputs, output_names)` and `close()`, and optionally `warmup()`, which the core
calls once per instance at load instead of the zero-input warm-up ONNX models get (zeros are not valid
input for every pipeline).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnxruntime as ort

from edgeperf.server.errors import ModelConfigError
from edgeperf.server.model_config import ModelConfig
from edgeperf.server.runtime.base import Runtime
from edgeperf.server.runtime.onnx import make_session

__all__ = ["PipelineFactory", "load_pipeline", "resolve_factory"]

PipelineFactory = Callable[[Path, Callable[[Path], ort.InferenceSession]], Any]
_FIELD = "parameters.pipeline"


def resolve_factory(config: ModelConfig) -> PipelineFactory:
    """Import the `module:attribute` named by the config's `pipeline` parameter.

    Raises:
        ModelConfigError: malformed name, module not importable, attribute missing or not callable.
    """
    spec = config.parameters.get("pipeline", "")
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ModelConfigError(config.source, _FIELD, f"'{spec}' is not of the form 'module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelConfigError(config.source, _FIELD, f"cannot import '{module_name}': {exc}") from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ModelConfigError(config.source, _FIELD, f"'{module_name}' has no callable '{attr}'")
    return factory  # type: ignore[no-any-return]


def load_pipeline(version_dir: Path, config: ModelConfig, instance: int = 0) -> Runtime:
    """Build the pipeline Runtime for instance `instance` (blocking; call from a worker thread). Its
    sessions go on the instance's device (instance_group); a pipeline calls `session.run` itself, so
    it gets no I/O binding.

    Raises:
        ModelConfigError: the factory cannot be found, fails, or returns no Runtime.
    """
    factory = resolve_factory(config)
    device = config.instance_devices[instance % len(config.instance_devices)]
    session_maker = functools.partial(
        make_session, options=config.ort, device=device, source=config.source, instance=str(instance)
    )
    try:
        runtime = factory(version_dir, session_maker)
    except ModelConfigError:
        raise
    except Exception as exc:
        raise ModelConfigError(
            config.source, _FIELD, f"factory '{config.parameters['pipeline']}' failed: {exc!r}"
        ) from exc
    if not isinstance(runtime, Runtime):
        raise ModelConfigError(
            config.source, _FIELD, f"factory returned {type(runtime).__name__}, which lacks run() and close()"
        )
    return runtime
