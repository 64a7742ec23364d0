"""edgeperf.client.plan.rng reproduces std::mt19937 and the libstdc++ >= 11 distributions bit for bit.

Known values come from the C++ standard ([rand.predef]: the 10000th output of a default-constructed
mt19937 is 4123659995) and from g++ 12.2 / libstdc++ 12 (the programs are quoted in each test).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgeperf.client.plan.rng import (
    DEFAULT_SEED,
    MT19937,
    canonical,
    exponential_intervals_ns,
    shuffle,
    uniform_int,
    uniform_ints,
)


def _checksum(values: list[int], factor: int) -> int:
    total = 0
    for v in values:
        total = (total * factor + v) % 2**64
    return total


def test_10000th_output_of_the_default_seed_is_the_standard_value() -> None:
    g = MT19937()
    assert DEFAULT_SEED == 5489
    assert int(g.take(10000)[-1]) == 4123659995


@pytest.mark.parametrize("seed", [0, 1, 5489, 2**32 - 1, 14284205019438841327])
def test_words_equal_init_genrand_mt19937_for_seed_mod_2_32(seed: int) -> None:
    # numpy's legacy RandomState seeds through init_genrand; its raw words are mt19937's.
    reference = np.random.RandomState(seed % 2**32)._bit_generator.random_raw(2000).astype(np.uint32)
    g = MT19937(seed)
    mixed = [g(), g(), *g.take(700).tolist(), *g.take(1298).tolist()]
    assert mixed == reference.tolist()


def test_seed_keeps_only_the_low_32_bits() -> None:
    assert MT19937(2**32 + 7).take(5).tolist() == MT19937(7).take(5).tolist()


def test_peek_does_not_consume() -> None:
    g = MT19937(3)
    peeked = g.peek(1000).tolist()
    assert g.take(1000).tolist() == peeked


def test_uniform_int_distribution_matches_libstdcxx() -> None:
    # std::mt19937 g(14284205019438841327ULL); std::uniform_int_distribution<> d(0, 1023); d(g) x5
    g = MT19937(14284205019438841327)
    assert uniform_ints(g, 0, 1023, 5).tolist() == [100, 853, 31, 102, 698]


def test_lemire_rejections_match_libstdcxx() -> None:
    # std::mt19937 g(42); uniform_int_distribution<unsigned long> d(0, 3221225471) (R = 3 * 2**30,
    # a quarter of the words rejected); s = s * 31 + d(g) over 10000 draws; then g().
    g = MT19937(42)
    values = uniform_ints(g, 0, 3221225471, 10000).tolist()
    assert values[:6] == [1206478156, 2565844550, 590884810, 2357917519, 2511560501, 502571212]
    assert _checksum(values, 31) == 3608730360233540783
    assert g() == 1721775669


def test_scalar_and_vector_draws_agree_and_empty_ranges_fail() -> None:
    a, b = MT19937(9), MT19937(9)
    assert [uniform_int(a, 5, 9) for _ in range(50)] == uniform_ints(b, 5, 9, 50).tolist()
    assert uniform_int(MT19937(1), 0, 0) == 0
    with pytest.raises(ValueError, match="empty range"):
        uniform_int(a, 3, 2)


def test_single_value_range_still_consumes_a_word() -> None:
    a, b = MT19937(11), MT19937(11)
    uniform_int(a, 0, 0)
    b()
    assert a() == b()


def test_shuffle_matches_libstdcxx_for_both_algorithms() -> None:
    # std::mt19937 g(14284205019438841327ULL) after the 5 draws above:
    # std::shuffle of iota(1031) (odd n), iota(70000) (one draw per swap), iota(1024) (even n).
    g = MT19937(14284205019438841327)
    uniform_ints(g, 0, 1023, 5)
    odd = list(range(1031))
    shuffle(g, odd)
    assert odd[:8] == [181, 617, 205, 821, 187, 43, 992, 429]
    large = list(range(70000))
    shuffle(g, large)
    assert large[:8] == [12005, 28840, 59432, 67014, 14925, 22786, 62783, 62788]
    even = list(range(1024))
    shuffle(g, even)
    assert even[:8] == [128, 764, 135, 489, 916, 287, 561, 404]
    assert sorted(even) == list(range(1024))


def test_shuffle_at_the_two_draw_boundary_matches_libstdcxx() -> None:
    # std::mt19937 h(7); shuffle iota(65536) (> 65535: one draw per swap), then iota(65535)
    # (two positions per draw), then iota(5); c = c * 1000003 + x over each result.
    h = MT19937(7)
    v = list(range(65536))
    shuffle(h, v)
    assert _checksum(v, 1000003) == 11515225898360750738
    assert h() == 524374275
    w = list(range(65535))
    shuffle(h, w)
    assert _checksum(w, 1000003) == 17325656639414978893
    assert h() == 1426765422
    z = list(range(5))
    shuffle(h, z)
    assert z == [3, 4, 1, 2, 0]


def test_shuffle_of_short_lists() -> None:
    g = MT19937(1)
    empty: list[int] = []
    shuffle(g, empty)
    one = [4]
    shuffle(g, one)
    assert (empty, one) == ([], [4])
    assert g() == MT19937(1)()  # nothing drawn for n < 2


def test_canonical_takes_two_words_as_libstdcxx_generate_canonical() -> None:
    # uniform_real_distribution<double>(0, 1) after the draws and shuffles above: x3 (printed %.17g)
    g = MT19937(14284205019438841327)
    uniform_ints(g, 0, 1023, 5)
    for n in (1031, 70000, 1024):
        shuffle(g, list(range(n)))
    u = canonical(g, 3).tolist()
    assert u == [0.6835350931270131, 0.22055001231597204, 0.065143154320304722]
    words = MT19937(5).take(2)
    expected = (float(words[0]) + float(words[1]) * 2.0**32) / 2.0**64
    assert canonical(MT19937(5), 1)[0] == expected


def test_exponential_intervals_match_libstdcxx() -> None:
    # std::mt19937 s(299063814864929621ULL); std::exponential_distribution<> ex(1000.0);
    # duration_cast<nanoseconds>(duration<double>(ex(s))) x 200000: first 5 and the sum.
    s = MT19937(299063814864929621)
    ns = exponential_intervals_ns(s, 1000.0, 200000)
    assert ns[:5].tolist() == [441029, 1351455, 1689985, 979624, 275341]
    assert int(ns.sum()) == 200517283891
    mean_s = float(ns.mean()) / 1e9
    assert math.isclose(mean_s, 1 / 1000.0, rel_tol=0.01)


def test_negative_seed_is_rejected() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        MT19937(-1)
