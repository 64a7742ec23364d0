"""Property tests: the model config parser and the user.conf parser take any text to a result or a named error."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from edgeperf.client.plan.conf import ConfigError, resolve_test_settings
from edgeperf.client.plan.settings import Scenario
from edgeperf.server.errors import ModelConfigError
from edgeperf.server.model_config import parse_model_config

# NOTE: a dev dependency (`make setup`); CI always has it, a checkout made before it was added is told why.
pytest.importorskip("hypothesis", reason="hypothesis is not installed: run `make setup`")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BOUNDED = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Fragments of config.pbtxt, put together in any order: the parser sees both valid and broken files.
PBTXT_PIECES = [
    'name: "tiny"', 'platform: "onnxruntime_onnx"', "max_batch_size: 8", "max_batch_size: -1",
    "max_batch_size: 99999999999999999999", 'input [{ name: "INPUT0" data_type: TYPE_FP32 dims: [16] }]',
    'output [{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [-1, 0] }]', "dynamic_batching { }",
    "dynamic_batching { preferred_batch_size: [4, 0] max_queue_delay_microseconds: -5 }",
    "instance_group [{ count: 0 kind: KIND_GPU }]", 'parameters { key: "x" value: { string_value: "1" } }',
    "{", "}", "[", "]", ":", '"unterminated', "# comment", "1e999", "nan", "-", "\\x00", "\u00e9",
]  # fmt: skip
YAML_PIECES = [
    "name: tiny", "platform: onnxruntime_onnx", "max_batch_size: 8", "input:", "  - name: INPUT0",
    "    data_type: TYPE_FP32", "    dims: [16]", "output: []", "dynamic_batching: {}", "- x", ": :", "[",
    "{a: 1", "max_batch_size: .inf", "&a x", "*b", "!!python/object:os.system x", "\t",
]  # fmt: skip

CONF_KEYS = [
    "*.Server.target_qps", "*.*.min_duration", "tiny.SingleStream.target_latency", "*.Offline.min_query_count",
    "*.*.mode", "*.Server.target_latency_percentile", "*.*.performance_sample_count_override", "bogus",
    "*.Nope.min_duration", "*.*.qsl_rng_seed", "*.MultiStream.samples_per_query",
]  # fmt: skip
CONF_VALUES = ["1", "0", "-1", "0x10", "1e3", "nan", "inf", "18446744073709551616", "", "abc", "99.9", "2"]


@BOUNDED
@given(pieces=st.lists(st.sampled_from(PBTXT_PIECES) | st.text(max_size=12), max_size=10))
def test_pbtxt_config_gives_a_config_or_a_named_error(pieces: list[str]) -> None:
    text = "\n".join(pieces)
    try:
        config = parse_model_config(text, path=Path("m/config.pbtxt"), model_name="tiny")
    except ModelConfigError as exc:
        assert "config.pbtxt" in str(exc)
    else:
        assert config.name == "tiny"


@BOUNDED
@given(pieces=st.lists(st.sampled_from(YAML_PIECES) | st.text(max_size=12), max_size=10))
def test_yaml_config_gives_a_config_or_a_named_error(pieces: list[str]) -> None:
    try:
        parse_model_config("\n".join(pieces), path=Path("m/config.yaml"), model_name="tiny")
    except ModelConfigError as exc:
        assert "config.yaml" in str(exc)


conf_lines = st.one_of(
    st.builds(lambda k, v, sep: f"{k}{sep}{v}", st.sampled_from(CONF_KEYS), st.sampled_from(CONF_VALUES),
              st.sampled_from([" = ", "=", " ", " = = ", " # "])),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20),
)  # fmt: skip


@BOUNDED
@given(lines=st.lists(conf_lines, max_size=8), scenario=st.sampled_from(list(Scenario)))
def test_user_conf_gives_settings_or_an_error_naming_file_and_line(
    lines: list[str], scenario: Scenario
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "user.conf"
        path.write_text("\n".join(lines), encoding="utf-8")
        try:
            resolved = resolve_test_settings("tiny", scenario, user_conf=path)
        except ConfigError as exc:
            assert exc.path == str(path) and exc.line_no >= 0 and exc.reason
        else:
            assert resolved.settings.scenario is scenario
