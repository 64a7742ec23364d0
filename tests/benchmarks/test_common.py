"""What every benchmark package shares: the Benchmark object's checks, its spec's response outputs, and
the `synthetic[:COUNT]` and logged-response helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeperf.benchmarks import registry
from edgeperf.benchmarks._common import (
    DatasetError,
    PrecisionError,
    WrongDatasetError,
    first_responses,
    synthetic_count,
)

# NOTE: what each accuracy metric decodes (see each package's accuracy.py).
SCORED_OUTPUTS = {
    "bert": ("output_start_logits", "output_end_logits"),
    "resnet50": ("ArgMax:0",),
    "retinanet": ("boxes", "scores", "labels"),
    "3d-unet": ("segmentation",),
    "rnnt": ("tokens",),
    "tiny": ("OUTPUT0",),
}


@pytest.mark.parametrize("name", sorted(SCORED_OUTPUTS))
def test_response_outputs_are_the_scored_outputs_of_the_model(name: str) -> None:
    spec = registry.get(name).spec
    assert spec.response_outputs == SCORED_OUTPUTS[name]
    assert set(spec.response_outputs) <= {t.name for t in spec.outputs}


@pytest.mark.parametrize("name", ["resnet50", "retinanet", "3d-unet", "rnnt", "tiny"])
def test_write_model_refuses_unknown_precisions_before_writing(name: str, tmp_path: Path) -> None:
    benchmark = registry.get(name)
    with pytest.raises(PrecisionError, match="bf16"):
        benchmark.write_model(tmp_path / name, size="small", precision="bf16")  # type: ignore[call-arg]
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("name", ["resnet50", "retinanet", "3d-unet", "rnnt"])
def test_a_precision_with_an_official_file_is_refused(name: str, tmp_path: Path) -> None:
    benchmark = registry.get(name)
    with pytest.raises(PrecisionError, match="stand-ins"):
        benchmark.write_model(  # type: ignore[call-arg]
            tmp_path / name, from_file=tmp_path / "official.onnx", precision="int8"
        )


def test_the_tiny_model_is_fp32_only(tmp_path: Path) -> None:
    with pytest.raises(PrecisionError, match="FP32 only"):
        registry.get("tiny").write_model(tmp_path / "tiny", precision="fp16")  # type: ignore[call-arg]


@pytest.mark.parametrize(("name", "other"), [("resnet50", "tiny"), ("3d-unet", "tiny"), ("tiny", "rnnt")])
def test_accuracy_refuses_another_benchmarks_dataset(name: str, other: str) -> None:
    foreign = registry.get(other).open_dataset("synthetic:2", size="small")
    with pytest.raises(WrongDatasetError, match=f"{name} accuracy needs a dataset") as caught:
        registry.get(name).accuracy(foreign, [])
    # NOTE: both kinds callers used to catch still work: the vision packages raised DatasetError, the rest TypeError
    assert isinstance(caught.value, DatasetError) and isinstance(caught.value, TypeError)


def test_synthetic_count() -> None:
    assert synthetic_count("synthetic", default=7) == 7
    assert synthetic_count("synthetic:12", default=7) == 12
    assert synthetic_count("/data/synthetic:12", default=7) is None
    assert synthetic_count("synthetics", default=7) is None
    assert synthetic_count("synthetic:", default=7) == 7
    for bad in ("synthetic:0", "synthetic:-1", "synthetic:x"):
        with pytest.raises(DatasetError, match="COUNT"):
            synthetic_count(bad, default=7)


def test_first_responses_keep_the_first_of_each_index_and_check_the_range() -> None:
    results = [(2, b"a"), (0, b"b"), (2, b"c"), (1, b"d")]
    assert list(first_responses(results, dataset_size=3, unit="cases")) == [(2, b"a"), (0, b"b"), (1, b"d")]
    with pytest.raises(DatasetError, match="qsl_idx 3 is outside the dataset of 3 cases"):
        list(first_responses([(3, b"")], dataset_size=3, unit="cases"))
