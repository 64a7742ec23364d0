"""The system description of a results page row, in the field names of MLPerf's `systems/*.json`.

`edgeperf suite` asks each server for its SystemDescription and writes `<out>/systems/<system>.json`;
`--system-json` overrides any field (the submitter, a processor count the server cannot know, a
marketing name). `--compare` reads the same files back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import grpc

from edgeperf.client.connection_args import Connection
from edgeperf.client.errors import EdgeperfClientError
from edgeperf.client.report.log_format import atomic_write
from edgeperf.protos import edgeperf_service_pb2 as epb

__all__ = [
    "MLPERF_FIELDS",
    "describe_target",
    "from_description",
    "load_override",
    "read_systems",
    "write_system",
]

MLPERF_FIELDS: Final = (
    "submitter",
    "division",
    "status",
    "system_name",
    "system_type",
    "number_of_nodes",
    "host_processor_model_name",
    "host_processors_per_node",
    "host_processor_core_count",
    "host_memory_capacity",
    "accelerator_model_name",
    "accelerators_per_node",
    "accelerator_memory_capacity",
    "operating_system",
    "framework",
    "other_software_stack",
    "sw_notes",
)
"""The fields of MLPerf Inference's systems/*.json that a device description fills, in their order."""

_SYSTEMS: Final = "systems"


def _gib(value: int) -> str:
    return f"{value / 2**30:.0f} GB" if value else ""


def from_description(desc: epb.SystemDescriptionResponse | None, system: str) -> dict[str, Any]:
    """A systems/*.json document from a server's SystemDescription (None: only what is known without it)."""
    doc: dict[str, Any] = {
        "submitter": "edgeperf",
        "division": "open",
        "status": "edgeperf (not an MLPerf submission)",
        "system_name": system,
        "system_type": "edge",
        "number_of_nodes": 1,
    }
    if desc is None:
        return doc
    devices = [a for a in desc.accelerators if a.kind != "execution-provider"]
    names = list(dict.fromkeys(a.name for a in devices))
    power = [f"{p.name} ({p.covers})" for p in desc.power_sources]
    doc.update(
        {
            "host_processor_model_name": desc.cpu_model or desc.machine,
            # NOTE: the server reports logical cores, not sockets; one socket is the edge-device norm.
            "host_processors_per_node": 1,
            "host_processor_core_count": desc.cpu_cores,
            "host_memory_capacity": _gib(desc.memory_bytes),
            "accelerator_model_name": " + ".join(names) if names else "N/A",
            "accelerators_per_node": len(devices),
            "accelerator_memory_capacity": _gib(devices[0].memory_bytes) if devices else "",
            "operating_system": desc.os,
            "framework": f"ONNX Runtime {desc.onnxruntime_version}",
            "other_software_stack": (
                f"edgeperf {desc.edgeperf_version}, Python {desc.python_version}, "
                f"providers {', '.join(desc.onnxruntime_providers)}"
            ),
            "sw_notes": "power: " + ("; ".join(power) if power else "not measured"),
            "edgeperf_host_name": desc.host_name,
            "edgeperf_power_sources": power,
        }
    )
    return doc


async def describe_target(
    address: str, connection: Connection | None = None, timeout_s: float = 10.0
) -> epb.SystemDescriptionResponse | None:
    """The server's SystemDescription, or None for a server without edgeperf's service (Triton) or one
    that cannot be reached with `connection` (TLS files, token)."""
    connection = connection or Connection()
    metadata = (
        None if connection.auth_token is None else (("authorization", f"Bearer {connection.auth_token}"),)
    )
    try:
        if (tls := connection.tls) is not None:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(tls.root_cert),
                private_key=_read(tls.client_key),
                certificate_chain=_read(tls.client_cert),
            )
            channel = grpc.aio.secure_channel(address, credentials)
        else:
            channel = grpc.aio.insecure_channel(address)
    except OSError:
        return None  # NOTE: the runs that follow report the unreadable TLS file
    async with channel:
        call = channel.unary_unary(
            "/edgeperf.v1.EdgeperfService/SystemDescription",
            request_serializer=epb.SystemDescriptionRequest.SerializeToString,
            response_deserializer=epb.SystemDescriptionResponse.FromString,
        )
        try:
            answer: epb.SystemDescriptionResponse = await call(
                epb.SystemDescriptionRequest(), timeout=timeout_s, metadata=metadata
            )
        except grpc.aio.AioRpcError:
            return None
        return answer


def _read(path: Path | None) -> bytes | None:
    return None if path is None else path.read_bytes()


def load_override(path: Path) -> dict[str, Any]:
    """A `--system-json` file: one JSON object of systems/*.json fields (strings, numbers)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EdgeperfClientError(f"--system-json {path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise EdgeperfClientError(f"--system-json {path}: not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise EdgeperfClientError(f"--system-json {path}: expected an object of systems/*.json fields")
    for key, value in doc.items():
        if not isinstance(value, str | int | float | list) or isinstance(value, bool):
            raise EdgeperfClientError(f"--system-json {path}: {key!r} must be a string or a number")
    return doc


def write_system(out_dir: Path, system: str, doc: Mapping[str, Any]) -> Path:
    path = out_dir / _SYSTEMS / f"{system}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, [json.dumps(dict(doc), indent=2) + "\n"])
    return path


def read_systems(folder: Path) -> dict[str, dict[str, Any]]:
    """Every `systems/<system>.json` in `folder` or beside it (a one-system folder's parent)."""
    found: dict[str, dict[str, Any]] = {}
    for where in (folder.parent / _SYSTEMS, folder / _SYSTEMS):
        for path in sorted(where.glob("*.json")) if where.is_dir() else []:
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(doc, dict):
                found[path.stem] = doc
    return found
