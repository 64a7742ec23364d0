from __future__ import annotations

import pytest

from edgeperf.benchmarks import registry
from edgeperf.benchmarks import retinanet as package
from edgeperf.benchmarks.retinanet import BENCHMARK, SPEC


def test_public_api_and_registry():
    assert package.__all__ == ["BENCHMARK", "SPEC", "RetinaNetBenchmark"]
    assert registry.get("retinanet") is BENCHMARK
    assert BENCHMARK.spec is SPEC


def test_v21_rules_and_reference_facts():
    assert [(t.name, t.datatype, t.shape) for t in SPEC.inputs] == [("images", "FP32", (1, 3, 800, 800))]
    assert [(t.name, t.datatype, t.shape) for t in SPEC.outputs] == [
        ("boxes", "FP32", (-1, 4)),
        ("scores", "FP32", (-1,)),
        ("labels", "INT64", (-1,)),
    ]
    assert (SPEC.qsl_size, SPEC.dataset_size, SPEC.multi_stream_samples_per_query) == (64, 24781, 8)
    assert SPEC.edge_scenarios == ("SingleStream", "MultiStream", "Offline")
    assert SPEC.quality.metric == "mAP"
    assert SPEC.quality.reference_value * SPEC.quality.fractions[0] == pytest.approx(37.1745)
