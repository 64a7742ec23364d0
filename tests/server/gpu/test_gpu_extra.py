"""The `gpu` extra is the `server` extra with onnxruntime-gpu for onnxruntime, plus nvidia-ml-py."""

from __future__ import annotations

import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"


def test_gpu_extra_mirrors_the_server_extra() -> None:
    extras = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    server, gpu = extras["server"], extras["gpu"]
    assert [d for d in gpu if not d.startswith(("onnxruntime-gpu", "nvidia-ml-py"))] == [
        d for d in server if not d.startswith("onnxruntime")
    ]
    assert any(d.startswith("onnxruntime-gpu") for d in gpu) and any(
        d.startswith("nvidia-ml-py") for d in gpu
    )
    # NOTE: the two ONNX Runtime builds conflict in one environment; the CPU install must stay CPU-only.
    assert not any(d.startswith(("onnxruntime-gpu", "nvidia-ml-py")) for d in server + extras["dev"])
