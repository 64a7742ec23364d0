"""LoadGen's early stopping, bit for bit (MLPERF_LOADGEN.md §9; `loadgen/early_stopping.cc`, `results.cc`).

The maths evaluates the regularized incomplete beta function I_p(h, t + 1), the probability of at most
t over-latency queries among h + t if the true over-latency rate were 1 - p, with the same double
operations in the same order as LoadGen's C++ (``lgamma``, ``exp`` and ``log`` from the C math
library, the same truncated Gaussian hypergeometric series, the same binary search and cache bounds
in `MinPassingQueriesFinder`), so borderline cases come out as the official LoadGen decides them.
Confidence 0.99 and tolerance 0 are fixed, as in LoadGen.
"""

from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "CONFIDENCE",
    "TOLERANCE",
    "EarlyStoppingOutcome",
    "MinPassingQueriesFinder",
    "latency_estimate",
    "odds",
    "percentile_label",
    "server_early_stopping",
    "stream_early_stopping",
]

CONFIDENCE = 0.99
TOLERANCE = 0.0
MULTI_STREAM_PERCENTILE = 0.99
"""The percentile of SingleStream's second estimate (used to infer MultiStream), fixed in LoadGen."""

_SERIES_TOLERANCE = 1.0 / (1 << 33)
_PYTHON_SERIES_MAX = 48
_SERIES_BLOCK = 4096


def _load_lgamma() -> Callable[[float], float]:
    # NOTE: CPython's math.lgamma is its own Lanczos code and differs from glibc's in the last bits;
    # LoadGen calls std::lgamma, i.e. the C library's, so use that one where it can be found.
    for candidate in ("libm.so.6", None, "find"):
        try:
            name = ctypes.util.find_library("m") if candidate == "find" else candidate
            fn = ctypes.CDLL(name).lgamma
        except (OSError, AttributeError, TypeError):
            continue
        fn.restype = ctypes.c_double
        fn.argtypes = [ctypes.c_double]
        return fn  # type: ignore[no-any-return]
    return math.lgamma


_lgamma = _load_lgamma()


def _lbeta(x: int, y: int) -> float:
    return _lgamma(float(x)) + _lgamma(float(y)) - _lgamma(float(x + y))


def _hypergeometric_2f1_a1(b: int, c: int, x: float) -> float:
    """2F1(1, b; c; x) summed term by term until a term is <= 2**-33 (b <= 0: a finite series)."""
    n = 1 - b  # the term for i = -b is exactly 0 (or NaN after an overflow) and ends the loop
    if n <= _PYTHON_SERIES_MAX:
        term = 1.0
        result = 1.0
        i = 0
        while abs(term) > _SERIES_TOLERANCE:
            term *= (b + i) * x / (c + i)
            result += term
            i += 1
        return result
    # NOTE: the same IEEE operations as the loop: each factor ((b + i) * x) / (c + i), a running
    # product (cumprod is sequential) and a running sum (add.accumulate is sequential), a block of
    # terms at a time with the last term and sum carried in, so that a run with many over-latency
    # samples needs no arrays of that length (the series mostly ends within the first block).
    term, result = 1.0, 1.0
    with np.errstate(all="ignore"):
        for start in range(0, n, _SERIES_BLOCK):
            idx = np.arange(start, min(start + _SERIES_BLOCK, n), dtype=np.float64)
            factors = ((b + idx) * x) / (c + idx)
            factors[0] *= term  # the product carried from the previous block: term * factor, as the loop
            terms = np.cumprod(factors)
            stop = ~(np.abs(terms) > _SERIES_TOLERANCE)
            k = int(np.argmax(stop)) if bool(stop.any()) else terms.shape[0] - 1
            result = float(np.add.accumulate(np.concatenate(([result], terms[: k + 1])))[-1])
            if stop[k]:
                break
            term = float(terms[-1])
    return result


def _beta_regularized(x: float, a: int, b: int) -> float:
    with np.errstate(all="ignore"):
        prefix = math.exp(a * math.log(x) + (b - 1) * math.log(1 - x) - _lbeta(a, b))
    return prefix / a * _hypergeometric_2f1_a1(1 - b, 1 + a, x / (x - 1))


def odds(h: int, t: int, p: float, d: float = TOLERANCE) -> float:
    """P[at most t over-latency queries among h + t] if the over-latency rate were 1 - (p - d).

    Equals the regularized incomplete beta I_{p-d}(h, t + 1), evaluated as LoadGen does.
    """
    return _beta_regularized(p - d, h, 1 + t)


def _find_min_passing(min_h: int, max_h: int, t: int, p: float, d: float, c: float) -> int:
    count = max_h - min_h
    while count > 0:
        step = count // 2
        h = min_h + step
        if odds(h, t, p, d) < 1 - c:
            count = step
        else:
            min_h = h + 1
            count -= step + 1
    return min_h


def _trunc(x: float) -> int:
    return int(x)  # C++ double -> int64 conversion truncates toward zero


class MinPassingQueriesFinder:
    """h(t, p): the smallest h with ``odds(h, t, p) < 1 - c``, with LoadGen's cache and search bounds.

    The bounds of each binary search come from previously computed values (as in LoadGen, including
    its slope formula), so the results depend on the call order exactly as LoadGen's do: use one finder
    per early-stopping evaluation, as LoadGen does.
    """

    __slots__ = ("_caches",)

    def __init__(self) -> None:
        self._caches: dict[tuple[float, float, float], tuple[list[int], dict[int, int]]] = {}

    def __call__(self, t: int, p: float, d: float = TOLERANCE, c: float = CONFIDENCE) -> int:
        keys, values = self._caches.setdefault((p, d, c), ([], {}))
        if t in values:
            return values[t]
        pos = bisect.bisect_left(keys, t)
        x0, y0 = -1, 0
        x1, y1 = 0, math.ceil(math.log(1 - c) / math.log(p - d))
        if pos > 0:
            x1 = keys[pos - 1]
            y1 = values[x1]
            if pos > 1:
                x0 = keys[pos - 2]
                y0 = values[x0]
        min_slope = (p - d) / (1 - p + d)
        max_slope = float((y1 - y0) * (x1 - x0))  # NOTE: LoadGen multiplies here; kept for identical bounds
        min_h = _trunc((t - x1) * min_slope + y1)
        max_h = _trunc((t - x1) * max_slope + y1 + 1)
        h = _find_min_passing(min_h, max_h, t, p, d, c)
        keys.insert(pos, t)
        values[t] = h
        return h


def percentile_label(percentile: float, decimals: int) -> str:
    """``DoubleToString(percentile * 100, decimals)``: ``90.0`` (current) or ``90`` (v2.1)."""
    return f"{percentile * 100:.{decimals}f}"


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyEstimate:
    """The SingleStream/MultiStream procedure at one percentile.

    Attributes:
        passed: enough queries were processed (q >= min_queries).
        min_queries: h(1, p) + 1, the fewest queries that can pass (64 at p90, 662 at p99).
        t: the rank from the top of the estimate (the estimate discards t - 1 highest values); 0 if failed.
        estimate_ns: ``sorted[q - t]``; None if failed.
    """

    passed: bool
    min_queries: int
    t: int
    estimate_ns: int | None


def latency_estimate(
    sorted_latencies_ns: npt.NDArray[np.int64],
    queries_issued: int,
    percentile: float,
    finder: MinPassingQueriesFinder | None = None,
) -> LatencyEstimate:
    """LoadGen's SingleStream/MultiStream early-stopping estimate at ``percentile``.

    Args:
        sorted_latencies_ns: ascending latencies (per sample for SingleStream, per query for
            MultiStream); must hold at least ``queries_issued`` values when the estimate passes.
        queries_issued: q, the number of queries issued.
        percentile: target fraction, e.g. 0.9.
        finder: a finder to share its cache (LoadGen uses one per evaluation); a new one if None.
    """
    find = finder if finder is not None else MinPassingQueriesFinder()
    h_min = find(1, percentile)
    if queries_issued < h_min + 1:
        return LatencyEstimate(passed=False, min_queries=h_min + 1, t=0, estimate_ns=None)
    t = 1
    for i in range(2, queries_issued + 1):
        if queries_issued < find(i, percentile) + i:
            t = i - 1
            break
    estimate = int(sorted_latencies_ns[queries_issued - t])
    return LatencyEstimate(passed=True, min_queries=h_min + 1, t=t, estimate_ns=estimate)


@dataclass(frozen=True, slots=True, kw_only=True)
class EarlyStoppingOutcome:
    """What LoadGen's ``PerformanceSummary::EarlyStopping`` decides and prints.

    Attributes:
        met: ``early_stopping_met``.
        text: the "Early Stopping Result:" block, lines joined with ``\\n`` (the detail log's
            ``early_stopping_result`` is this with ``\\n`` replaced by a space).
        latency_ss_ns: ``early_stopping_latency_ss`` (SingleStream; 0 otherwise or if failed).
        latency_ms_ns: ``early_stopping_latency_ms`` (MultiStream, or SingleStream's p99 estimate; 0 if not computed).
        estimates: the per-percentile details (SingleStream: target then p99; MultiStream: one).
        overlatency_count: Server: samples over the latency bound (t); None otherwise.
        queries_needed: Server: h + t, the queries a run with this many over-latency samples needs.
    """

    met: bool
    text: str
    latency_ss_ns: int = 0
    latency_ms_ns: int = 0
    estimates: tuple[LatencyEstimate, ...] = ()
    overlatency_count: int | None = None
    queries_needed: int | None = None

    @property
    def detail_text(self) -> str:
        return self.text.replace("\n", " ")


def _too_few(q: int, est: LatencyEstimate) -> str:
    return f" * Only processed {q} queries.\n * Need to process at least {est.min_queries} queries for early stopping."


def _estimate_lines(q: int, est: LatencyEstimate, label: str) -> str:
    return (
        f" * Processed at least {est.min_queries} queries ({q}).\n"
        f" * Would discard {est.t - 1} highest latency queries.\n"
        f" * Early stopping {label}th percentile estimate: {est.estimate_ns}"
    )


def stream_early_stopping(
    sorted_latencies_ns: npt.NDArray[np.int64],
    queries_issued: int,
    percentile: float,
    *,
    single_stream: bool,
    label_decimals: int = 1,
) -> EarlyStoppingOutcome:
    """Early stopping for SingleStream (sorted sample latencies) or MultiStream (sorted query latencies).

    Args:
        sorted_latencies_ns: ascending latencies.
        queries_issued: queries issued.
        percentile: the scenario's target percentile.
        single_stream: also compute the p99 estimate LoadGen adds for SingleStream.
        label_decimals: decimals of the percentile label: 1 for current LoadGen, 0 for v2.1.
    """
    finder = MinPassingQueriesFinder()
    q = queries_issued
    est = latency_estimate(sorted_latencies_ns, q, percentile, finder)
    if not est.passed:
        return EarlyStoppingOutcome(met=False, text=_too_few(q, est), estimates=(est,))
    text = _estimate_lines(q, est, percentile_label(percentile, label_decimals))
    assert est.estimate_ns is not None
    if not single_stream:
        return EarlyStoppingOutcome(met=True, text=text, latency_ms_ns=est.estimate_ns, estimates=(est,))
    ms_label = percentile_label(MULTI_STREAM_PERCENTILE, label_decimals)
    est99 = latency_estimate(sorted_latencies_ns, q, MULTI_STREAM_PERCENTILE, finder)
    if not est99.passed:
        text += (
            f"\n * Not enough queries processed for {ms_label}th percentile\n"
            f" early stopping estimate (would need to process at\n least {est99.min_queries} total queries)."
        )
        latency_ms = 0
    else:
        assert est99.estimate_ns is not None
        text += f"\n * Early stopping {ms_label}th percentile estimate: {est99.estimate_ns}"
        latency_ms = est99.estimate_ns
    return EarlyStoppingOutcome(
        met=True,
        text=text,
        latency_ss_ns=est.estimate_ns,
        latency_ms_ns=latency_ms,
        estimates=(est, est99),
    )


def server_early_stopping(
    sample_latencies_ns: npt.NDArray[np.int64],
    queries_issued: int,
    target_latency_ns: int,
    percentile: float,
) -> EarlyStoppingOutcome:
    """Server early stopping: t = samples strictly over the bound; passes if q >= h(t, p) + t."""
    t = int(np.count_nonzero(np.asarray(sample_latencies_ns) > target_latency_ns))
    h = MinPassingQueriesFinder()(t, percentile)
    q = queries_issued
    if q >= h + t:
        return EarlyStoppingOutcome(
            met=True, text=" * Run successful.", overlatency_count=t, queries_needed=h + t
        )
    text = (
        f" * Run unsuccessful.\n * Processed {q} queries.\n"
        f" * Would need to run at least {h + t - q} more queries,\n"
        " with the run being successful if every additional\n query were under latency."
    )
    return EarlyStoppingOutcome(met=False, text=text, overlatency_count=t, queries_needed=h + t)
