"""Print the messages of a set of generated protobuf modules as JSON: {full_name: {field: [number, type, label, type_name]}}.

Run as a script (`python describe_messages.py triton|edgeperf`), so tritonclient's generated modules and
ours never share a process (they define the same protobuf names).
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any


def _walk(message: Any, out: dict[str, dict[str, list[Any]]]) -> None:
    out[message.full_name] = {
        f.name: [
            f.number,
            f.type,
            "repeated" if f.is_repeated else "single",
            f.message_type.full_name if f.message_type else (f.enum_type.full_name if f.enum_type else ""),
        ]
        for f in message.fields
    }
    for nested in message.nested_types:
        _walk(nested, out)
    for enum in message.enum_types:
        out[enum.full_name] = {v.name: [v.number] for v in enum.values}


def describe(module_names: list[str]) -> dict[str, Any]:
    messages: dict[str, dict[str, list[Any]]] = {}
    methods: dict[str, list[Any]] = {}
    for module_name in module_names:
        file = importlib.import_module(module_name).DESCRIPTOR
        for message in file.message_types_by_name.values():
            _walk(message, messages)
        for enum in file.enum_types_by_name.values():
            messages[enum.full_name] = {v.name: [v.number] for v in enum.values}
        for service in file.services_by_name.values():
            for method in service.methods:
                methods[f"{service.full_name}/{method.name}"] = [
                    method.input_type.full_name,
                    method.output_type.full_name,
                    method.client_streaming,
                    method.server_streaming,
                ]
    return {"messages": messages, "methods": methods}


MODULES = {
    "triton": ["tritonclient.grpc.model_config_pb2", "tritonclient.grpc.service_pb2"],
    "edgeperf": ["edgeperf.protos.model_config_pb2", "edgeperf.protos.grpc_service_pb2"],
}

if __name__ == "__main__":
    json.dump(describe(MODULES[sys.argv[1]]), sys.stdout)
