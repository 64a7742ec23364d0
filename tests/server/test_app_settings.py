"""ServerConfig: environment, overrides and loud validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeperf.server.settings import DEFAULT_MAX_MESSAGE_BYTES, ServerConfig, SettingsError, parse_address


def test_defaults():
    config = ServerConfig(model_repository=Path("models"))
    assert (config.listen, config.metrics_listen, config.max_message_bytes) == (
        "127.0.0.1:8001",
        "127.0.0.1:8002",
        DEFAULT_MAX_MESSAGE_BYTES,
    )
    assert config.max_message_mb == 64


def test_from_env_then_overrides():
    env = {
        "EDGEPERF_MODEL_REPOSITORY": "/srv/models",
        "EDGEPERF_LISTEN": "0.0.0.0:9001",
        "EDGEPERF_MAX_MESSAGE_MB": "128",
        "EDGEPERF_GRACE_S": "5",
        "EDGEPERF_WARMUP": "no",
        "EDGEPERF_METRICS_LISTEN": "",
        "OTHER": "x",
    }
    config = ServerConfig.from_env(environ=env, listen="127.0.0.1:0")
    assert config.model_repository == Path("/srv/models")
    assert config.listen == "127.0.0.1:0"
    assert config.max_message_bytes == 128 * 1024 * 1024
    assert (config.grace_s, config.warmup, config.metrics_listen) == (5.0, False, None)


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({}, "no model repository"),
        ({"EDGEPERF_MODEL_REPOSITORY": "m", "EDGEPERF_GRACE_S": "soon"}, "EDGEPERF_GRACE_S: invalid value"),
        ({"EDGEPERF_MODEL_REPOSITORY": "m", "EDGEPERF_WARMUP": "maybe"}, "EDGEPERF_WARMUP"),
        ({"EDGEPERF_MODEL_REPOSITORY": "m", "EDGEPERF_LISTEN": "8001"}, "expected HOST:PORT"),
        ({"EDGEPERF_MODEL_REPOSITORY": "m", "EDGEPERF_MAX_MESSAGE_MB": "0"}, "max-message-mb"),
        ({"EDGEPERF_MODEL_REPOSITORY": "m", "EDGEPERF_TLS_CERT": "c.pem"}, "both --tls-cert and --tls-key"),
        ({"EDGEPERF_MODEL_REPOSITORY": "m", "EDGEPERF_TLS_CLIENT_CA": "ca.pem"}, "needs --tls-cert"),
        ({"EDGEPERF_MODEL_REPOSITORY": "m", "EDGEPERF_AUTH_TOKEN": ""}, "must not be empty"),
        ({"EDGEPERF_MODEL_REPOSITORY": "m", "EDGEPERF_LOG_LEVEL": "LOUD"}, "unknown level"),
    ],
)
def test_bad_settings_are_named(env, match):
    with pytest.raises(SettingsError, match=match):
        ServerConfig.from_env(environ=env)


def test_parse_address():
    assert parse_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_address("[::1]:8001") == ("[::1]", 8001)
    with pytest.raises(SettingsError):
        parse_address("host:99999")


def test_config_is_frozen():
    config = ServerConfig(model_repository=Path("m"))
    with pytest.raises(AttributeError):
        config.listen = "x:1"  # type: ignore[misc]
