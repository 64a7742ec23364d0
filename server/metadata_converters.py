"""Domain -> protobuf for every RPC but inference: server and model metadata, model config, repository
index, statistics and the system description (inference requests and responses: server/converters.py).

Pure functions of plain values; nothing here reads the machine, touches the core or a gRPC context.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from google.protobuf import json_format

from edgeperf.protos import edgeperf_service_pb2 as epb
from edgeperf.protos import grpc_service_pb2 as pb
from edgeperf.protos import model_config_pb2 as mc
from edgeperf.protos.kserve import TensorSpec
from edgeperf.server.core import ModelInfo
from edgeperf.server.model_config import ModelConfig
from edgeperf.server.power.service import source_info_proto
from edgeperf.server.stats import Duration, ModelStatistics
from edgeperf.server.system import SystemFacts

__all__ = [
    "EXTENSIONS",
    "model_config_to_proto",
    "model_metadata_to_proto",
    "repository_index_to_proto",
    "server_metadata_to_proto",
    "statistics_response",
    "statistics_to_proto",
    "system_description_to_proto",
]

EXTENSIONS: Final = ("model_configuration", "model_repository", "schedule_policy", "parameters", "statistics")
"""ServerMetadata extensions; perf_analyzer collects server statistics only when "statistics" is listed."""


def server_metadata_to_proto(version: str) -> pb.ServerMetadataResponse:
    return pb.ServerMetadataResponse(name="edgeperf", version=version, extensions=EXTENSIONS)


def _tensor_metadata(tensor: TensorSpec, batch: tuple[int, ...]) -> pb.ModelMetadataResponse.TensorMetadata:
    return pb.ModelMetadataResponse.TensorMetadata(
        name=tensor.name, datatype=tensor.datatype, shape=(*batch, *tensor.shape)
    )


def model_metadata_to_proto(
    name: str, versions: Iterable[str], config: ModelConfig
) -> pb.ModelMetadataResponse:
    """Tensor shapes lead with -1 (any batch size) when the model batches, as Triton's do."""
    batch = (-1,) if config.max_batch_size > 0 else ()
    return pb.ModelMetadataResponse(
        name=name,
        versions=versions,
        platform=config.platform,
        inputs=[_tensor_metadata(t, batch) for t in config.inputs],
        outputs=[_tensor_metadata(t, batch) for t in config.outputs],
    )


def model_config_to_proto(config: ModelConfig) -> pb.ModelConfigResponse:
    """The config file as read, with name, platform, backend and max_batch_size as resolved at load."""
    message = json_format.ParseDict(dict(config.document), mc.ModelConfig(), ignore_unknown_fields=True)
    message.name = config.name
    message.platform = config.platform
    message.backend = config.backend
    message.max_batch_size = config.max_batch_size
    return pb.ModelConfigResponse(config=message)


def repository_index_to_proto(models: Iterable[ModelInfo], *, ready_only: bool) -> pb.RepositoryIndexResponse:
    """One entry per served version (a model without one still gets an entry, version "")."""
    index = pb.RepositoryIndexResponse.ModelIndex
    return pb.RepositoryIndexResponse(
        models=[
            index(name=m.name, version=version, state=m.state, reason=m.reason)
            for m in models
            if not ready_only or m.state == "READY"
            for version in (m.versions or ("",))
        ]
    )


def _duration(value: Duration) -> pb.StatisticDuration:
    return pb.StatisticDuration(count=value.count, ns=value.ns)


def statistics_to_proto(stats: ModelStatistics) -> pb.ModelStatistics:
    """Core statistics snapshot -> Triton's ModelStatistics (version stays a numeric string)."""
    inference = stats.inference_stats
    return pb.ModelStatistics(
        name=stats.name,
        version=stats.version,
        last_inference=stats.last_inference_ms,
        inference_count=stats.inference_count,
        execution_count=stats.execution_count,
        inference_stats=pb.InferStatistics(
            success=_duration(inference.success),
            fail=_duration(inference.fail),
            queue=_duration(inference.queue),
            compute_input=_duration(inference.compute_input),
            compute_infer=_duration(inference.compute_infer),
            compute_output=_duration(inference.compute_output),
            cache_hit=pb.StatisticDuration(),
            cache_miss=pb.StatisticDuration(),
        ),
        batch_stats=[
            pb.InferBatchStatistics(
                batch_size=batch.batch_size,
                compute_input=_duration(batch.compute_input),
                compute_infer=_duration(batch.compute_infer),
                compute_output=_duration(batch.compute_output),
            )
            for batch in stats.batch_stats
        ],
    )


def statistics_response(stats: Iterable[ModelStatistics]) -> pb.ModelStatisticsResponse:
    return pb.ModelStatisticsResponse(model_stats=[statistics_to_proto(s) for s in stats])


def system_description_to_proto(facts: SystemFacts) -> epb.SystemDescriptionResponse:
    return epb.SystemDescriptionResponse(
        host_name=facts.host_name,
        os=facts.os,
        cpu_model=facts.cpu_model,
        cpu_cores=facts.cpu_cores,
        memory_bytes=facts.memory_bytes,
        accelerators=[
            epb.Accelerator(
                name=a.name,
                kind=a.kind,
                memory_bytes=a.memory_bytes,
                driver_version=a.driver_version,
                uuid=a.uuid,
            )
            for a in facts.accelerators
        ],
        onnxruntime_version=facts.onnxruntime_version,
        onnxruntime_providers=facts.onnxruntime_providers,
        edgeperf_version=facts.edgeperf_version,
        python_version=facts.python_version,
        machine=facts.machine,
        power_sources=[source_info_proto(info) for info in facts.power_sources],
    )
