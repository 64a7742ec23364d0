from __future__ import annotations

import pytest

from edgeperf.benchmarks import registry
from edgeperf.benchmarks import resnet50 as package
from edgeperf.benchmarks.resnet50 import BENCHMARK, SPEC


def test_public_api_and_registry():
    assert package.__all__ == ["BENCHMARK", "SPEC", "ResNet50Benchmark"]
    assert registry.get("resnet50") is BENCHMARK
    assert BENCHMARK.spec is SPEC


def test_v21_rules_and_reference_facts():
    assert SPEC.mlperf_model == "resnet50"
    assert [(t.name, t.datatype, t.shape) for t in SPEC.inputs] == [("input_tensor:0", "FP32", (3, 224, 224))]
    assert [(t.name, t.datatype, t.shape) for t in SPEC.outputs] == [
        ("ArgMax:0", "INT64", ()),
        ("softmax_tensor:0", "FP32", (1001,)),
    ]
    assert (SPEC.qsl_size, SPEC.dataset_size, SPEC.multi_stream_samples_per_query) == (1024, 50000, 8)
    assert SPEC.edge_scenarios == ("SingleStream", "MultiStream", "Offline")
    assert SPEC.quality.reference_value * SPEC.quality.fractions[0] == pytest.approx(75.6954)
