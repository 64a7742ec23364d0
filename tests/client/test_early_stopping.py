"""Early stopping against LoadGen's known numbers (MLPERF_LOADGEN.md §9) and exact binomial maths."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np
import pytest

from edgeperf.client.report.early_stopping import (
    MinPassingQueriesFinder,
    latency_estimate,
    odds,
    server_early_stopping,
    stream_early_stopping,
)


def _exact_binomial_cdf(h: int, t: int, p: Fraction) -> Fraction:
    n = h + t
    return sum((comb(n, x) * p ** (n - x) * (1 - p) ** x for x in range(t + 1)), Fraction(0))


@pytest.mark.parametrize(("percentile", "minimum"), [(0.90, 64), (0.99, 662), (0.999, 6636)])
def test_minimum_queries(percentile, minimum):
    assert MinPassingQueriesFinder()(1, percentile) + 1 == minimum


def test_h_of_zero_and_server_query_needs_at_p99():
    assert MinPassingQueriesFinder()(0, 0.99) == 459
    needs = [MinPassingQueriesFinder()(t, 0.99) + t for t in (10, 100, 1000)]
    assert needs == [2010, 12571, 107569]


@pytest.mark.parametrize("t", [0, 1, 2, 5, 13, 30])
def test_h_agrees_with_exact_rational_binomial_search(t):
    p = Fraction(9, 10)
    limit = Fraction(1) - Fraction(99, 100)
    h = MinPassingQueriesFinder()(t, 0.9)
    assert _exact_binomial_cdf(h, t, p) < limit <= _exact_binomial_cdf(h - 1, t, p)
    assert odds(h, t, 0.9) == pytest.approx(float(_exact_binomial_cdf(h, t, p)), rel=1e-9)


@pytest.mark.parametrize(
    ("queries", "percentile", "t"),
    [(1024, 0.90, 80), (2074, 0.90, 175), (1501, 0.99, 6), (24576, 0.90, 2348), (270336, 0.99, 2583)],
)
def test_rank_of_the_estimate(queries, percentile, t):
    latencies = np.arange(queries, dtype=np.int64) * 10
    est = latency_estimate(latencies, queries, percentile)
    assert est.passed and est.t == t
    assert est.estimate_ns == latencies[queries - t]


def test_single_stream_text_with_both_estimates():
    lat = np.arange(2074, dtype=np.int64) + 1000
    out = stream_early_stopping(lat, 2074, 0.9, single_stream=True)
    assert out.met
    assert out.text == (
        " * Processed at least 64 queries (2074).\n"
        " * Would discard 174 highest latency queries.\n"
        f" * Early stopping 90.0th percentile estimate: {lat[2074 - 175]}\n"
        f" * Early stopping 99.0th percentile estimate: {out.latency_ms_ns}"
    )
    assert out.latency_ss_ns == lat[2074 - 175]
    assert out.latency_ms_ns == lat[2074 - out.estimates[1].t]


def test_single_stream_between_64_and_662_queries_skips_p99():
    lat = np.arange(100, dtype=np.int64)
    out = stream_early_stopping(lat, 100, 0.9, single_stream=True, label_decimals=0)
    assert out.met and out.latency_ms_ns == 0
    assert out.text.endswith(
        "\n * Not enough queries processed for 99th percentile\n"
        " early stopping estimate (would need to process at\n least 662 total queries)."
    )
    assert " * Early stopping 90th percentile estimate: " in out.text


def test_too_few_queries_fails():
    out = stream_early_stopping(np.arange(50, dtype=np.int64), 50, 0.99, single_stream=False)
    assert not out.met
    assert (
        out.text
        == " * Only processed 50 queries.\n * Need to process at least 662 queries for early stopping."
    )
    assert (
        out.detail_text
        == " * Only processed 50 queries.  * Need to process at least 662 queries for early stopping."
    )


def test_multi_stream_passes_with_query_latency_estimate():
    lat = np.arange(1501, dtype=np.int64)
    out = stream_early_stopping(lat, 1501, 0.99, single_stream=False)
    assert out.met and out.latency_ms_ns == 1495 and out.latency_ss_ns == 0
    assert " * Would discard 5 highest latency queries." in out.text


def test_server_pass_and_fail_counts():
    bound = 1000
    # 10 samples over the bound need 2010 queries in all.
    lat = np.full(2010, 10, dtype=np.int64)
    lat[:10] = bound + 1
    lat[10] = bound  # exactly at the bound is not over it
    ok = server_early_stopping(lat, 2010, bound, 0.99)
    assert ok.met and ok.text == " * Run successful." and ok.overlatency_count == 10
    bad = server_early_stopping(lat[:2000], 2000, bound, 0.99)
    assert not bad.met and bad.queries_needed == 2010
    assert bad.text == (
        " * Run unsuccessful.\n * Processed 2000 queries.\n"
        " * Would need to run at least 10 more queries,\n"
        " with the run being successful if every additional\n query were under latency."
    )
