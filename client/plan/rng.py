"""LoadGen's random numbers, bit for bit: std::mt19937 and the libstdc++ >= 11 distributions (§7).

`random.Random` and numpy's generators do not reproduce LoadGen; everything here follows the C++
standard library algorithms exactly, vectorised with numpy where that keeps the result identical.
"""

from __future__ import annotations

import math
from collections.abc import MutableSequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_SEED",
    "MT19937",
    "canonical",
    "exponential_intervals_ns",
    "shuffle",
    "uniform_int",
    "uniform_ints",
]

DEFAULT_SEED = 5489
"""std::mt19937's default seed; LoadGen's sequence generator uses it (`InitAccLogRng` is never called)."""

_N = 624
_M = 397
_MATRIX_A = np.uint32(0x9908B0DF)
_UPPER = np.uint32(0x80000000)
_LOWER = np.uint32(0x7FFFFFFF)
_MASK32 = (1 << 32) - 1
_TWO32 = 4294967296.0
_TWO64 = 18446744073709551616.0
_BELOW_ONE = math.nextafter(1.0, 0.0)
CHUNK = 1 << 14
"""Draws made per numpy step: a long schedule is generated in chunks so that its temporaries (engine
words, products, Python floats for libm's log) stay a few hundred kilobytes whatever its length; the
draws are sequential, so chunking leaves every value unchanged."""

U32Array = npt.NDArray[np.uint32]
U64Array = npt.NDArray[np.uint64]
F64Array = npt.NDArray[np.float64]


class MT19937:
    """`std::mt19937`: the 32-bit Mersenne Twister with the standard `init_genrand` seeding.

    Args:
        seed: any non-negative integer; like `std::mt19937(uint64_t)`, only `seed mod 2**32` is used.
    """

    __slots__ = ("_buffer", "_pos", "_state")

    def __init__(self, seed: int = DEFAULT_SEED) -> None:
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        state = [seed & _MASK32]
        for i in range(1, _N):
            prev = state[-1]
            state.append((1812433253 * (prev ^ (prev >> 30)) + i) & _MASK32)
        self._state: U32Array = np.array(state, dtype=np.uint32)
        self._buffer: U32Array = np.empty(0, dtype=np.uint32)
        self._pos = 0

    def __call__(self) -> int:
        """The next 32-bit output."""
        if self._pos >= len(self._buffer):
            self._fill(1)
        value = int(self._buffer[self._pos])
        self._pos += 1
        return value

    def peek(self, n: int) -> U32Array:
        """The next `n` outputs, without consuming them."""
        if self._pos + n > len(self._buffer):
            self._fill(n)
        return self._buffer[self._pos : self._pos + n]

    def advance(self, n: int) -> None:
        """Consume `n` outputs (after `peek`)."""
        if self._pos + n > len(self._buffer):
            self._fill(n)
        self._pos += n

    def take(self, n: int) -> U32Array:
        """The next `n` outputs, consumed."""
        out = self.peek(n).copy()
        self._pos += n
        return out

    def _fill(self, n: int) -> None:
        blocks = [self._buffer[self._pos :]]
        have = len(blocks[0])
        while have < n:
            self._twist()
            blocks.append(_temper(self._state))
            have += _N
        self._buffer = np.concatenate(blocks)
        self._pos = 0

    def _twist(self) -> None:
        mt = self._state
        # NOTE: the reference loop is sequential, but each chunk reads only old words or words
        # rewritten by an earlier chunk: [0, 227) uses old mt[i + 397]; [227, 454) and [454, 623)
        # use mt[i - 227] from the chunk before; 623 uses the new mt[0] and mt[396].
        for lo, hi in ((0, 227), (227, 454), (454, 623)):
            y = (mt[lo:hi] & _UPPER) | (mt[lo + 1 : hi + 1] & _LOWER)
            src = mt[lo + _M : hi + _M] if lo == 0 else mt[lo + _M - _N : hi + _M - _N]
            mt[lo:hi] = src ^ (y >> np.uint32(1)) ^ np.where(y & np.uint32(1), _MATRIX_A, np.uint32(0))
        y_last = (int(mt[623]) & 0x80000000) | (int(mt[0]) & 0x7FFFFFFF)
        mt[623] = int(mt[396]) ^ (y_last >> 1) ^ (0x9908B0DF if y_last & 1 else 0)


def _temper(state: U32Array) -> U32Array:
    y = state.copy()
    y ^= y >> np.uint32(11)
    y ^= (y << np.uint32(7)) & np.uint32(0x9D2C5680)
    y ^= (y << np.uint32(15)) & np.uint32(0xEFC60000)
    y ^= y >> np.uint32(18)
    return y


def _draw_ranged(g: MT19937, ranges: U64Array) -> U64Array:
    """One `uniform_int_distribution(0, R - 1)` draw per entry of `ranges`, in order (§7.2).

    Lemire's method with libstdc++'s 64-bit product: accept the word when its low half is at least
    (2**32 - R) mod R, else draw again for the same R. Rejections are rare, so each pass tests the
    words for all remaining draws at once and consumes only up to the first rejection.
    """
    m = len(ranges)
    out = np.empty(m, dtype=np.uint64)
    if m and int(ranges.max()) > 1 << 32:
        raise ValueError("ranges above 2**32 need more than one engine word")
    full = ranges == np.uint64(1 << 32)
    safe = np.where(full, np.uint64(1), ranges)
    threshold = (np.uint64(1 << 32) - safe) % safe
    done = 0
    while done < m:
        words = g.peek(m - done).astype(np.uint64)
        product = words * safe[done:]
        low = product & np.uint64(_MASK32)
        value = np.where(full[done:], words, product >> np.uint64(32))
        rejected = np.flatnonzero((low < threshold[done:]) & ~full[done:])
        k = int(rejected[0]) if len(rejected) else m - done
        out[done : done + k] = value[:k]
        g.advance(k)
        done += k
        if done < m:
            g.advance(1)  # the rejected word; the same draw is retried with the next word
    return out


def uniform_int(g: MT19937, low: int, high: int) -> int:
    """`std::uniform_int_distribution(low, high)(g)`: one integer in [low, high]."""
    if high < low:
        raise ValueError(f"empty range [{low}, {high}]")
    return low + int(_draw_ranged(g, np.array([high - low + 1], dtype=np.uint64))[0])


def uniform_ints(g: MT19937, low: int, high: int, count: int) -> npt.NDArray[np.int64]:
    """`count` successive draws of `std::uniform_int_distribution(low, high)`."""
    if high < low:
        raise ValueError(f"empty range [{low}, {high}]")
    out = np.empty(count, dtype=np.int64)
    ranges = np.full(min(count, CHUNK), high - low + 1, dtype=np.uint64)
    for lo in range(0, count, CHUNK):
        hi = min(lo + CHUNK, count)
        out[lo:hi] = _draw_ranged(g, ranges[: hi - lo])
    out += low
    return out


def shuffle(g: MT19937, items: MutableSequence[int]) -> None:
    """`std::shuffle(items.begin(), items.end(), g)` as libstdc++ implements it (§7.3), in place."""
    n = len(items)
    if n < 2:
        return
    if _MASK32 // n >= n:
        # Two positions from one draw: x in [0, r (r + 1)) gives x // (r + 1) and x % (r + 1).
        i = 1
        first: list[tuple[int, int]] = []
        if n % 2 == 0:
            x = int(_draw_ranged(g, np.array([2], dtype=np.uint64))[0])
            first.append((1, x))
            i = 2
        starts = np.arange(i, n, 2, dtype=np.uint64)
        r = starts + np.uint64(1)
        draws = _draw_ranged(g, r * (r + np.uint64(1)))
        hi = (draws // (r + np.uint64(1))).tolist()
        lo = (draws % (r + np.uint64(1))).tolist()
        for a, b in first:
            items[a], items[b] = items[b], items[a]
        for k, pos in enumerate(range(i, n, 2)):
            a = hi[k]
            items[pos], items[a] = items[a], items[pos]
            b = lo[k]
            items[pos + 1], items[b] = items[b], items[pos + 1]
    else:
        js = _draw_ranged(g, np.arange(2, n + 1, dtype=np.uint64)).tolist()
        for pos in range(1, n):
            j = js[pos - 1]
            items[pos], items[j] = items[j], items[pos]


def canonical(g: MT19937, count: int) -> F64Array:
    """`count` draws of `generate_canonical<double, 53>` (= `uniform_real_distribution(0, 1)`), §7.4.

    Each takes two engine words: (w1 + w2 * 2**32) / 2**64 with the sum rounded as a double.
    """
    u: F64Array = np.empty(count, dtype=np.float64)
    for lo in range(0, count, CHUNK):
        hi = min(lo + CHUNK, count)
        words = g.take(2 * (hi - lo)).astype(np.float64).reshape(hi - lo, 2)
        part = u[lo:hi]
        np.multiply(words[:, 1], _TWO32, out=part)
        part += words[:, 0]
        part /= _TWO64
        part[part >= 1.0] = _BELOW_ONE
    return u


def exponential_intervals_ns(
    g: MT19937, rate_per_s: float, count: int, *, out: npt.NDArray[np.int64] | None = None
) -> npt.NDArray[np.int64]:
    """`count` Server inter-arrival times: `exponential_distribution(rate)` seconds, truncated to ns.

    x = -log(1 - u) / rate with libm's log (as libstdc++ calls it), then int64(x * 1e9).

    Args:
        out: write the intervals here (`count` entries) instead of a new array.
    """
    if out is None:
        out = np.empty(count, dtype=np.int64)
    elif out.shape != (count,):
        raise ValueError(f"out has shape {out.shape}, expected ({count},)")
    log = math.log
    for lo in range(0, count, CHUNK):
        hi = min(lo + CHUNK, count)
        # NOTE: math.log is libm's log, as std::log; numpy's vectorised log may differ in the last bit.
        seconds = [-log(1.0 - v) / rate_per_s for v in canonical(g, hi - lo).tolist()]
        out[lo:hi] = np.array(seconds, dtype=np.float64) * 1e9
    return out
