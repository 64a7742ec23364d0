"""Server settings: one frozen ServerConfig, from EDGEPERF_* environment variables and the command line.

The command line (server/cli.py) starts from `ServerConfig.from_env()` and replaces what it is given,
so a flag beats the environment, which beats the defaults. Bad values raise SettingsError naming the
setting.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

from edgeperf.protos.auth import TokenFileError, read_token_file
from edgeperf.server.errors import EdgeperfServerError
from edgeperf.server.power.registry import parse_power_spec

__all__ = [
    "DEFAULT_MAX_INFLIGHT",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "ServerConfig",
    "SettingsError",
    "environment_variables",
    "intra_op_share",
    "parse_address",
]

DEFAULT_MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024
"""gRPC's own default (4 MiB) is too small for image batches and 3D volumes."""

DEFAULT_MAX_QUEUED_BYTES: Final = 512 * 1024 * 1024
"""Room for 26 ResNet50 batch-32 requests: enough to keep a few instances busy, far below device RAM."""

DEFAULT_MAX_INFLIGHT: Final = 2048
"""Twice the client's default Server-scenario window (1024 outstanding queries), so one benchmark
client does not meet it; the byte budget still caps the bytes those requests hold."""

_MIB: Final = 1024 * 1024


class SettingsError(EdgeperfServerError, ValueError):
    """A server setting is invalid; the message names the setting (flag and environment variable)."""


def parse_address(address: str, *, setting: str = "listen") -> tuple[str, int]:
    """Split `HOST:PORT` (`[::1]:8001` for IPv6) into host and port; port 0 lets the OS choose.

    Raises:
        SettingsError: not of the form HOST:PORT with a port in 0..65535.
    """
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise SettingsError(f"{setting}: expected HOST:PORT (e.g. 127.0.0.1:8001), got {address!r}")
    return host, int(port_text)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """Everything `edgeperf-server serve` needs."""

    model_repository: Path
    """Folder in Triton's layout: `<model>/config.pbtxt` (or config.yaml) and `<model>/<version>/`."""
    listen: str = "127.0.0.1:8001"
    """gRPC address HOST:PORT; port 0 picks a free port (printed in the ready log line)."""
    metrics_listen: str | None = "127.0.0.1:8002"
    """Prometheus `/metrics` address HOST:PORT; None serves no metrics."""
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    """Largest gRPC message received or sent; larger ones fail with RESOURCE_EXHAUSTED."""
    max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES
    """Input bytes all requests in the server may hold together (queued, batching or running); a request
    that would exceed it answers UNAVAILABLE at once (a larger one alone is still served)."""
    max_inflight: int = DEFAULT_MAX_INFLIGHT
    """Inference RPCs (ModelInfer calls, ModelStreamInfer streams) the server holds at once; more
    answer RESOURCE_EXHAUSTED at once and are counted (`edgeperf_requests_refused_total`)."""
    grace_s: float = 30.0
    """On SIGTERM/SIGINT: how long in-flight requests may take to finish before the server stops."""
    drain_delay_s: float = 0.0
    """On SIGTERM/SIGINT: how long to keep serving after health turns NOT_SERVING, so that load
    balancers stop routing here before new requests are refused."""
    tls_cert: Path | None = None
    """PEM server certificate chain; with tls_key enables TLS."""
    tls_key: Path | None = None
    """PEM private key of tls_cert."""
    tls_client_ca: Path | None = None
    """PEM CA bundle; when set, clients must present a certificate it signed (mTLS)."""
    auth_token: str | None = None
    """When set, every RPC except health and reflection needs `authorization: Bearer <token>`."""
    warmup: bool = True
    """Run every model once per batch size at load so first requests are not slow."""
    power: str = "auto"
    """Power sources (`--power`): "auto" opens what the machine has, "none" measures nothing, else a list
    such as "rapl,nvml" or "scpi=TCPIP::10.0.0.5::INSTR" (grammar in edgeperf.server.power.registry)."""
    log_level: str = "INFO"
    log_json: bool = True
    """Structured (one JSON object per line) logs on stderr; False writes plain text."""
    workers: int = 1
    """Server processes sharing the port (SO_REUSEPORT), each with its own model sessions and a share of
    the ONNX Runtime intra-op threads; statistics and metrics are summed (server/workers.py)."""

    def __post_init__(self) -> None:
        parse_address(self.listen, setting="listen (--listen / EDGEPERF_LISTEN)")
        if self.metrics_listen is not None:
            parse_address(
                self.metrics_listen, setting="metrics_listen (--metrics-listen / EDGEPERF_METRICS_LISTEN)"
            )
        if self.max_message_bytes <= 0 or self.max_message_bytes > 2**31 - 1:
            raise SettingsError(
                "max_message_bytes (--max-message-mb / EDGEPERF_MAX_MESSAGE_MB) must be in 1 byte .. 2 GiB, "
                f"got {self.max_message_bytes}"
            )
        if self.max_queued_bytes <= 0:
            raise SettingsError(
                f"max_queued_bytes (--max-queued-mb / EDGEPERF_MAX_QUEUED_MB) must be > 0, got {self.max_queued_bytes}"
            )
        if not 1 <= self.max_inflight <= 1_000_000:
            raise SettingsError(
                f"max_inflight (--max-inflight / EDGEPERF_MAX_INFLIGHT) must be 1 .. 1000000, got {self.max_inflight}"
            )
        for name, flag in (("grace_s", "--grace-s"), ("drain_delay_s", "--drain-delay-s")):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise SettingsError(
                    f"{name} ({flag} / EDGEPERF_{name.upper()}) must be a finite number of seconds >= 0, "
                    f"got {value}"
                )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise SettingsError(
                "TLS needs both --tls-cert and --tls-key (EDGEPERF_TLS_CERT, EDGEPERF_TLS_KEY)"
            )
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise SettingsError("--tls-client-ca (mTLS) needs --tls-cert and --tls-key")
        if self.auth_token == "":
            raise SettingsError("--auth-token / EDGEPERF_AUTH_TOKEN must not be empty")
        if not 1 <= self.workers <= 1024:
            raise SettingsError(
                f"workers (--workers / EDGEPERF_WORKERS) must be 1 .. 1024, got {self.workers}"
            )
        try:
            parse_power_spec(self.power)
        except EdgeperfServerError as err:
            raise SettingsError(f"power (--power / EDGEPERF_POWER): {err}") from None
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise SettingsError(
                f"log_level (--log-level / EDGEPERF_LOG_LEVEL): unknown level {self.log_level!r}"
            )

    @property
    def max_message_mb(self) -> float:
        return self.max_message_bytes / _MIB

    @classmethod
    def from_env(
        cls, *, prefix: str = "EDGEPERF_", environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> ServerConfig:
        """Build from `<prefix><FIELD>` variables (EDGEPERF_LISTEN, EDGEPERF_MAX_MESSAGE_MB, ...), then `overrides`.

        `max_message_bytes` is read as EDGEPERF_MAX_MESSAGE_MB and `max_queued_bytes` as
        EDGEPERF_MAX_QUEUED_MB (mebibytes); booleans accept
        1/0/true/false/yes/no; an empty EDGEPERF_METRICS_LISTEN disables metrics. The token may come
        from a file instead (`auth_token_file=` or EDGEPERF_AUTH_TOKEN_FILE), never from both.

        Raises:
            SettingsError: a variable with a bad value, or a missing model repository.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        token_file = overrides.pop("auth_token_file", None)
        if token_file is None and env.get(prefix + "AUTH_TOKEN_FILE"):
            token_file = Path(env[prefix + "AUTH_TOKEN_FILE"])
        for item in fields(cls):
            name = _variable(item.name)
            raw = env.get(prefix + name)
            if raw is None:
                continue
            values[item.name] = _convert(item.name, raw, prefix + name)
        values.update({key: value for key, value in overrides.items()})
        if token_file is not None:
            if values.get("auth_token") is not None:
                raise SettingsError(
                    f"give the token once: --auth-token ({prefix}AUTH_TOKEN) or --auth-token-file "
                    f"({prefix}AUTH_TOKEN_FILE), not both"
                )
            try:
                values["auth_token"] = read_token_file(
                    Path(token_file), f"--auth-token-file / {prefix}AUTH_TOKEN_FILE"
                )
            except TokenFileError as err:
                raise SettingsError(str(err)) from None
        if "model_repository" not in values or values["model_repository"] is None:
            raise SettingsError(
                f"no model repository: pass --model-repository or set {prefix}MODEL_REPOSITORY"
            )
        return cls(**values)


def environment_variables(prefix: str = "EDGEPERF_") -> list[tuple[str, str]]:
    """(variable, what it sets) for every environment variable `from_env` reads, in field order."""
    described = {
        "model_repository": "model repository folder (--model-repository)",
        "listen": "gRPC HOST:PORT (--listen)",
        "metrics_listen": "Prometheus HOST:PORT, empty for none (--metrics-listen, --no-metrics)",
        "max_message_bytes": "largest gRPC message in MiB (--max-message-mb)",
        "max_queued_bytes": "budget for request data held in the server, MiB (--max-queued-mb)",
        "max_inflight": "inference RPCs held at once, more answer RESOURCE_EXHAUSTED (--max-inflight)",
        "grace_s": "drain time in seconds (--grace-s)",
        "drain_delay_s": "serving time after health turns NOT_SERVING (--drain-delay-s)",
        "tls_cert": "PEM certificate chain (--tls-cert)",
        "tls_key": "PEM private key (--tls-key)",
        "tls_client_ca": "PEM CA for client certificates (--tls-client-ca)",
        "auth_token": "bearer token clients must send (--auth-token)",
        "warmup": "1/0: warm models up at load (--no-warmup)",
        "power": "power sources: auto, none or a list such as rapl,nvml (--power)",
        "log_level": "DEBUG, INFO, WARNING, ERROR (--log-level)",
        "log_json": "1/0: JSON log lines, else text (--log-format)",
        "workers": "server processes sharing the port (--workers)",
    }
    rows: list[tuple[str, str]] = []
    for item in fields(ServerConfig):
        rows.append((prefix + _variable(item.name), described[item.name]))
        if item.name == "auth_token":
            rows.append((prefix + "AUTH_TOKEN_FILE", "file holding the bearer token (--auth-token-file)"))
    return rows


def _variable(name: str) -> str:
    return {"max_message_bytes": "MAX_MESSAGE_MB", "max_queued_bytes": "MAX_QUEUED_MB"}.get(
        name, name.upper()
    )


def _finite(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


def _convert(name: str, raw: str, variable: str) -> Any:
    try:
        if name in ("max_message_bytes", "max_queued_bytes"):
            return int(_finite(raw) * _MIB)
        if name in ("grace_s", "drain_delay_s"):
            return _finite(raw)
        if name in ("warmup", "log_json"):
            lowered = raw.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(raw)
            return lowered in ("1", "true", "yes")
        if name in ("model_repository", "tls_cert", "tls_key", "tls_client_ca"):
            return Path(raw)
        if name == "metrics_listen":
            return raw or None
        if name in ("workers", "max_inflight"):
            return int(raw)
        return raw
    except ValueError:
        raise SettingsError(f"{variable}: invalid value {raw!r}") from None


def intra_op_share(configured: int, workers: int) -> int:
    """A worker's ONNX Runtime intra-op threads: `configured` (0: one per core) split over `workers`."""
    total = configured or os.cpu_count() or 1
    return max(1, total // workers)
