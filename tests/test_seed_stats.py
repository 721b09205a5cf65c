"""Statistics for runs repeated over seeds on shared items (skillgap.verify), on cases worked by hand."""

import itertools

import numpy as np
import pytest

from skillgap.verify import cluster_bootstrap, cluster_mcnemar_p, mcnemar_p


def test_clustered_mcnemar_with_one_seed_is_mcnemar():
    for gained, lost in [(0, 0), (12, 2), (5, 5), (30, 11), (0, 9)]:
        assert cluster_mcnemar_p([1] * gained + [-1] * lost + [0] * 7) == pytest.approx(mcnemar_p(gained, lost))


def test_clustered_mcnemar_keeps_an_items_seeds_together():
    """Three seeds, five items each right after and wrong before in every seed: pooled, 15 won and 0 lost
    (p = 2 / 2^15); clustered, five items each up by 3, whose signs flip per item: p = 2 / 2^5."""
    assert cluster_mcnemar_p([3] * 5) == pytest.approx(2 / 2**5)
    assert mcnemar_p(15, 0) == pytest.approx(2 / 2**15)
    assert cluster_mcnemar_p([2, 2, 1, 0]) == pytest.approx(2 / 8)  # only (+, +, +) reaches 5


def test_clustered_mcnemar_against_enumerating_every_sign():
    rng = np.random.default_rng(0)
    for _ in range(50):
        changes = [int(c) for c in rng.integers(-3, 4, size=rng.integers(1, 11))]
        sums = [sum(s * c for s, c in zip(signs, changes)) for signs in itertools.product((1, -1), repeat=len(changes))]
        assert cluster_mcnemar_p(changes) == pytest.approx(sum(abs(t) >= abs(sum(changes)) for t in sums) / len(sums))


def test_bootstrap_over_seeds_alone_two_seeds():
    """Seed 0 gets every item right, seed 1 none: whichever items are drawn, a draw's mean is 0, 0.5 or 1 as it
    picks seed 1 twice, one of each, or seed 0 twice (1/4, 1/2, 1/4), so the 95% interval is [0, 1]."""
    bits = np.array([[1.0] * 10, [0.0] * 10])
    est, lo, hi = cluster_bootstrap(lambda w: (w @ bits.T) / w.sum(1, keepdims=True), 2, 10, 2000)
    assert (est, lo, hi) == (0.5, 0.0, 1.0)


def test_bootstrap_over_items_alone_one_seed():
    """One seed, 5 of 10 items right: a draw's mean is Binomial(10, 1/2) / 10, whose 2.5% and 97.5% quantiles are
    2 and 8 (P(X <= 1) = 1.1%, P(X <= 2) = 5.5%), so the interval is [0.2, 0.8]; the same seed, the same draws."""
    bits = np.array([[1.0] * 5 + [0.0] * 5])
    got = cluster_bootstrap(lambda w: (w @ bits.T) / 10, 1, 10, 2000, seed=3)
    assert got == [0.5, 0.2, 0.8]
    assert got == cluster_bootstrap(lambda w: (w @ bits.T) / 10, 1, 10, 2000, seed=3)


def test_bootstrap_combine_sees_the_drawn_seeds():
    """`combine` gets each draw's seeds (with their trailing axes). The max over the three drawn seeds of a
    per-seed constant 1, 2, 3 is 3 unless no pick is seed 2 ((2/3)^3 = 30% of draws) and 1 when every pick is
    seed 0 (1/27 = 3.7% of draws, above 2.5%): the interval is [1, 3]."""
    per_seed = lambda w: np.broadcast_to(np.array([1.0, 2.0, 3.0])[None, :, None], (len(w), 3, 1))  # noqa: E731
    est, lo, hi = cluster_bootstrap(per_seed, 3, 4, 2000, combine=lambda v: v.max(axis=(1, 2)))
    assert (est, lo, hi) == (3.0, 1.0, 3.0)
