"""The conf parser reads LoadGen's format with LoadGen's rules, and rejects every line LoadGen misreads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from edgeperf.client.errors import EdgeperfClientError
from edgeperf.client.plan.conf import (
    ConfigError,
    ConfigSource,
    load_test_settings,
    preset_path,
    resolve_test_settings,
)
from edgeperf.client.plan.settings import Rules, Scenario, TestMode

EDGE_MODELS = ("resnet50", "retinanet", "3d-unet", "rnnt", "bert")


Writer = Callable[..., Path]


@pytest.fixture
def write(tmp_path: Path) -> Writer:
    def _write(text: str, name: str = "user.conf") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write


@pytest.mark.parametrize("rules", list(Rules))
@pytest.mark.parametrize("scenario", list(Scenario))
def test_presets_parse_strictly_for_every_edge_model(rules: Rules, scenario: Scenario) -> None:
    for model in EDGE_MODELS:
        resolved = resolve_test_settings(model, scenario, rules=rules)
        assert resolved.warnings == ()
        assert resolved.settings.scenario is scenario and resolved.settings.rules is rules


def test_v2_1_preset_values() -> None:
    ss = load_test_settings("resnet50", Scenario.SINGLE_STREAM)
    assert (ss.min_duration_ms, ss.min_query_count, ss.performance_sample_count_override) == (
        600_000,
        1024,
        1024,
    )
    assert (ss.qsl_rng_seed, ss.sample_index_rng_seed, ss.schedule_rng_seed) == (
        14284205019438841327,
        4163916728725999944,
        299063814864929621,
    )
    assert ss.single_stream_expected_latency_ns == 10_000_000.0
    assert ss.single_stream_target_latency_percentile == 0.9
    ms = load_test_settings("retinanet", Scenario.MULTI_STREAM)
    assert (
        ms.min_query_count,
        ms.multi_stream_expected_latency_ns,
        ms.performance_sample_count_override,
    ) == (
        270336,
        528_000_000.0,
        64,
    )
    server = load_test_settings("bert", Scenario.SERVER)
    assert (server.server_target_latency_ns, server.min_query_count) == (130_000_000, 270336)
    offline = load_test_settings("rnnt", Scenario.OFFLINE)
    assert (offline.min_query_count, offline.performance_sample_count_override) == (24576, 2513)
    unet = load_test_settings("3d-unet", Scenario.SINGLE_STREAM)
    assert unet.sample_concatenate_permutation and unet.performance_sample_count_override is None


def test_current_preset_values() -> None:
    ss = load_test_settings("resnet50", Scenario.SINGLE_STREAM, rules="current")
    assert (ss.min_query_count, ss.qsl_rng_seed, ss.test05_schedule_rng_seed) == (
        100,
        2085463073848966840,
        15816800565822761601,
    )
    assert load_test_settings("bert", Scenario.OFFLINE, rules="current").min_query_count == 10833
    ms = load_test_settings("resnet50", Scenario.MULTI_STREAM, rules="current")
    assert ms.min_query_count == 662


def test_lookup_order_is_model_scenario_then_wildcards(write: Writer) -> None:
    path = write(
        "*.*.min_query_count = 1\n"
        "resnet50.*.min_query_count = 2\n"
        "*.Server.min_query_count = 3\n"
        "resnet50.Server.min_query_count = 4\n"
    )

    def count(model: str, scenario: Scenario) -> int:
        return load_test_settings(model, scenario, user_conf=path).min_query_count

    assert count("resnet50", Scenario.SERVER) == 4
    assert count("bert", Scenario.SERVER) == 3
    assert count("resnet50", Scenario.OFFLINE) == 2
    assert count("bert", Scenario.OFFLINE) == 1


def test_scenario_specific_keys_use_their_fixed_scenario(write: Writer) -> None:
    path = write(
        "*.Server.target_latency = 7\n*.Server.target_qps = 55.5\n*.*.target_latency_percentile = 95\n"
    )
    s = load_test_settings("mymodel", Scenario.OFFLINE, user_conf=path)
    assert (s.server_target_latency_ns, s.server_target_qps) == (7_000_000, 55.5)
    assert s.single_stream_target_latency_percentile == s.server_target_latency_percentile == 95 * 0.01


def test_units_and_c_number_formats(write: Writer) -> None:
    path = write(
        "*.*.min_query_count = 0x10\n"
        "*.*.max_query_count = 010\n"
        "*.Server.target_qps = 010\n"
        "*.Offline.target_qps = 0x1p4\n"
        "*.SingleStream.target_latency = 0.5\n"
        "*.MultiStream.target_latency = 1e1\n"
        "*.*.accuracy_log_probability = 12.5\n"
        "*.*.max_duration = 0\n"
        "*.Server.max_async_queries = 0\n"
    )
    s = load_test_settings("m", Scenario.SERVER, user_conf=path)
    assert (s.min_query_count, s.max_query_count) == (16, 8)  # strtoull base 0: hex, octal
    assert (s.server_target_qps, s.offline_expected_qps) == (10.0, 16.0)  # strtod: decimal, hex float
    assert s.single_stream_expected_latency_ns == 500_000.0
    assert s.multi_stream_expected_latency_ns == 10_000_000.0
    assert s.accuracy_log_probability == 12.5 * 0.01
    assert (s.max_duration_ms, s.server_max_async_queries) == (None, None)  # 0 means unlimited


def test_user_conf_overrides_the_preset_and_mode_argument_wins(write: Writer) -> None:
    path = write("*.*.min_duration = 1500\n*.*.mode = 1\n")
    s = load_test_settings("resnet50", Scenario.SINGLE_STREAM, user_conf=path)
    assert (s.min_duration_ms, s.min_query_count, s.mode) == (1500, 1024, TestMode.ACCURACY_ONLY)
    forced = load_test_settings(
        "resnet50", Scenario.SINGLE_STREAM, user_conf=path, mode=TestMode.SUBMISSION_RUN
    )
    assert forced.mode is TestMode.SUBMISSION_RUN


def test_sources_say_where_each_value_came_from(write: Writer) -> None:
    path = write("# short runs\n*.*.min_duration = 1500\n")
    resolved = resolve_test_settings(
        "resnet50", Scenario.SINGLE_STREAM, user_conf=path, mode=TestMode.ACCURACY_ONLY
    )
    assert resolved.sources["min_duration_ms"] == ConfigSource(str(path), 2, "*.*.min_duration", "1500")
    preset_source = resolved.sources["min_query_count"]
    assert isinstance(preset_source, ConfigSource) and preset_source.path == str(preset_path("v2.1"))
    assert resolved.sources["mode"] == "argument"
    lines = list(resolved.explain())
    assert f"min_duration_ms = 1500  <- {path}:2 (*.*.min_duration = 1500)" in lines
    assert "max_duration_ms = None  <- default" in lines


def test_v2_1_user_conf_may_set_seeds_current_may_not(write: Writer) -> None:
    path = write("*.*.qsl_rng_seed = 7\n")
    assert load_test_settings("resnet50", Scenario.OFFLINE, user_conf=path).qsl_rng_seed == 7
    with pytest.raises(ConfigError, match=r"only from its built-in mlperf\.conf") as info:
        load_test_settings("resnet50", Scenario.OFFLINE, rules="current", user_conf=path)
    assert (info.value.line_no, info.value.key) == (1, "*.*.qsl_rng_seed")


def test_audit_config_is_read_last_with_model_wildcard(write: Writer) -> None:
    user = write("*.*.min_duration = 1500\n")
    audit = write(
        "*.*.mode = 2\n*.*.performance_issue_same = 1\nresnet50.*.min_duration = 9\n", "audit.config"
    )
    s = resolve_test_settings(
        "resnet50", Scenario.SINGLE_STREAM, rules="current", user_conf=user, audit_conf=audit
    ).settings
    assert (s.mode, s.performance_issue_same, s.min_duration_ms) == (TestMode.PERFORMANCE_ONLY, True, 1500)


def test_crlf_lines_and_blank_lines_and_comments(write: Writer) -> None:
    path = write("# comment\r\n\r\n   # indented comment\r\n*.*.min_duration = 1500\r\n")
    assert load_test_settings("m", Scenario.OFFLINE, user_conf=path).min_duration_ms == 1500


def test_token_keys_need_their_flag_at_current(write: Writer) -> None:
    ok = write("*.*.use_token_latencies = 1\n*.Server.ttft_latency = 500\n", "ok.conf")
    s = load_test_settings("m", Scenario.SERVER, rules="current", user_conf=ok)
    assert (s.use_token_latencies, s.server_ttft_latency_ns) == (True, 500_000_000)
    preset = load_test_settings("llama2-70b", Scenario.SERVER, rules="current")
    assert (preset.server_ttft_latency_ns, preset.server_tpot_latency_ns) == (2_000_000_000, 200_000_000)


# One bad line per error case: (line, strict reason, raises even with strict=False)
BAD_LINES = [
    ("*.*.min_duration=1500", "needs spaces around '='", False),
    ("*.*.min_duration", "key without '= value'", False),
    ("*.*.min_duration =", "missing value", False),
    ("#comment", "'#' must be followed by a space", False),
    ("#comment more words", "LoadGen rejects the file", True),
    ("*.*.min_duration # 1500", "'#' where '=' belongs", False),
    ("*.*.min_duration =1500", "expected 'key = value'", True),
    ("*.*.min_duration= 1500", "expected 'key = value'", True),
    ("*.*.min_duration = 1500 # ms", "trailing comment", True),
    ("*.*.min_duration = 15s", "not a number", True),
    ("*.*.min_duration = 1000 2000", "2 values; LoadGen keeps the last, 2000", False),
    ("min_duration = 1500", "must be 'model.scenario.name'", False),
    ("*.Singlestream.min_duration = 1500", "unknown scenario 'Singlestream'", False),
    ("*.*.min_durations = 1500", "unknown key 'min_durations'", False),
    ("*.Offline.target_latency_percentile = 90", "never for Offline", False),
    ("*.Server.target_duration = 0", "unknown key 'target_duration'", False),
    ("*.*.use_token_latencies = 1", "not a key of LoadGen v2.1", False),
    ("*.*.min_duration = 1.9e3", "LoadGen reads it as 1", False),
    ("*.Server.target_latency = 15.5", "LoadGen reads it as 15", False),
    ("*.*.min_duration = 08", "LoadGen reads it as 0", False),
    ("*.*.max_query_count = -1", "outside uint64", False),
    ("*.*.mode = 4", "mode must be 0-3", False),
    ("*.*.performance_issue_unique = 2", "a flag is 0 or 1", False),
    ("*.SingleStream.target_latency_percentile = 0", "out of range", True),
    ("*.Server.target_qps = 0", "out of range", True),
    ("*.Offline.target_qps = inf", "not a finite number", True),
    ("*.MultiStream.samples_per_query = 0", "at least 1", True),
]


@pytest.mark.parametrize(("line", "reason", "fatal"), BAD_LINES, ids=[b[0] for b in BAD_LINES])
def test_each_bad_line_is_an_error_naming_file_line_and_key(
    write: Writer, line: str, reason: str, fatal: bool
) -> None:
    path = write(f"# header\n*.*.min_query_count = 5\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_test_settings("resnet50", Scenario.SERVER, user_conf=path)
    error = info.value
    assert issubclass(type(error), EdgeperfClientError)
    assert reason in error.reason
    assert (error.path, error.line_no) == (str(path), 3)
    assert str(error).startswith(f"{path}:3: ")
    if fatal:
        with pytest.raises(ConfigError):
            resolve_test_settings("resnet50", Scenario.SERVER, user_conf=path, strict=False)
    else:
        lenient = resolve_test_settings("resnet50", Scenario.SERVER, user_conf=path, strict=False)
        assert any(reason in w for w in lenient.warnings)
        assert lenient.settings.min_query_count == 5


def test_duplicate_keys_and_flagless_token_keys_are_errors(write: Writer) -> None:
    dup = write("*.*.min_duration = 1\n*.*.min_duration = 2\n", "dup.conf")
    with pytest.raises(ConfigError, match="repeats line 1") as info:
        load_test_settings("m", Scenario.OFFLINE, user_conf=dup)
    assert info.value.line_no == 2
    token = write("*.Server.ttft_latency = 100\n", "token.conf")
    with pytest.raises(ConfigError, match="only when use_token_latencies = 1"):
        load_test_settings("m", Scenario.SERVER, rules="current", user_conf=token)


def test_lenient_mode_reads_lines_as_loadgen_does(write: Writer) -> None:
    path = write(
        "*.*.min_duration = 1.9e3\n"
        "*.*.min_query_count = 10 20\n"
        "*.*.max_query_count=99\n"
        "*.*.performance_issue_unique = 2\n"
        "*.*.sample_concatenate_permutation = 2\n"
        "*.*.max_duration = 1\n*.*.max_duration = 2\n"
    )
    resolved = resolve_test_settings("m", Scenario.SINGLE_STREAM, user_conf=path, strict=False)
    s = resolved.settings
    assert (s.min_duration_ms, s.min_query_count, s.max_query_count) == (1, 20, None)
    assert (s.performance_issue_unique, s.sample_concatenate_permutation, s.max_duration_ms) == (
        True,
        False,
        2,
    )
    assert len(resolved.warnings) == 6


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file") as info:
        load_test_settings("m", Scenario.OFFLINE, user_conf=tmp_path / "absent.conf")
    assert info.value.line_no == 0 and info.value.key is None


def test_shipped_example_user_confs_parse() -> None:
    folder = preset_path("v2.1").parent
    for name in ("user.conf", "user-short.conf"):
        for rules in Rules:
            for scenario in Scenario:
                resolve_test_settings("resnet50", scenario, rules=rules, user_conf=folder / name)
    short = load_test_settings("resnet50", Scenario.SINGLE_STREAM, user_conf=folder / "user-short.conf")
    assert (short.min_duration_ms, short.min_query_count) == (1500, 64)
