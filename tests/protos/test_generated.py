"""The committed generated modules import under edgeperf.protos and round-trip messages."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format

from edgeperf.protos import (
    edgeperf_service_pb2,
    edgeperf_service_pb2_grpc,
    grpc_service_pb2,
    grpc_service_pb2_grpc,
    model_config_pb2,
)

PROTOS = Path(__file__).parents[2] / "protos"


def test_generated_imports_use_the_package_name():
    for name in ("grpc_service_pb2.py", "grpc_service_pb2_grpc.py", "edgeperf_service_pb2_grpc.py"):
        assert "from edgeperf.protos import" in (PROTOS / name).read_text(), name
    for path in PROTOS.glob("*_pb2*.py"):
        text = path.read_text()
        assert "\nimport grpc_service_pb2" not in text and "\nimport model_config_pb2" not in text, path


def test_services_and_packages():
    assert grpc_service_pb2.DESCRIPTOR.package == "inference"
    assert (
        grpc_service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
        == "inference.GRPCInferenceService"
    )
    assert (
        edgeperf_service_pb2.DESCRIPTOR.services_by_name["EdgeperfService"].full_name
        == "edgeperf.v1.EdgeperfService"
    )
    assert hasattr(grpc_service_pb2_grpc, "add_GRPCInferenceServiceServicer_to_server")
    assert hasattr(edgeperf_service_pb2_grpc, "EdgeperfServiceStub")


def test_config_pbtxt_text_parses_into_model_config():
    text = """
        name: "tiny"
        platform: "onnxruntime_onnx"
        max_batch_size: 64
        input [{ name: "INPUT0" data_type: TYPE_FP32 dims: [16] }]
        output [{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [16] }]
        dynamic_batching { preferred_batch_size: [8, 16] max_queue_delay_microseconds: 500
                           default_queue_policy { max_queue_size: 128 default_timeout_microseconds: 1000 } }
        instance_group [{ count: 2 kind: KIND_CPU }]
        optimization { graph { level: 1 } execution_accelerators { cpu_execution_accelerator [{ name: "openvino" }] } }
        parameters { key: "pipeline" value: { string_value: "x:build" } }
    """
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert config.WhichOneof("scheduling_choice") == "dynamic_batching"
    assert list(config.dynamic_batching.preferred_batch_size) == [8, 16]
    assert config.dynamic_batching.default_queue_policy.max_queue_size == 128
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    assert config.input[0].data_type == model_config_pb2.TYPE_FP32
    assert config.optimization.execution_accelerators.cpu_execution_accelerator[0].name == "openvino"
    assert config.parameters["pipeline"].string_value == "x:build"
    response = grpc_service_pb2.ModelConfigResponse(config=config)
    assert grpc_service_pb2.ModelConfigResponse.FromString(response.SerializeToString()) == response


def test_system_description_fields():
    message = edgeperf_service_pb2.SystemDescriptionResponse(
        host_name="h", cpu_cores=4, memory_bytes=1 << 30, onnxruntime_providers=["CPUExecutionProvider"]
    )
    message.accelerators.add(name="npu0", kind="npu")
    decoded = edgeperf_service_pb2.SystemDescriptionResponse.FromString(message.SerializeToString())
    assert decoded.accelerators[0].kind == "npu" and decoded.cpu_cores == 4
