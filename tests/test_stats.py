"""mawt.stats: two-level bootstrap intervals, paired differences, p-values, Holm, minimum detectable effect."""

from statistics import NormalDist

import numpy as np
import pytest

from mawt.stats import (bootstrap_ci, bootstrap_replicates, bootstrap_p_value, holm, minimum_detectable_effect, paired_difference,
                        paired_difference_ci, z_sum)


def test_bootstrap_interval_contains_the_mean_and_narrows_with_more_data():
    rng = np.random.default_rng(0)
    small = rng.binomial(1, 0.6, size=(2, 40))
    large = rng.binomial(1, 0.6, size=(8, 640))
    a, b = bootstrap_ci(small), bootstrap_ci(large)
    assert a.low <= a.mean <= a.high and b.low <= b.mean <= b.high
    assert a.mean == pytest.approx(small.mean()) and b.mean == pytest.approx(large.mean())
    assert (b.high - b.low) < (a.high - a.low) / 3
    assert 0.55 < b.mean < 0.65 and b.low < 0.6 < b.high


def test_bootstrap_hand_checked_values():
    # all-equal scores: no variability, zero-width interval at the value
    assert bootstrap_ci(np.ones((3, 10))) == bootstrap_ci(np.ones((3, 10)))
    ci = bootstrap_ci(np.ones((3, 10)))
    assert (ci.mean, ci.low, ci.high) == (1.0, 1.0, 1.0)
    # one seed, items [1, 0, 1, 1]: mean 0.75; a 4-item resample mean is k/4, so the bounds are on that grid
    ci = bootstrap_ci([[1, 0, 1, 1]])
    assert ci.mean == 0.75 and ci.low in (0.25, 0.5) and ci.high == 1.0
    # seed-level spread is in the interval: seed 0 all wrong, seed 1 all right
    ci = bootstrap_ci([[0] * 50, [1] * 50])
    assert ci.mean == 0.5 and ci.low == 0.0 and ci.high == 1.0
    # deterministic for a given seed
    assert bootstrap_ci([[1, 0, 1, 0, 0]], seed=3) == bootstrap_ci([[1, 0, 1, 0, 0]], seed=3)


def test_paired_difference_of_identical_runs_is_exactly_zero():
    scores = np.random.default_rng(1).binomial(1, 0.5, size=(2, 50))
    d = paired_difference_ci(scores, scores.copy())
    assert (d.mean, d.low, d.high) == (0.0, 0.0, 0.0) and not d.excludes_zero


def test_paired_difference_is_paired_and_checks_shapes():
    rng = np.random.default_rng(2)
    base = rng.binomial(1, 0.5, size=(2, 60))
    better = base.copy()
    better[:, :30] = 1  # strictly better on half the items, never worse
    d = paired_difference_ci(better, base)
    assert d.mean == pytest.approx((better - base).mean()) and d.low > 0 and d.excludes_zero
    # an unpaired view of the same data would be far wider: pairing removes the item variance
    unpaired = bootstrap_ci(better).low - bootstrap_ci(base).high
    assert d.low > unpaired
    # the untuned base (one row) is compared with every seed
    one = paired_difference_ci(base, base[:1])
    assert one.mean == pytest.approx((base - base[:1]).mean())
    with pytest.raises(ValueError, match="same items"):
        paired_difference_ci(base, base[:, :10])
    with pytest.raises(ValueError, match="same seeds"):
        paired_difference_ci(np.zeros((3, 60)), base)



# ---------------------------------------------------------------- p-values


def test_p_value_inverts_the_percentile_interval():
    # frac(reps <= 0) = 1/4, frac(reps >= 0) = 3/4: p = 2 * 1/4
    assert bootstrap_p_value([-1.0, 1.0, 2.0, 3.0]) == 0.5
    assert bootstrap_p_value([0.0] * 10) == 1.0  # no difference at all
    assert bootstrap_p_value([-2.0, -1.0, 1.0, 2.0]) == 1.0  # symmetric around 0: capped at 1
    assert bootstrap_p_value(np.arange(1, 2001)) == 1 / 2000  # never 0: floored at 1 / n_boot
    assert bootstrap_p_value(-np.arange(1, 101)) == 1 / 100
    with pytest.raises(ValueError):
        bootstrap_p_value([1.0, np.nan])


def test_paired_p_value_matches_the_exact_bootstrap_tail():
    # one seed, 60 items, the variant right and the baseline wrong on 4 of them, equal elsewhere. A replicate's
    # difference is (count of those 4 items drawn) / 60, which is <= 0 only when none is drawn:
    # P = (56/60)^60, so the two-sided p is 2 * (56/60)^60 = 0.0317...
    base = np.zeros((1, 60))
    better = base.copy()
    better[0, :4] = 1
    exact = 2 * (56 / 60) ** 60
    d = paired_difference(better, base, n_boot=20000)
    assert d.mean == pytest.approx(4 / 60)
    assert d.p == pytest.approx(exact, abs=0.006)  # Monte Carlo SD of the estimate: 0.0018
    # the interval agrees: its 2.5% quantile is above 0 because P(no such item drawn) < 2.5%
    assert d.low > 0 and d.excludes_zero
    # identical runs: p = 1; an effect on every item: the floor
    assert paired_difference(base, base).p == 1.0
    assert paired_difference(np.ones((2, 30)), np.zeros((2, 30)), n_boot=500).p == 1 / 500


def test_paired_p_value_agrees_with_the_normal_approximation_on_many_items():
    rng = np.random.default_rng(5)
    diff = rng.normal(0.0, 0.5, size=(1, 2000))
    diff += 0.025 - diff.mean()  # sample mean exactly 0.025; the bootstrap SE is sd / sqrt(2000), about 0.011
    z = 0.025 / (diff.std() / np.sqrt(2000))
    expected = 2 * (1 - NormalDist().cdf(z))  # about 0.025
    assert 0.01 < expected < 0.5
    d = paired_difference(diff, np.zeros_like(diff), n_boot=20000)
    assert d.p == pytest.approx(expected, abs=0.015)


# ---------------------------------------------------------------- Holm


def test_holm_against_a_hand_computed_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert list(adjusted < 0.05) == [True, False, False, True]  # unadjusted, all four were < 0.05
    # capped at 1, one p-value unchanged, NaN (a variant without a baseline) neither counted nor changed
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([0.02]) == pytest.approx([0.02])
    out = holm([np.nan, 0.01, np.nan, 0.04])
    assert np.isnan(out[0]) and np.isnan(out[2]) and out[1] == pytest.approx(0.02) and out[3] == pytest.approx(0.04)
    assert np.isnan(holm([np.nan])).all()
    with pytest.raises(ValueError):
        holm([1.5])


# ---------------------------------------------------------------- minimum detectable effect


def _two_level_se(diff: np.ndarray) -> float:
    """The exact SE of the two-level bootstrap mean of a (S x N) matrix.

    With D[s, j] = m + a_s + b_j + g_sj (row effects, column effects, interaction; each with zero means), a
    replicate draws S rows and N columns independently with replacement; the cross terms vanish in expectation
    and Var = var(a)/S + var(b)/N + var(g)/(S N) (population variances over the matrix).
    """
    S, N = diff.shape
    m = diff.mean()
    a = diff.mean(axis=1) - m
    b = diff.mean(axis=0) - m
    g = diff - m - a[:, None] - b[None, :]
    return float(np.sqrt((a**2).mean() / S + (b**2).mean() / N + (g**2).mean() / (S * N)))


def test_z_sum_is_the_textbook_constant():
    assert z_sum() == pytest.approx(1.959964 + 0.841621, abs=1e-5)
    assert minimum_detectable_effect(0.1) == pytest.approx(0.28016, abs=1e-4)


@pytest.mark.parametrize("seeds", [1, 3, 6])
def test_mde_is_z_sum_times_the_analytic_se_of_the_paired_difference(seeds):
    # simulated seeds x items scores of a variant and its baseline: a true difference of 0.1, seed effects,
    # item difficulty shared by both (which the pairing cancels), and per-(seed, item) noise
    rng = np.random.default_rng(11 + seeds)
    n_items, delta = 300, 0.1
    difficulty = rng.normal(0, 1.0, n_items)
    base = 0.5 + difficulty + rng.normal(0, 0.3, (seeds, 1)) + rng.normal(0, 0.4, (seeds, n_items))
    variant = base + delta + rng.normal(0, 0.05, (seeds, 1)) + rng.normal(0, 0.4, (seeds, n_items))
    d = paired_difference(variant, base, n_boot=4000)
    se = _two_level_se(variant - base)
    assert se > 0
    # the bootstrap SE is an SD of 4000 replicates: relative SD about 1.1%; 8% holds for any draw we might make
    assert d.se == pytest.approx(se, rel=0.08)
    assert d.mde == pytest.approx(z_sum() * se, rel=0.08)
    assert d.mde == pytest.approx(z_sum() * d.se)
    assert abs(d.mean - delta) < 4 * se  # the estimate is near the true difference
    # the pairing matters: the variant's own SE carries the item difficulty, which the paired difference cancels
    assert _two_level_se(variant) > 1.5 * se


def test_mde_of_one_seed_is_z_sum_times_sd_over_sqrt_n():
    rng = np.random.default_rng(3)
    diff = rng.binomial(1, 0.3, size=(1, 400)) - rng.binomial(1, 0.2, size=(1, 400))
    d = paired_difference(diff, np.zeros_like(diff), n_boot=4000)
    assert d.mde == pytest.approx(z_sum() * diff.std() / np.sqrt(400), rel=0.08)
    assert paired_difference(diff, diff).mde == 0.0  # identical runs: zero SE


def test_pass_at_1_items_bootstrap_to_the_design_standard_error_and_samples_are_not_extra_items():
    """n samples per item (temperature > 0): the item's score is its samples' mean (pass@1) and the
    (seeds x items) bootstrap of those means estimates the standard error of the mean over new seeds,
    items AND samples (their noise is inside the item means). Treating samples as independent items
    would claim an interval ~3x too narrow here (items differ far more than samples of one item)."""
    rng = np.random.default_rng(0)
    S, N, K = 3, 150, 4

    def draw():
        p_item = rng.beta(0.6, 0.9, N)  # items differ in difficulty
        p = np.clip(p_item[None, :] + rng.normal(0, 0.03, (S, 1)), 0, 1)  # seeds shift a little
        return rng.random((S, N, K)) < p[..., None]  # (seeds, items, samples) 0/1

    truth = np.std([draw().mean() for _ in range(600)])  # the estimator's spread over new designs
    ours, naive = [], []
    for i in range(10):
        d = draw()
        ours.append(bootstrap_replicates(d.mean(-1), n_boot=400, seed=i).std())
        naive.append(bootstrap_replicates(d.reshape(1, -1).astype(float), n_boot=400, seed=i).std())
    assert 0.75 < np.mean(ours) / truth < 1.35  # measured 0.90
    assert np.mean(naive) / truth < 0.6  # measured 0.33
