"""Our .proto files are wire-identical to Triton's for every message and RPC we declare.

tritonclient ships generated modules of Triton's own protos; their descriptors are dumped in a
subprocess (they cannot share a process with edgeperf.protos) and compared field by field.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).with_name("describe_messages.py")


def _describe(which: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), which], check=True, capture_output=True, text=True, timeout=60
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


@pytest.fixture(scope="module")
def both() -> tuple[dict[str, Any], dict[str, Any]]:
    return _describe("edgeperf"), _describe("triton")


def test_every_message_and_field_matches_triton(both):
    ours, triton = both
    assert len(ours["messages"]) > 80
    mismatches = [
        (message, field, spec, triton["messages"].get(message, {}).get(field))
        for message, fields in ours["messages"].items()
        for field, spec in fields.items()
        if triton["messages"].get(message, {}).get(field) != spec
    ]
    assert mismatches == []


def test_every_triton_rpc_is_declared_with_the_same_types(both):
    ours, triton = both
    assert ours["methods"] == triton["methods"]
    assert ours["methods"]["inference.GRPCInferenceService/ModelStreamInfer"] == [
        "inference.ModelInferRequest",
        "inference.ModelStreamInferResponse",
        True,
        True,
    ]


def test_messages_triton_clients_read_are_complete(both):
    ours, triton = both
    for message in (
        "inference.ModelInferRequest",
        "inference.ModelInferResponse",
        "inference.ModelStatistics",
        "inference.InferStatistics",
        "inference.ModelMetadataResponse",
        "inference.ModelInput",
        "inference.ModelOutput",
        "inference.ModelDynamicBatching",
        "inference.ModelQueuePolicy",
        "inference.ModelInstanceGroup",
        "inference.DataType",
    ):
        assert ours["messages"][message] == triton["messages"][message], message
