"""The exact error message of each kind of bad config.pbtxt / config.yaml: file, model, field, line, reason.

Pinned word for word so that a change of parser shows, in this file's diff, how every message changed.
Range and cross-field checks (the semantic errors) are in test_model_config.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeperf.server.errors import ModelConfigError
from edgeperf.server.model_config import parse_model_config

IO = 'input { name: "x" data_type: TYPE_FP32 dims: [4] } output { name: "y" data_type: TYPE_FP32 dims: [4] }'
YIO = "input: [{name: x, data_type: FP32, dims: [4]}]\noutput: [{name: y, data_type: FP32, dims: [4]}]\n"
TOP_FIELDS = (
    "backend, batch_input, batch_output, cc_model_filenames, default_model_filename, dynamic_batching, "
    "ensemble_scheduling, input, instance_group, max_batch_size, metric_tags, model_metrics, model_operations, "
    "model_repository_agents, model_transaction_policy, model_warmup, name, optimization, output, parameters, "
    "platform, response_cache, runtime, sequence_batching, version_policy"
)
INPUT_FIELDS = "allow_ragged_batch, data_type, dims, format, is_non_linear_format_io, is_shape_tensor, name, optional, reshape"
DATA_TYPES = (
    "TYPE_INVALID, TYPE_BOOL, TYPE_UINT8, TYPE_UINT16, TYPE_UINT32, TYPE_UINT64, TYPE_INT8, TYPE_INT16, "
    "TYPE_INT32, TYPE_INT64, TYPE_FP16, TYPE_FP32, TYPE_FP64, TYPE_STRING, TYPE_BF16"
)

# (id, config.pbtxt text, field, detail): the message is "<file>: model 'resnet': field '<field>': <detail>".
PBTXT: list[tuple[str, str, str, str]] = [
    (
        "unknown-field",
        "max_batch_size: 4\nmax_batch_sise: 4\n" + IO,
        "max_batch_sise",
        f"unknown field (known here: {TOP_FIELDS}) (line 2, column 1)",
    ),
    (
        "unknown-nested-field",
        IO + '\ninput { name: "z"\n  colour: "red" }',
        "input[1].colour",
        f"unknown field (known here: {INPUT_FIELDS}) (line 3, column 3)",
    ),
    (
        "unknown-enum-name",
        'input { name: "x"\n data_type: TYPE_FLOAT dims: [4] }',
        "input[0].data_type",
        f"unknown value 'TYPE_FLOAT'; expected one of {DATA_TYPES} (line 2, column 13)",
    ),
    (
        "unknown-enum-number",
        IO + "\ninstance_group { kind: 7 }",
        "instance_group[0].kind",
        "unknown value 7; expected one of KIND_AUTO, KIND_GPU, KIND_CPU, KIND_MODEL (line 2, column 18)",
    ),
    (
        "string-for-int",
        IO + '\nmax_batch_size: "8"',
        "max_batch_size",
        'Couldn\'t parse integer: "8" (line 2, column 17)',
    ),
    (
        "bare-word-for-string",
        IO + "\nname: resnet",
        "name",
        "Expected string but found: 'resnet' (line 2, column 7)",
    ),
    (
        "int-for-bool",
        IO + "\ninstance_group { passive: 2 }",
        "instance_group[0].passive",
        'Expected "true" or "false". (line 2, column 27)',
    ),
    (
        "duplicate",
        "max_batch_size: 8\nmax_batch_size: 4\n" + IO,
        "max_batch_size",
        'Message type "inference.ModelConfig" should not have multiple "max_batch_size" fields. (line 2, column 17)',
    ),
    (
        "negative-unsigned",
        "max_batch_size: 8\n" + IO + "\ndynamic_batching { max_queue_delay_microseconds: -5 }",
        "dynamic_batching.max_queue_delay_microseconds",
        "Value out of range: -5 (line 3, column 50)",
    ),
    (
        "scalar-for-message",
        IO + "\ndynamic_batching: 4",
        "dynamic_batching",
        'Expected "{". (line 2, column 19)',
    ),
    (
        "message-for-scalar",
        IO + "\nmax_batch_size { }",
        "max_batch_size",
        'Expected ":". (line 2, column 16)',
    ),
    (
        "unsupported",
        IO + "\nsequence_batching { }",
        "sequence_batching",
        "is a Triton field edgeperf does not support (line 2, column 1)",
    ),
    (
        "unsupported-nested",
        IO + "\noptimization { cuda { graph_spec { } } }",
        "optimization.cuda.graph_spec",
        "is a Triton field edgeperf does not support (line 2, column 23)",
    ),
    (
        "inside-unsupported",
        IO + "\nsequence_batching { oldest { } }",
        "sequence_batching",
        "is a Triton field edgeperf does not support (line 2, column 21)",
    ),
    (
        "second-scheduler",
        "max_batch_size: 8\n" + IO + "\ndynamic_batching { } sequence_batching { }",
        "sequence_batching",
        "is a Triton field edgeperf does not support (line 3, column 22)",
    ),
    (
        "two-version-policies",
        IO + "\nversion_policy { all { } latest { } }",
        "version_policy.latest",
        'Field "latest" is specified along with field "all", another member of oneof "policy_choice" for message'
        ' type "inference.ModelVersionPolicy". (line 2, column 26)',
    ),
    (
        "unquoted-map-key",
        IO + '\nparameters { key: a value { string_value: "1" } }',
        "parameters.key",
        "Expected string but found: 'a' (line 2, column 19)",
    ),
    (
        "int32-out-of-range",
        "max_batch_size: 99999999999999999999\n" + IO,
        "max_batch_size",
        "Value out of range: 99999999999999999999 (line 1, column 17)",
    ),
    (
        "number-for-string",
        IO + '\nmetric_tags { key: "team" value: 1 }',
        "metric_tags.value",
        "Expected string but found: '1' (line 2, column 34)",
    ),
    (
        "end-of-file",
        'input { name: "x" ',
        "input[0]",
        'unexpected end of file: Expected "}". (line 1, column 15)',
    ),
    (
        "stray-brace",
        "max_batch_size: 4 }",
        "<syntax>",
        "Expected identifier or number, got }. (line 1, column 19)",
    ),
    ("bad-character", "max_batch_size: @", "max_batch_size", "Couldn't parse integer: @ (line 1, column 17)"),
    (
        "empty-list-element",
        "max_batch_size: 4\n\ninput { name: 'x' dims: [1,, 2] }",
        "input[0].dims",
        "Couldn't parse integer: , (line 3, column 28)",
    ),
]

YAML: list[tuple[str, str, str, str]] = [
    (
        "unknown-field",
        YIO + "max_batch_sise: 4",
        "max_batch_sise",
        f"unknown field (known here: {TOP_FIELDS})",
    ),
    (
        "unknown-nested-field",
        "input: [{name: x, data_type: FP32, dims: [4], colour: red}]",
        "input[0].colour",
        f"unknown field (known here: {INPUT_FIELDS})",
    ),
    (
        "unknown-enum-name",
        "input: [{name: x, data_type: FLOAT, dims: [4]}]",
        "input[0].data_type",
        f"unknown value 'FLOAT'; expected one of {DATA_TYPES}",
    ),
    ("string-for-int", YIO + "max_batch_size: '8'", "max_batch_size", "expected an integer, found '8'"),
    ("bool-for-int", YIO + "max_batch_size: true", "max_batch_size", "expected an integer, found True"),
    ("list-for-scalar", YIO + "max_batch_size: [1, 2]", "max_batch_size", "given more than once"),
    (
        "negative-unsigned",
        YIO + "max_batch_size: 8\ndynamic_batching: {max_queue_delay_microseconds: -5}",
        "dynamic_batching.max_queue_delay_microseconds",
        "Value out of range: -5",
    ),
    ("scalar-for-message", YIO + "dynamic_batching: 4", "dynamic_batching", "expected a message { ... }"),
    (
        "unsupported",
        YIO + "sequence_batching: {}",
        "sequence_batching",
        "is a Triton field edgeperf does not support",
    ),
    (
        "two-version-policies",
        YIO + "version_policy: {all: {}, latest: {}}",
        "version_policy",
        "choose one of latest, all, specific",
    ),
    ("not-a-mapping", "- 1\n- 2", "<yaml>", "the document must be a mapping of ModelConfig fields"),
    ("semantic", YIO + "max_batch_size: -1", "max_batch_size", "must be >= 0, found -1"),
]


def _error(text: str, path: Path) -> ModelConfigError:
    with pytest.raises(ModelConfigError) as info:
        parse_model_config(text, path=path, model_name="resnet")
    return info.value


# Both formats report an error the same way: path, model, field and detail.
FORMATS = [("config.pbtxt", case) for case in PBTXT] + [("config.yaml", case) for case in YAML]


@pytest.mark.parametrize(
    ("file_name", "text", "field", "detail"),
    [(name, *case[1:]) for name, case in FORMATS],
    ids=[f"{name.split('.')[1]}-{case[0]}" for name, case in FORMATS],
)
def test_error_message(file_name: str, text: str, field: str, detail: str) -> None:
    path = Path("/repo/resnet") / file_name
    error = _error(text, path)
    assert (error.field, error.detail) == (field, detail)
    assert str(error) == f"{path}: model 'resnet': field '{field}': {detail}"


def test_yaml_syntax_error_names_the_line() -> None:
    error = _error("max_batch_size: [1, 2", Path("/repo/resnet/config.yaml"))
    assert error.field == "<yaml>"
    assert error.detail.startswith("not valid YAML: while parsing a flow sequence")
    assert "line 1, column 22" in error.detail
