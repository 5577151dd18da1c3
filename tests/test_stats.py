"""mawt.statistics: crossed random-effects intervals, paired differences, p-values, TOST, Holm, minimum detectable effect.

Checked against independent truths: the classic one-sample t interval (one seed or
one item), mean squares of a 2 x 3 matrix worked out by hand, the seed-level t test
when the effect is the same on every item, scipy's noncentral t, and the textbook
z-sum. `tests/test_stats_calibration.py` checks the method on simulated studies.
"""

import numpy as np
import pytest
from scipy import stats as sps

from mawt.statistics.intervals import components, holm, interval, mean_squares, tost_p_value, variance_of_mean
from mawt.statistics.paired import paired_difference
from mawt.statistics.power import detectable_ncp, minimum_detectable_effect, t_power

# ---------------------------------------------------------------- identical runs, pairing, shapes, inputs


def test_paired_difference_of_identical_runs_is_exactly_zero():
    scores = np.random.default_rng(1).binomial(1, 0.5, size=(2, 50))
    d = paired_difference(scores, scores.copy(), margin=0.02)
    assert (d.mean, d.low, d.high) == (0.0, 0.0, 0.0) and not d.excludes_zero
    assert d.se == 0.0 and d.p == 1.0 and d.mde == 0.0
    assert d.p_equivalent == 0.0  # no variability and a difference of 0: inside any margin
    assert d.interval == interval(np.zeros((2, 50)))


def test_all_equal_scores_have_a_zero_width_interval():
    ci = interval(np.ones((3, 10)))
    assert (ci.mean, ci.low, ci.high) == (1.0, 1.0, 1.0)
    # a constant difference on every cell: SE 0, p 0, the interval is the point
    d = paired_difference(np.ones((3, 10)), np.zeros((3, 10)))
    assert (d.mean, d.low, d.high, d.se, d.p) == (1.0, 1.0, 1.0, 0.0, 0.0) and d.excludes_zero


def test_paired_difference_is_paired_and_checks_shapes():
    rng = np.random.default_rng(2)
    base = rng.binomial(1, 0.5, size=(2, 60))
    better = base.copy()
    better[:, :30] = 1  # strictly better on half the items, never worse
    d = paired_difference(better, base)
    assert d.mean == pytest.approx((better - base).mean()) and d.low > 0 and d.excludes_zero
    # an unpaired view of the same data would be far wider: pairing removes the item variance
    assert d.low > interval(better).low - interval(base).high
    assert (d.components.seeds, d.components.items) == (2, 60)
    with pytest.raises(ValueError, match="same items"):
        paired_difference(base, base[:, :10])
    with pytest.raises(ValueError, match="same seeds"):
        paired_difference(np.zeros((3, 60)), base)


def test_single_row_base_is_broadcast_to_every_seed():
    rng = np.random.default_rng(4)
    tuned = rng.binomial(1, 0.6, size=(3, 80))
    base = rng.binomial(1, 0.4, size=(1, 80))  # the untuned base: one row, no seeds
    d = paired_difference(tuned, base)
    same = paired_difference(tuned, np.repeat(base, 3, axis=0))
    assert d.mean == pytest.approx((tuned - base).mean())
    assert (d.mean, d.low, d.high, d.se, d.df, d.p) == (same.mean, same.low, same.high, same.se, same.df, same.p)
    assert d.components.seeds == 3
    flipped = paired_difference(base, tuned)  # either side may be the single row
    assert flipped.mean == pytest.approx(-d.mean) and flipped.se == pytest.approx(d.se)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_are_rejected(bad):
    scores = np.zeros((2, 5))
    scores[1, 3] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        interval(scores)
    with pytest.raises(ValueError, match="NaN or infinite"):
        paired_difference(scores, np.zeros((2, 5)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        paired_difference(np.zeros((2, 5)), scores)
    with pytest.raises(ValueError, match="non-empty"):
        interval(np.zeros((2, 0)))


# ---------------------------------------------------------------- independent truths for the interval


def test_one_seed_is_the_classic_one_sample_t_interval():
    rng = np.random.default_rng(7)
    x = rng.binomial(1, 0.3, size=(1, 120)).astype(float) - rng.binomial(1, 0.2, size=(1, 120))
    N = x.shape[1]
    low, high = sps.t.interval(0.95, N - 1, loc=x.mean(), scale=sps.sem(x[0]))
    ci = interval(x)
    assert (ci.low, ci.high) == (pytest.approx(low, rel=1e-10), pytest.approx(high, rel=1e-10))
    # the paired difference of one seed: the same interval and the one-sample t test's p-value
    d = paired_difference(x, np.zeros_like(x))
    assert d.df == N - 1 and d.se == pytest.approx(sps.sem(x[0]), rel=1e-12)
    assert (d.low, d.high) == (pytest.approx(low, rel=1e-10), pytest.approx(high, rel=1e-10))
    assert d.p == pytest.approx(sps.ttest_1samp(x[0], 0.0).pvalue, rel=1e-10)
    # a 1-D vector is one seed
    assert interval(x[0]) == ci


def test_one_item_is_the_one_sample_t_interval_over_seeds():
    seeds = np.array([[0.42], [0.55], [0.47], [0.61]])  # four seeds' scores on one item
    low, high = sps.t.interval(0.95, 3, loc=seeds.mean(), scale=sps.sem(seeds[:, 0]))
    ci = interval(seeds)
    assert (ci.low, ci.high) == (pytest.approx(low, rel=1e-10), pytest.approx(high, rel=1e-10))
    assert components(seeds).df == 3


def test_mean_squares_and_interval_of_a_2x3_matrix_by_hand():
    m = np.array([[1.0, 0.0, 2.0],
                  [3.0, 4.0, 5.0]])
    # grand mean 2.5; row means 1, 4; column means 2, 2, 3.5
    # SS_seed = N * sum (row - grand)^2 = 3 * (2.25 + 2.25) = 13.5       -> MS_seed = 13.5 / (S-1 = 1) = 13.5
    # SS_item = S * sum (col - grand)^2 = 2 * (0.25 + 0.25 + 1) = 3       -> MS_item = 3 / (N-1 = 2) = 1.5
    # residuals m - row - col + grand = [[0.5, -0.5, 0], [-0.5, 0.5, 0]]: SS = 1 -> MS_resid = 1 / 2 = 0.5
    # (SS_total = sum (m - 2.5)^2 = 17.5 = 13.5 + 3 + 1)
    ms_s, ms_i, ms_r = mean_squares(m)
    assert (float(ms_s), float(ms_i), float(ms_r)) == pytest.approx((13.5, 1.5, 0.5), abs=1e-12)
    c = components(m)
    # V = (13.5 + 1.5 - 0.5) / (S N = 6) = 14.5 / 6; seed (13.5 - 0.5) / 3; item (1.5 - 0.5) / 2; cell 0.5
    assert c.variance == pytest.approx(14.5 / 6, abs=1e-12)
    assert (c.seed, c.item, c.cell) == pytest.approx((13 / 3, 0.5, 0.5), abs=1e-12)
    # df: Satterthwaite with MS_seed at its upper value 13.5 * 1 / chi2_1(0.25) = 13.5 / 0.101531 = 132.96
    up = 13.5 / 0.10153104426762156
    df = (up + 1.5 - 0.5) ** 2 / (up**2 / 1 + 1.5**2 / 2 + 0.5**2 / 2)  # = 133.96^2 / 17680.6 = 1.0150
    assert c.df == pytest.approx(df, rel=1e-9) and c.df == pytest.approx(1.0150, abs=1e-4)
    ci = interval(m)
    half = sps.t.ppf(0.975, df) * np.sqrt(14.5 / 6)
    assert (ci.mean, ci.low, ci.high) == pytest.approx((2.5, 2.5 - half, 2.5 + half), rel=1e-9)


def test_vectorised_mean_squares_match_the_single_matrix_path():
    rng = np.random.default_rng(9)
    batch = rng.normal(size=(5, 3, 40))
    V, df, _ = variance_of_mean(batch)
    for k in range(5):
        c = components(batch[k])
        assert (V[k], df[k]) == (pytest.approx(c.variance, rel=1e-12), pytest.approx(c.df, rel=1e-12))


def test_variance_of_the_mean_is_unbiased_under_the_crossed_model():
    # d = mu + u_s + v_i + e_si with known components: E[V] = s_u^2/S + s_v^2/N + s_e^2/(SN)
    rng = np.random.default_rng(10)
    S, N, n = 4, 30, 20000
    su, sv, se = 0.3, 0.5, 1.0
    d = (rng.normal(0, su, (n, S, 1)) + rng.normal(0, sv, (n, 1, N)) + rng.normal(0, se, (n, S, N)))
    truth = su**2 / S + sv**2 / N + se**2 / (S * N)
    V, _, _ = variance_of_mean(d)
    assert V.mean() == pytest.approx(truth, rel=0.03)  # relative MC SD about 0.6%
    assert d.mean((-2, -1)).var() == pytest.approx(truth, rel=0.05)  # the simulation itself


def test_no_item_heterogeneity_reduces_to_the_seed_level_t_test():
    """diff = seed effect + iid noise (s_v^2 = 0 by construction). V is always
    (MS_seed + MS_item - MS_resid) / (S N); with s_v^2 = 0, MS_item and MS_resid both estimate s_e^2, so for many
    items V -> MS_seed / (S N) = var(row means) / S (the seed-level t test's squared SE) and the Satterthwaite df ->
    S - 1 (MS_item and MS_resid have ~N degrees of freedom): the p-value is the one-sample t test's on the S seed
    means."""
    rng = np.random.default_rng(12)
    S, N = 4, 20000
    diff = 0.05 + rng.normal(0, 0.1, (S, 1)) + rng.normal(0, 1.0, (S, N))
    ms_s, ms_i, ms_r = (float(v) for v in mean_squares(diff))
    rows = diff.mean(axis=1)
    assert ms_s == pytest.approx(N * rows.var(ddof=1), rel=1e-12)  # MS_seed is N x the variance of the row means
    d = paired_difference(diff, np.zeros_like(diff))
    assert d.se**2 == pytest.approx((ms_s + ms_i - ms_r) / (S * N), rel=1e-12)
    seed_level = sps.ttest_1samp(rows, 0.0)
    assert d.se == pytest.approx(sps.sem(rows), rel=0.01)
    assert d.df == pytest.approx(S - 1, abs=0.01)
    assert d.mean == pytest.approx(rows.mean(), rel=1e-12)
    assert d.p == pytest.approx(seed_level.pvalue, rel=0.02)
    low, high = sps.t.interval(0.95, S - 1, loc=rows.mean(), scale=sps.sem(rows))
    assert (d.low, d.high) == (pytest.approx(low, rel=0.02), pytest.approx(high, rel=0.02))


def test_samples_are_not_extra_items():
    """n samples per item (temperature > 0): the item's score is its samples' mean (pass@1) and the
    (seeds x items) SE estimates the spread of the mean over new seeds, items AND samples (their noise is
    inside the item means). Treating samples as independent items would claim an SE ~3x too small here."""
    rng = np.random.default_rng(0)
    S, N, K = 3, 150, 4

    def draw():
        p_item = rng.beta(0.6, 0.9, N)  # items differ in difficulty
        p = np.clip(p_item[None, :] + rng.normal(0, 0.03, (S, 1)), 0, 1)  # seeds shift a little
        return rng.random((S, N, K)) < p[..., None]  # (seeds, items, samples) 0/1

    truth = np.std([draw().mean() for _ in range(600)])  # the estimator's spread over new designs
    ours = [components(draw().mean(-1)).se for _ in range(40)]
    naive = [components(draw().reshape(1, -1).astype(float)).se for _ in range(40)]
    assert 0.75 < np.mean(ours) / truth < 1.35
    assert np.mean(naive) / truth < 0.6


# ---------------------------------------------------------------- power, MDE


@pytest.mark.parametrize("df", [5, 10, 30])
@pytest.mark.parametrize("ncp", [1.0, 2.0, 3.0, 4.0])
def test_t_power_is_the_noncentral_t(df, ncp):
    crit = sps.t.ppf(0.975, df)
    expected = sps.nct.sf(crit, df, ncp) + sps.nct.cdf(-crit, df, ncp)
    assert t_power(ncp, df) == pytest.approx(expected, abs=1e-6)
    assert t_power(ncp, df, alpha=0.01) == pytest.approx(
        sps.nct.sf(sps.t.ppf(0.995, df), df, ncp) + sps.nct.cdf(-sps.t.ppf(0.995, df), df, ncp), abs=1e-6)


def test_detectable_ncp_tends_to_the_z_sum():
    assert detectable_ncp(1e6) == pytest.approx(1.959964 + 0.841621, abs=1e-5)
    # few degrees of freedom need a larger effect; the ncp detected with 80% power has power 0.8
    assert detectable_ncp(5) > detectable_ncp(30) > detectable_ncp(1e6)
    assert t_power(detectable_ncp(10), 10) == pytest.approx(0.8, abs=1e-4)
    # Holm's first step of 3 comparisons: z_{1 - 0.05/6} + z_{0.8}
    assert detectable_ncp(1e6, alpha=0.05 / 3) == pytest.approx(
        sps.norm.ppf(1 - 0.05 / 6) + sps.norm.ppf(0.8), abs=1e-5)


def test_mde_is_ncp_times_the_debiased_se():
    # c4(df) = sqrt(2 / df) Gamma((df + 1) / 2) / Gamma(df / 2)
    # c4(4) = sqrt(1/2) Gamma(5/2) / Gamma(2) = 3 sqrt(pi) / (4 sqrt(2)) = 0.939986
    c4 = 0.9399856029866254
    assert minimum_detectable_effect(0.1, 4) == pytest.approx(detectable_ncp(4) * 0.1 / c4, rel=1e-9)
    assert minimum_detectable_effect(0.1, 1e6) == pytest.approx(0.1 * (1.959964 + 0.841621), abs=1e-5)
    assert minimum_detectable_effect(0.0, 10) == 0.0 and np.isnan(minimum_detectable_effect(np.nan, 10))
    # paired_difference reports it at its alpha, or at mde_alpha (a Holm family's first step)
    rng = np.random.default_rng(3)
    diff = rng.binomial(1, 0.3, size=(3, 400)) - rng.binomial(1, 0.2, size=(3, 400))
    d = paired_difference(diff, np.zeros_like(diff))
    assert d.mde == pytest.approx(minimum_detectable_effect(d.se, d.df), rel=1e-12)
    holm3 = paired_difference(diff, np.zeros_like(diff), mde_alpha=0.05 / 3)
    assert holm3.mde == pytest.approx(minimum_detectable_effect(d.se, d.df, 0.05 / 3), rel=1e-12)
    assert holm3.mde > d.mde and (holm3.low, holm3.high, holm3.p) == (d.low, d.high, d.p)


def test_mde_with_a_base_rate_accounts_for_the_variance_under_the_alternative():
    se, df = 0.02, 40
    plain = minimum_detectable_effect(se, df)
    assert minimum_detectable_effect(se, df, base_rate=None) == plain
    at_17 = minimum_detectable_effect(se, df, base_rate=0.17)
    assert at_17 > plain
    # by the definition, not the iteration: the two-sided t-test at 0.05 detects a true difference of this
    # size with 80% power when its SE is the one under the alternative, se sqrt((p' (1 - p') + q) / (2 q)) at
    # p' = 0.17 + MDE, q = 0.17 * 0.83, de-biased by c4(df); the power from scipy's noncentral t
    from scipy import special, stats

    q = 0.17 * 0.83
    p1 = 0.17 + at_17
    c4 = np.sqrt(2 / df) * np.exp(special.gammaln((df + 1) / 2) - special.gammaln(df / 2))
    ncp = at_17 * c4 / (se * np.sqrt((p1 * (1 - p1) + q) / (2 * q)))
    crit = stats.t.ppf(0.975, df)
    assert stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp) == pytest.approx(0.80, abs=1e-6)
    # at 0.5 a 0/1 score's variance is largest already: no change
    assert minimum_detectable_effect(se, df, base_rate=0.5) == pytest.approx(plain, rel=1e-12)


def test_the_probit_slope_is_scipys_normal_pdf_of_its_ppf_to_the_bit():
    """The MDE's seed-share scaling reads phi(Phi^-1(p))^2 without scipy.stats' per-call overhead; it must be
    scipy.stats.norm's number exactly (no MDE, verdict or table may move), tails and edges included."""
    from mawt.statistics.power import probit_slope_squared

    ps = [1e-300, 5e-324, 1e-16, 1e-9, 0.05, 0.17, 0.3, 0.5, 0.5 + 1e-12, 0.83, 0.95, 1 - 1e-9, 1 - 1e-16]
    ps += list(np.random.default_rng(0).uniform(0, 1, 200))
    for p in ps:
        assert probit_slope_squared(p) == float(sps.norm.pdf(sps.norm.ppf(p)) ** 2), p
    assert probit_slope_squared(0.0) == probit_slope_squared(1.0) == probit_slope_squared(-0.1) == 0.0
    assert probit_slope_squared(0.5) == pytest.approx(1 / (2 * np.pi), rel=1e-15)


# ---------------------------------------------------------------- equivalence (TOST)


@pytest.mark.parametrize("df", [3, 12, 200])
def test_tost_is_equivalent_exactly_when_the_1_minus_2alpha_interval_lies_within_the_margin(df):
    se, margin, alpha = 0.01, 0.03, 0.05
    half = sps.t.ppf(1 - alpha, df) * se  # the (1 - 2 alpha) t interval's half-width
    means = np.linspace(-0.06, 0.06, 241)
    p = tost_p_value(means, se, df, margin)
    inside = (means - half > -margin) & (means + half < margin)
    assert inside.any() and not inside.all()
    boundary = np.isclose(np.abs(means) + half, margin, atol=1e-12)
    assert ((p < alpha) == inside)[~boundary].all()
    # at the boundary p = alpha; the p-value is the larger one-sided p
    edge = margin - half
    assert float(tost_p_value(edge, se, df, margin)) == pytest.approx(alpha, rel=1e-9)
    assert float(tost_p_value(0.0, se, df, margin)) == pytest.approx(sps.t.sf(margin / se, df), rel=1e-12)
    # paired_difference uses the same test
    rng = np.random.default_rng(df)
    diff = rng.normal(0.0, 0.2, size=(3, 500))
    d = paired_difference(diff, np.zeros_like(diff), margin=margin)
    assert d.p_equivalent == pytest.approx(float(tost_p_value(d.mean, d.se, d.df, margin)), rel=1e-12)
    assert d.margin == margin and np.isnan(paired_difference(diff, np.zeros_like(diff)).p_equivalent)


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
