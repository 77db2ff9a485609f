"""The false-alarm budget: exact conformal ranks, the threshold's strict comparison, the binomial
video rule, and the calibration split."""

from fractions import Fraction
from math import comb

import numpy as np
import pytest

from vidshield.detection.calibration import (
    binomial_tail,
    binomial_tails,
    conformal_rank,
    fpr_threshold,
    min_clean_windows,
    split_videos,
    video_flagged,
    windows_allowed,
)
from vidshield.detection.exception import route


@pytest.mark.parametrize(
    "n, fpr, k",
    [
        (99, 0.01, 99),  # ceil(100 * 0.99) = 99: the largest score
        (100, 0.01, 100),  # ceil(101 * 0.99) = ceil(99.99)
        (199, 0.01, 198),  # ceil(200 * 0.99) = 198 exactly (no float round-up to 199)
        (19, 0.05, 19),
        (39, 0.05, 38),  # 40 * 0.95 = 38
        (9, 0.1, 9),
        (1000, 0.1, 901),  # ceil(1001 * 0.9) = ceil(900.9)
    ],
)
def test_conformal_rank_is_exact(n, fpr, k):
    assert conformal_rank(n, fpr) == k


@pytest.mark.parametrize("fpr, n_min", [(0.01, 99), (0.05, 19), (0.1, 9), (0.2, 4), (0.03, 33)])
def test_fewest_clean_windows(fpr, n_min):
    assert min_clean_windows(fpr) == n_min
    assert conformal_rank(n_min, fpr) <= n_min
    with pytest.raises(ValueError, match=f"too few for a false-alarm rate of {fpr:g}.*at least {n_min}"):
        conformal_rank(n_min - 1, fpr)


def test_threshold_flags_strictly_above_the_kth_score():
    scores = np.arange(100) / 100  # 0.00 .. 0.99; n = 100, fpr 0.05 -> k = ceil(101 * 0.95) = 96
    t = fpr_threshold(scores[::-1], 0.05)
    assert (t.rank, t.n, t.score_at_rank) == (96, 100, 0.95)
    assert t.threshold > 0.95 and np.nextafter(t.threshold, -np.inf) == 0.95
    assert t.calibration_fpr == 0.04  # 0.96 .. 0.99 fire
    assert route(0.95, t.threshold, 1.0) == "clean" and route(0.96, t.threshold, 1.0) == "sparse"


def test_threshold_with_ties_keeps_the_budget():
    """Discrete scores (alpha = j / 16): 95 clean windows at 0, 5 at 1/16; fpr 0.05 -> k = 96, so
    s_(96) = 1/16 and nothing fires (firing the five would be 5 % > the bound 1 - 96/101)."""
    scores = [0.0] * 95 + [1 / 16] * 5
    t = fpr_threshold(scores, 0.05)
    assert t.score_at_rank == 1 / 16 and t.calibration_fpr == 0.0
    t = fpr_threshold(scores, 0.1)  # k = ceil(101 * 0.9) = 91: s_(91) = 0, the five fire
    assert t.score_at_rank == 0.0 and t.calibration_fpr == 0.05


def exact_tail(k, n, p):
    p = Fraction(repr(p))  # the decimal written
    return sum(comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))


@pytest.mark.parametrize("n, p", [(1, 0.01), (2, 0.01), (10, 0.05), (100, 0.01), (57, 0.1)])
def test_binomial_tail_matches_exact_sums(n, p):
    for k in range(0, n + 2):
        assert binomial_tail(k, n, p) == pytest.approx(float(exact_tail(k, n, p)), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(
    "n, p, allowed",
    [
        (1, 0.01, 0),  # P(X >= 1) = 0.01 <= 0.01: one firing window flags a one-window clip
        (2, 0.01, 1),  # P(X >= 1) = 0.0199 > 0.01; P(X >= 2) = 0.0001
        (4, 0.01, 1),
        (100, 0.01, 4),  # P(X >= 4) = 0.0184 > 0.01, P(X >= 5) = 0.0034
        (1000, 0.01, 18),  # P(X >= 18) = 0.0138, P(X >= 19) = 0.0069 (mean 10)
        (20, 0.05, 3),
    ],
)
def test_windows_allowed_is_the_smallest_improbable_count_minus_one(n, p, allowed):
    assert windows_allowed(n, p) == allowed
    # definition, checked with exact sums: a + 1 fired windows is improbable, a is not
    assert exact_tail(allowed + 1, n, p) <= Fraction(repr(p))
    assert allowed == 0 or exact_tail(allowed, n, p) > Fraction(repr(p))
    assert not video_flagged(allowed, n, p) and video_flagged(allowed + 1, n, p)


def test_windows_allowed_equals_the_rule_on_scipys_binomial_tail():
    """The numpy tails (scan imports no scipy) give scipy's ``binom.sf`` counts on every video length
    up to 600 windows and on long videos (an hour of 16-frame windows is about 5,600)."""
    from scipy.stats import binom

    for p in (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.3):
        for n in [*range(1, 601), 1000, 5625, 20000]:
            for level in (None, 0.001):
                tails = binom.sf(np.arange(n), n, p)
                below = np.nonzero(tails <= (p if level is None else level) * (1 + 1e-9))[0]
                assert windows_allowed(n, p, level) == (int(below[0]) if below.size else n), (n, p, level)
    ref = binom.sf(np.arange(-1, 10001), 10000, 0.01)
    normal = ref > 1e-250  # both lose digits in the subnormal range (P(X >= 10000) = 1e-20000)
    assert normal.sum() > 500 and np.allclose(binomial_tails(10000, 0.01)[normal], ref[normal], rtol=1e-10, atol=0)


def test_binomial_tails_at_the_ends_of_p():
    assert binomial_tails(3, 0.0).tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert binomial_tails(3, 1.0).tolist() == [1.0, 1.0, 1.0, 1.0, 0.0]
    assert binomial_tails(0, 0.3).tolist() == [1.0, 0.0]


def test_a_stricter_video_level_allows_more_windows():
    assert windows_allowed(100, 0.01, level=0.001) == 5  # P(X >= 6) = 5.3e-4, P(X >= 5) = 3.4e-3


def test_split_keeps_videos_whole_and_is_seeded():
    names = [f"v{i:02d}.mkv" for i in range(10)]
    cal, held = split_videos(names, 0.3, seed=0)
    assert len(held) == 3 and sorted(cal + held) == names and not set(cal) & set(held)
    assert split_videos(names[::-1], 0.3, seed=0) == (cal, held)
    assert split_videos(names[:2], 0.1)[1] != [] and split_videos(names, 0.0) == (names, [])
