"""Loading one model version: its runtime instances (built and warmed up on their own threads), its
dynamic batcher and its statistics, as the `LoadedModel` the core serves."""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable

from edgeperf.server.batching import DynamicBatcher
from edgeperf.server.clock import Clock
from edgeperf.server.errors import ModelConfigError
from edgeperf.server.instances import InstancePool
from edgeperf.server.model_config import ModelConfig
from edgeperf.server.repository import ModelSource
from edgeperf.server.runtime.base import Runtime
from edgeperf.server.runtime.onnx import OnnxRuntime
from edgeperf.server.runtime.pipeline import load_pipeline
from edgeperf.server.runtime.reshape import with_reshape
from edgeperf.server.settings import intra_op_share
from edgeperf.server.stats import StatsObserver, StatsRecorder
from edgeperf.server.validation import RequestValidator, warmup_inputs

__all__ = ["LoadedModel", "load_model"]


class LoadedModel:
    """One served version of a model: its config, instances, batcher and statistics."""

    def __init__(
        self,
        *,
        source: ModelSource,
        version: int,
        pool: InstancePool,
        batcher: DynamicBatcher,
        stats: StatsRecorder,
    ) -> None:
        self.name = source.name
        self.version = str(version)
        self.versions = tuple(str(v) for v in source.versions)
        self.config: ModelConfig = source.config
        self.pool = pool
        self.batcher = batcher
        self.stats = stats
        self.validate = RequestValidator(source.config)


async def load_model(
    source: ModelSource,
    version: int,
    *,
    warmup: bool,
    observer: StatsObserver | None,
    clock: Clock,
    workers: int,
) -> LoadedModel:
    """Build `source`'s instances for `version`, warm them up (with `warmup`) and give them a batcher.

    Args:
        workers: how many server processes share the machine; the intra-op threads are divided by it.

    Raises:
        ModelConfigError: a warm-up run failed; or whatever building a runtime raised.
    """
    if workers > 1:
        threads = intra_op_share(source.config.ort.intra_op_threads, workers)
        ort = dataclasses.replace(source.config.ort, intra_op_threads=threads)
        source = dataclasses.replace(source, config=dataclasses.replace(source.config, ort=ort))
    config = source.config
    version_dir = source.version_dir(version)
    factory: Callable[[int], Runtime]
    if config.platform == "edgeperf_pipeline":
        factory = functools.partial(load_pipeline, version_dir, config)
    else:
        factory = functools.partial(OnnxRuntime.load, version_dir / config.default_model_filename, config)
    # NOTE: each instance takes the next index, which picks its device (config.instance_devices);
    # next() on itertools.count is atomic, and the instances load on their own threads.
    slots = itertools.count()
    pool = await InstancePool.create(
        f"{source.name}-{version}",
        config.instance_count,
        lambda: with_reshape(factory(next(slots)), config),
    )
    try:
        if warmup:
            await _warm_up(config, pool)
    except BaseException:
        await pool.close()
        raise
    stats = StatsRecorder(source.name, str(version), observer)
    batcher = DynamicBatcher(config=config, pool=pool, stats=stats, clock=clock)
    return LoadedModel(source=source, version=version, pool=pool, batcher=batcher, stats=stats)


async def _warm_up(config: ModelConfig, pool: InstancePool) -> None:
    if config.platform == "edgeperf_pipeline":
        # NOTE: zero inputs may not be valid for a pipeline (3D-UNet needs real volume sizes); a
        # pipeline warms itself up through an optional warmup() method instead.
        for instance in pool.instances:
            await instance.call(_pipeline_warmup)
        return
    outputs = [t.name for t in config.outputs]
    for inputs in warmup_inputs(config):
        for instance in pool.instances:
            try:
                await instance.call(lambda rt, inputs=inputs: rt.run(inputs, outputs))  # type: ignore[misc]
            except Exception as exc:
                batch = next(iter(inputs.values())).shape[:1]
                raise ModelConfigError(
                    config.source, "<warm-up>", f"warm-up run with batch {list(batch)} failed: {exc}"
                ) from exc


def _pipeline_warmup(runtime: Runtime) -> None:
    warmup = getattr(runtime, "warmup", None)
    if callable(warmup):
        warmup()
