"""config.pbtxt / config.yaml parsing and every kind of bad configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import json_format, text_format

from edgeperf.protos import model_config_pb2 as mc
from edgeperf.server.errors import ModelConfigError
from edgeperf.server.model_config import (
    DynamicBatchingConfig,
    ModelConfig,
    TensorConfig,
    VersionPolicy,
    load_model_config,
    parse_model_config,
)
from edgeperf.server.ort_options import OrtOptions

FULL = """
# A config as Triton users write it.
name: "resnet"
platform: "onnxruntime_onnx"
max_batch_size: 32
version_policy: { latest: { num_versions: 2 } }
input [
  {
    name: "input_tensor:0"
    data_type: TYPE_FP32
    format: FORMAT_NCHW
    dims: [ 3, 224, 224 ]
  }
]
output [
  { name: "ArgMax:0", data_type: TYPE_INT64, dims: [ 1 ], reshape: { shape: [ ] } },
  { name: "probs" data_type: TYPE_FP16 dims: [ -1 ] }
]
dynamic_batching {
  preferred_batch_size: [ 8, 16 ]
  max_queue_delay_microseconds: 500
  default_queue_policy { max_queue_size: 100 default_timeout_microseconds: 20000 allow_timeout_override: true }
}
instance_group [ { count: 2 kind: KIND_GPU gpus: [ 0, 1 ] }, { count: 1 kind: KIND_CPU } ]
optimization {
  graph { level: 1 }
  execution_accelerators {
    gpu_execution_accelerator: [
      { name: "tensorrt" parameters { key: "precision_mode" value: "FP16" } }, { name: "cuda" }
    ]
  }
}
parameters { key: "intra_op_thread_count" value: { string_value: "4" } }
parameters [ { key: "inter_op_thread_count" value: { string_value: "1" } } ]
parameters { key: "execution_mode" value: { string_value: "1" } }
metric_tags { key: "team" value: "edge" }
"""

FULL_YAML = """
name: resnet
platform: onnxruntime_onnx
max_batch_size: 32
version_policy: {latest: {num_versions: 2}}
input:
  - {name: "input_tensor:0", data_type: FP32, format: FORMAT_NCHW, dims: [3, 224, 224]}
output:
  - {name: "ArgMax:0", data_type: TYPE_INT64, dims: [1], reshape: {shape: []}}
  - {name: probs, data_type: FP16, dims: [-1]}
dynamic_batching:
  preferred_batch_size: [8, 16]
  max_queue_delay_microseconds: 500
  default_queue_policy: {max_queue_size: 100, default_timeout_microseconds: 20000, allow_timeout_override: true}
instance_group: [{count: 2, kind: KIND_GPU, gpus: [0, 1]}, {count: 1, kind: KIND_CPU}]
optimization:
  graph: {level: 1}
  execution_accelerators:
    gpu_execution_accelerator: [{name: tensorrt, parameters: {precision_mode: FP16}}, {name: cuda}]
parameters: {intra_op_thread_count: "4", inter_op_thread_count: 1, execution_mode: {string_value: "1"}}
metric_tags: {team: edge}
"""

PBTXT = Path("/repo/resnet/config.pbtxt")


def parse(text: str, path: Path = PBTXT) -> ModelConfig:
    return parse_model_config(text, path=path, model_name=path.parent.name)


def test_full_triton_config_is_read_field_by_field() -> None:
    config = parse_model_config(FULL, path=PBTXT, model_name="resnet")
    assert config.name == "resnet"
    assert config.platform == "onnxruntime_onnx"
    assert config.backend == "onnxruntime"
    assert config.max_batch_size == 32
    assert config.version_policy == VersionPolicy(kind="latest", num_versions=2)
    assert config.inputs == (TensorConfig(name="input_tensor:0", datatype="FP32", shape=(3, 224, 224)),)
    assert config.outputs == (
        TensorConfig(name="ArgMax:0", datatype="INT64", shape=(1,), reshape=()),
        TensorConfig(name="probs", datatype="FP16", shape=(-1,)),
    )
    assert config.outputs[0].model_dims == ()
    assert config.dynamic_batching == DynamicBatchingConfig(
        preferred_batch_sizes=(8, 16),
        max_queue_delay_us=500,
        max_queue_size=100,
        default_timeout_us=20000,
        allow_timeout_override=True,
    )
    assert config.instance_count == 5
    assert config.instance_devices == (0, 0, 1, 1, None)
    assert config.ort == OrtOptions(
        intra_op_threads=4,
        inter_op_threads=1,
        parallel_execution=True,
        graph_optimization_level="extended",
        providers=config.ort.providers,
    )
    on_gpu1 = [(p.name, p.option_dict()) for p in config.ort.providers.for_device(1)]
    assert on_gpu1 == [
        ("TensorrtExecutionProvider", {"trt_fp16_enable": "True", "device_id": "1"}),
        ("CUDAExecutionProvider", {"device_id": "1"}),
        ("CPUExecutionProvider", {}),
    ]
    assert config.ort.execution_providers == ("CPUExecutionProvider",)
    assert config.parameters["intra_op_thread_count"] == "4"
    assert config.source == PBTXT


@pytest.mark.parametrize(("text", "spinning"), [("", False), ("0", False), ("1", True), ("true", True)])
def test_allow_spinning_is_off_unless_the_config_turns_it_on(text: str, spinning: bool) -> None:
    extra = f'\nparameters {{ key: "allow_spinning" value: {{ string_value: "{text}" }} }}' if text else ""
    config = parse_model_config(IO + extra, path=PBTXT, model_name="resnet")
    assert config.ort.allow_spinning is spinning


@pytest.mark.parametrize(("text", "inline"), [("", False), ("0", False), ("1", True), ("true", True)])
def test_inline_execution_is_off_unless_the_config_turns_it_on(text: str, inline: bool) -> None:
    extra = f'\nparameters {{ key: "inline_execution" value: {{ string_value: "{text}" }} }}' if text else ""
    config = parse_model_config(
        "max_batch_size: 4\n" + IO + "\ndynamic_batching { }" + extra, path=PBTXT, model_name="resnet"
    )
    assert config.inline_execution is inline


def test_yaml_gives_the_same_config_as_pbtxt() -> None:
    from_text = parse_model_config(FULL, path=PBTXT, model_name="resnet")
    yaml_path = PBTXT.with_name("config.yaml")
    from_yaml = parse_model_config(FULL_YAML, path=yaml_path, model_name="resnet")
    for name in (
        "name",
        "max_batch_size",
        "inputs",
        "outputs",
        "dynamic_batching",
        "instance_count",
        "instance_devices",
        "ort",
    ):
        assert getattr(from_yaml, name) == getattr(from_text, name), name
    assert from_yaml.version_policy == from_text.version_policy


def test_document_equals_what_protobuf_text_format_parses() -> None:
    # The real protobuf parser on our own model_config.proto is the oracle for the hand-written one.
    config = parse_model_config(FULL, path=PBTXT, model_name="resnet")
    ours = json_format.ParseDict(dict(config.document), mc.ModelConfig())
    reference = text_format.Parse(FULL, mc.ModelConfig())
    reference.backend = "onnxruntime"
    assert ours == reference


def test_text_format_syntax_that_triton_users_write() -> None:
    # Comments, adjacent strings, escapes, hex, `< >` for `{ }`, `;` and `,` separators, one value for a
    # repeated field, a list of messages, an empty list: what the hand-written reader was tested on.
    config = parse(
        """
        # comment
        max_batch_size: 0x10;  # hex
        input < name: 'in' "put" data_type: TYPE_FP32, dims: 4 >
        output [ { name: "o\\"ut" data_type: 11 dims: [ 2, -1 ] } ]
        instance_group [ ]
        """
    )
    assert config.max_batch_size == 16
    assert config.inputs == (TensorConfig(name="input", datatype="FP32", shape=(4,)),)
    assert config.outputs == (TensorConfig(name='o"ut', datatype="FP32", shape=(2, -1)),)
    assert config.instance_count == 1


def test_defaults_of_a_minimal_config() -> None:
    config = parse(
        """input { name: "x" data_type: TYPE_INT64 dims: 4 }
           output { name: "y" data_type: TYPE_STRING dims: [-1] }"""
    )
    assert config.name == "resnet"
    assert config.max_batch_size == 0
    assert config.dynamic_batching is None
    assert config.instance_count == 1
    assert config.version_policy == VersionPolicy()
    assert config.ort.execution_providers == ("CPUExecutionProvider",)
    assert config.outputs[0].datatype == "BYTES"
    assert config.document["platform"] == "onnxruntime_onnx"


def test_execution_providers_parameter_keeps_order_and_ends_with_cpu() -> None:
    config = parse(
        """input { name: "x" data_type: TYPE_FP32 dims: 4 }
           output { name: "y" data_type: TYPE_FP32 dims: 4 }
           parameters { key: "execution_providers" value { string_value: "CPUExecutionProvider, openvino" } }"""
    )
    assert config.ort.execution_providers == ("OpenVINOExecutionProvider", "CPUExecutionProvider")


def test_priority_levels() -> None:
    config = parse(
        "max_batch_size: 8\n" + IO + "\ndynamic_batching { priority_levels: 2 default_priority_level: 2 }"
    )
    assert config.dynamic_batching is not None
    assert (config.dynamic_batching.priority_levels, config.dynamic_batching.default_priority_level) == (2, 2)


def test_pipeline_platform_needs_its_factory() -> None:
    config = parse(
        """platform: "edgeperf_pipeline"
           input { name: "x" data_type: TYPE_FP32 dims: 4 }
           output { name: "y" data_type: TYPE_FP32 dims: 4 }
           parameters { key: "pipeline" value { string_value: "pkg.mod:build" } }"""
    )
    assert config.platform == "edgeperf_pipeline"
    assert config.backend == "edgeperf"
    assert config.parameters["pipeline"] == "pkg.mod:build"


IO = 'input { name: "x" data_type: TYPE_FP32 dims: [4] } output { name: "y" data_type: TYPE_FP32 dims: [4] }'

BAD: list[tuple[str, str, str]] = [
    ("max_batch_size: -1\n" + IO, "max_batch_size", "must be >= 0"),
    ("max_batch_sise: 4\n" + IO, "max_batch_sise", "unknown field"),
    (
        'input { name: "x" data_type: TYPE_FLOAT dims: [4] }',
        "input[0].data_type",
        "unknown value 'TYPE_FLOAT'",
    ),
    (
        'input { name: "x" data_type: TYPE_BF16 dims: [4] } output { name: "y" data_type: TYPE_FP32 dims: [4] }',
        "input[x].data_type",
        "not a supported datatype",
    ),
    (
        'input { name: "x" data_type: TYPE_FP32 } output { name: "y" data_type: TYPE_FP32 dims: [4] }',
        "input[x].dims",
        "missing",
    ),
    (
        "max_batch_size: 4\n" + IO + "\ndynamic_batching { preferred_batch_size: [ 2, 8 ] }",
        "dynamic_batching.preferred_batch_size",
        "8 must be between 1 and max_batch_size (4)",
    ),
    (IO + "\ndynamic_batching { }", "dynamic_batching", "needs max_batch_size > 0"),
    ('name: "other"\n' + IO, "name", "must equal the model folder name 'resnet'"),
    ('output { name: "y" data_type: TYPE_FP32 dims: [4] }', "input", "at least one input"),
    ('input { name: "x" data_type: TYPE_FP32 dims: [4] }', "output", "at least one output"),
    (IO + '\ninput { name: "x" data_type: TYPE_FP32 dims: [4] }', "input[1].name", "duplicate"),
    (
        'input { name: "x" data_type: TYPE_FP32 dims: [0] } output { name: "y" data_type: TYPE_FP32 dims: [4] }',
        "input[x].dims",
        "must be > 0 or -1",
    ),
    ('max_batch_size: "8"\n' + IO, "max_batch_size", "Couldn't parse integer"),
    (
        "max_batch_size: 8 max_batch_size: 4\n" + IO,
        "max_batch_size",
        'should not have multiple "max_batch_size" fields',
    ),
    (
        "max_batch_size: 8\n" + IO + "\n dynamic_batching { max_queue_delay_microseconds: -5 }",
        "dynamic_batching.max_queue_delay_microseconds",
        "Value out of range: -5",
    ),
    (
        "max_batch_size: 8\n" + IO + "\ndynamic_batching { default_queue_policy { timeout_action: DELAY } }",
        "dynamic_batching.default_queue_policy.timeout_action",
        "only REJECT",
    ),
    (IO + "\nsequence_batching { }", "sequence_batching", "does not support"),
    (
        "max_batch_size: 8\n" + IO + "\ndynamic_batching { priority_levels: 3 default_priority_level: 4 }",
        "dynamic_batching.default_priority_level",
        "must be between 1 and priority_levels (3)",
    ),
    (
        "max_batch_size: 8\n" + IO + "\ndynamic_batching { priority_levels: 3 }",
        "dynamic_batching.default_priority_level",
        "must be between 1 and priority_levels (3)",
    ),
    (
        "max_batch_size: 8\n" + IO + "\ndynamic_batching { priority_queue_policy { } }",
        "dynamic_batching.priority_queue_policy",
        "does not support",
    ),
    (IO + "\ninstance_group [ { count: 0 } ]", "instance_group[0].count", "must be >= 1"),
    (IO + "\noptimization { graph { level: 3 } }", "optimization.graph.level", "expected -1, 0, 1 or 2"),
    (
        IO + '\noptimization { execution_accelerators { gpu_execution_accelerator: [ { name: "warp" } ] } }',
        "optimization.execution_accelerators.gpu_execution_accelerator[0]",
        "unknown accelerator 'warp'",
    ),
    (
        IO + '\nparameters { key: "intra_op_thread_count" value: { string_value: "many" } }',
        "parameters.intra_op_thread_count",
        "expected an integer",
    ),
    (
        IO + '\nparameters { key: "inline_execution" value: { string_value: "yes please" } }',
        "parameters.inline_execution",
        "expected 0 or 1, found 'yes please'",
    ),
    (
        IO
        + '\ninstance_group [ { count: 2 } ]\nparameters { key: "inline_execution" value: { string_value: "1" } }',
        "parameters.inline_execution",
        "needs instance_group count 1, found 2",
    ),
    (
        "max_batch_size: 8\n"
        + IO
        + "\ndynamic_batching { max_queue_delay_microseconds: 100 }"
        + '\nparameters { key: "inline_execution" value: { string_value: "1" } }',
        "parameters.inline_execution",
        "cannot be combined with dynamic_batching.max_queue_delay_microseconds (100); set it to 0",
    ),
    (
        IO + '\nparameters { key: "allow_spinning" value: { string_value: "sometimes" } }',
        "parameters.allow_spinning",
        "expected 0 or 1, found 'sometimes'",
    ),
    ('platform: "edgeperf_pipeline"\n' + IO, "parameters.pipeline", "needs 'module:factory'"),
    (
        IO + '\nparameters { key: "pipeline" value: { string_value: "a:b" } }',
        "parameters.pipeline",
        "only allowed with platform edgeperf_pipeline",
    ),
    ('platform: "tensorflow_savedmodel"\n' + IO, "platform", "unknown platform"),
    ('backend: "pytorch"\n' + IO, "backend", "unknown backend"),
    (
        'input { name: "x" data_type: TYPE_FP32 dims: [4] reshape: { shape: [3] } }'
        ' output { name: "y" data_type: TYPE_FP32 dims: [4] }',
        "input[x].reshape",
        "does not hold",
    ),
    (IO + "\nversion_policy { specific { } }", "version_policy.specific.versions", "one or more"),
    (IO + "\nversion_policy { latest { num_versions: 0 } }", "version_policy.latest.num_versions", ">= 1"),
    (
        IO + "\nmodel_transaction_policy { decoupled: true }",
        "model_transaction_policy.decoupled",
        "not supported",
    ),
    (IO + "\ndynamic_batching: 4", "dynamic_batching", 'Expected "{"'),
    ('input { name: "x" ', "input[0]", "unexpected end of file"),
    ("max_batch_size: 4 }", "<syntax>", "Expected identifier or number, got }"),
    ("max_batch_size: @", "max_batch_size", "Couldn't parse integer: @"),
]


@pytest.mark.parametrize(("text", "field", "reason"), BAD, ids=[f"{i}-{b[1]}" for i, b in enumerate(BAD)])
def test_bad_config_names_file_model_and_field(text: str, field: str, reason: str) -> None:
    with pytest.raises(ModelConfigError) as info:
        parse(text)
    message = str(info.value)
    assert info.value.field == field
    assert str(PBTXT) in message
    assert "model 'resnet'" in message
    assert f"field '{field}'" in message
    assert reason in message


def test_syntax_errors_carry_the_line() -> None:
    with pytest.raises(ModelConfigError, match="line 3"):
        parse("max_batch_size: 4\n\ninput { name: 'x' dims: [1,, 2] }")


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ("max_batch_size: [1, 2", "<yaml>", "not valid YAML"),
        ("- 1\n- 2", "<yaml>", "must be a mapping"),
        (
            "max_batch_size: 4\ninput: [{name: x, data_type: FP32, dims: [4], colour: red}]",
            "input[0].colour",
            "unknown",
        ),
        ("max_batch_size: true", "max_batch_size", "expected an integer"),
    ],
)
def test_bad_yaml_config(text: str, field: str, reason: str) -> None:
    with pytest.raises(ModelConfigError) as info:
        parse(text, PBTXT.with_name("config.yaml"))
    assert info.value.field == field
    assert reason in str(info.value)


def test_load_model_config_needs_exactly_one_file(tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    with pytest.raises(ModelConfigError, match=r"no config\.pbtxt or config\.yaml"):
        load_model_config(model_dir)
    (model_dir / "config.pbtxt").write_text(IO)
    assert load_model_config(model_dir).name == "m"
    (model_dir / "config.yaml").write_text("max_batch_size: 0\n")
    with pytest.raises(ModelConfigError, match="both exist"):
        load_model_config(model_dir)
