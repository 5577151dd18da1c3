"""Intervals, paired differences, equivalence, Holm and the minimum detectable effect of a seeds x items design.

A variant's scores form a (seeds x items) matrix: S training seeds, N held-out
items, one score per cell (0/1 exact match, or the mean over n samples). Both
the seeds and the items are samples (of training randomness and of puzzles),
and a verdict should hold for new seeds and new items. The paired difference
to the baseline, d[s, i] = variant[s, i] - baseline[s, i] (same seed id, same
item), follows the crossed random-effects model without replication

    d[s, i] = mu + u_s + v_i + e_si

with a seed effect u (variance s_u^2: the two runs of a seed id differ in
training noise), an item effect v (s_v^2: heterogeneous effects, the variant
helps some puzzles more than others) and the cell term e (s_e^2, with the 0/1
draw). The mean of the matrix estimates mu with

    Var(mean) = s_u^2 / S + s_v^2 / N + s_e^2 / (S N).

The two-way ANOVA's mean squares (seeds, items, residual; Searle, Casella &
McCulloch 1992, "Variance Components", ch. 4) have expectations
s_e^2 + N s_u^2, s_e^2 + S s_v^2 and s_e^2, so

    V = (MS_seed + MS_item - MS_resid) / (S N)

is an unbiased estimate of Var(mean), and the interval is mean +- t * sqrt(V)
with the Satterthwaite (1946) degrees of freedom of that linear combination:
the quasi-F approach to designs with two random factors (Clark 1973, "The
language-as-fixed-effect fallacy"). One change to the textbook formula: in the
degrees of freedom (not in V) MS_seed is replaced by the upper value
MS_seed * (S - 1) / chi2_{S-1}(0.25), which E[MS_seed] exceeds with
probability 0.25 only. Plain Satterthwaite reads a seed mean square that is
small by chance as many degrees of freedom, just when V is too small already:
with 2 seeds its "95%" intervals covered 92%, and with the median instead of
the 0.25 quantile 93%. The level 0.25 is chosen by the calibration
(docs/statistics.md): coverage >= 0.94 on every cell of its grid. The degrees
of freedom are at least S - 1: with few seeds and real seed variance they are
close to S - 1 and the interval is wide (two training runs cannot say much
about a third, and the t quantile says so). Where V would not be positive, the
larger of MS_seed and MS_item is used (conservative). When the effect is the
same on every item (s_v^2 = 0) the pivot is close to the seed-level t with
S - 1 degrees of freedom (exactly that t if V were MS_seed / (S N) alone).

This replaces a two-level bootstrap (resampling seeds and items), which counted
the cell noise 1 + 2 (S - 1) / S times, shrank the seed variance by (S - 1) / S
and had no small-sample correction: its "95%" intervals covered 77-100%
depending on the seed variance. `tests/test_stats_calibration.py` checks this
method against studies simulated with a known truth (`mawt.statistics.simulate`), and
`benchmarks/calibration.py` writes the calibration table in docs/statistics.md.

From the same components `paired_difference` derives:

* a two-sided p-value for "no difference": 2 P(T_df > |mean| / SE);
* equivalence within +-margin by two one-sided tests (TOST; Schuirmann 1987):
  p_equiv = max(P(T_df > (mean + margin) / SE), P(T_df < (mean - margin) / SE)),
  equivalent at level alpha exactly when the (1 - 2 alpha) interval lies
  inside +-margin;
* the minimum detectable effect (MDE): the true difference that the two-sided
  test at level alpha detects with 80% power, from the noncentral t
  distribution with the estimate's degrees of freedom (so the uncertainty of
  the variance estimate counts). `alpha` may be a Holm family's first-step level
  alpha / m: `mawt.analysis.comparisons` reports the MDE of the verdict it shows.

`holm` adjusts a family of p-values for multiplicity (Holm 1979): sort
ascending, multiply the i-th smallest (i = 0..m-1) by (m - i), running maximum,
cap at 1.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize, special
from scipy import stats as sps

ALPHA = 0.05
POWER = 0.80
DEFAULT_MARGIN = 0.03  # equivalence margin (absolute, on a 0-1 score) when neither study nor setup sets one


SEED_MS_QUANTILE = 0.25  # the degrees of freedom read MS_seed * dfs / chi2_dfs(this quantile): see above


def _chi2_quantile(df: int) -> float:
    return float(sps.chi2.ppf(SEED_MS_QUANTILE, df))


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0

    def fmt(self, digits: int = 2) -> str:
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


@dataclass(frozen=True)
class Components:
    """Variance components of a (seeds x items) matrix and the variance of its mean."""

    seeds: int
    items: int
    seed: float  # s_u^2 (>= 0): between-seed variance of one run
    item: float  # s_v^2 (>= 0): between-item variance (of the difference: heterogeneous effects)
    cell: float  # s_e^2: the (seed, item) cell's own noise
    variance: float  # Var(mean) estimate
    df: float  # Satterthwaite degrees of freedom of `variance`

    @property
    def se(self) -> float:
        return float(np.sqrt(self.variance))

    def to_dict(self) -> dict:
        return {"seeds": self.seeds, "items": self.items, "var_seed": self.seed, "var_item": self.item,
                "var_cell": self.cell, "se": self.se, "df": self.df}


@dataclass(frozen=True)
class PairedDifference(Interval):
    """A paired difference: mean and t interval, with SE, degrees of freedom, p-values and MDE."""

    se: float = float("nan")
    df: float = float("nan")
    p: float = float("nan")
    mde: float = float("nan")  # at the `alpha` it was computed for (see `mawt.analysis.comparisons` for Holm's)
    p_equivalent: float = float("nan")  # TOST p-value for |difference| < margin (NaN without a margin)
    margin: float = float("nan")
    components: Components | None = None

    @property
    def interval(self) -> Interval:
        return Interval(self.mean, self.low, self.high)


def _matrix(scores) -> np.ndarray:
    m = np.asarray(scores, dtype=np.float64)
    if m.ndim == 1:
        m = m[None, :]
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"scores must be a non-empty (seeds x items) matrix, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("scores contain NaN or infinite values")
    return m


# ------------------------------------------------------------------ variance components (vectorised)
def mean_squares(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(MS_seed, MS_item, MS_resid) of (..., S, N) matrices; MS_seed and MS_resid are 0 when S = 1."""
    S, N = m.shape[-2:]
    rows = m.mean(-1, keepdims=True)
    cols = m.mean(-2, keepdims=True)
    grand = m.mean((-2, -1), keepdims=True)
    ss_seed = N * ((rows - grand) ** 2).sum((-2, -1))
    ss_item = S * ((cols - grand) ** 2).sum((-2, -1))
    ss_res = ((m - rows - cols + grand) ** 2).sum((-2, -1))
    ms_seed = ss_seed / (S - 1) if S > 1 else np.zeros_like(ss_seed)
    ms_item = ss_item / (N - 1) if N > 1 else np.zeros_like(ss_item)
    ms_res = ss_res / ((S - 1) * (N - 1)) if S > 1 and N > 1 else np.zeros_like(ss_res)
    return ms_seed, ms_item, ms_res


def variance_of_mean(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(V, df, (s_u^2, s_v^2, s_e^2)) for (..., S, N) score matrices (see the module docstring).

    S = 1: the seed variance cannot be estimated; V = MS_item / N (items only, df N - 1).
    N = 1: V = MS_seed / S (seeds only, df S - 1).
    """
    S, N = m.shape[-2:]
    ms_s, ms_i, ms_r = mean_squares(m)
    if S == 1 or N == 1:
        ms, k = (ms_i, N) if S == 1 else (ms_s, S)
        zeros = np.zeros_like(ms)
        comps = (zeros, ms_i, zeros) if S == 1 else (ms_s, zeros, zeros)
        return ms / k, np.full_like(ms, max(k - 1, 1), dtype=float), comps
    dfs, dfi, dfr = S - 1, N - 1, (S - 1) * (N - 1)
    seed = np.maximum(0.0, (ms_s - ms_r) / N)
    item = np.maximum(0.0, (ms_i - ms_r) / S)
    # the unbiased combination where it is positive; else the larger of the two mean squares (conservative)
    combo = ms_s + ms_i - ms_r
    positive = combo > 0
    V = np.where(positive, combo, np.maximum(ms_s, ms_i)) / (S * N)
    # Satterthwaite's df with the seed mean square at an upper value MS_seed * dfs / chi2_dfs(0.25): the plain
    # formula reads a seed mean square that is small by chance as many degrees of freedom, exactly when the
    # interval is already too narrow (anti-conservative with 2 seeds; see the calibration table)
    ms_s_up = ms_s * dfs / _chi2_quantile(dfs)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (ms_s_up + ms_i - ms_r) ** 2 / (ms_s_up**2 / dfs + ms_i**2 / dfi + ms_r**2 / dfr)
    df = np.where(np.isfinite(df) & positive, np.clip(df, dfs, dfs + dfi + dfr), float(dfs))
    return V, df, (seed, item, ms_r)


def components(scores) -> Components:
    """The variance components of one (seeds x items) matrix."""
    m = _matrix(scores)
    V, df, (seed, item, cell) = variance_of_mean(m)
    return Components(m.shape[0], m.shape[1], float(seed), float(item), float(cell), float(V), float(df))


def t_interval(mean, se, df, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    half = sps.t.ppf(1 - alpha / 2, df) * se
    return mean - half, mean + half


def t_p_value(mean, se, df) -> np.ndarray:
    """Two-sided p for mean = 0; 1 where mean and SE are both 0, 0 where only SE is."""
    mean, se = np.asarray(mean, dtype=float), np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(mean) / se
    t = np.where(se > 0, t, np.where(mean == 0, 0.0, np.inf))
    return 2 * sps.t.sf(t, df)


def tost_p_value(mean, se, df, margin: float) -> np.ndarray:
    """Two one-sided tests of |difference| < margin: the larger one-sided p (Schuirmann 1987)."""
    mean, se = np.asarray(mean, dtype=float), np.asarray(se, dtype=float)
    inside = (np.abs(mean) < margin).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = sps.t.sf((mean + margin) / se, df)
        upper = sps.t.cdf((mean - margin) / se, df)
    return np.where(se > 0, np.maximum(lower, upper), 1.0 - inside)


def detectable_ncp(df: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """The noncentrality (true effect / SE) that a two-sided t test at `alpha` detects with `power`
    (df rounded to 2 significant digits, within 0.5% of the ncp: cached, simulations call it often)."""
    return _ncp(float(f"{float(df):.2g}"), float(alpha), float(power))


def t_power(ncp: float, df: float, alpha: float = ALPHA) -> float:
    """Power of the two-sided t test at `alpha` with `df` degrees of freedom when the true effect is
    `ncp` standard errors: E_R[P(|Z + ncp| > c R / sqrt(df))], R ~ chi_df (the noncentral t, integrated
    directly where scipy's nct returns NaN, as it does in the far tail that a Holm level reaches)."""
    crit = sps.t.ppf(1 - alpha / 2, df)
    with np.errstate(all="ignore"):
        fast = float(sps.nct.sf(crit, df, ncp) + sps.nct.cdf(-crit, df, ncp))
    if np.isfinite(fast) and 0.0 <= fast <= 1.0:  # scipy's noncentral t where it gives a number (fast)
        return fast
    root = np.sqrt(df)

    def integrand(r: float) -> float:  # r = chi_df, the estimated SE is true SE * r / sqrt(df)
        c = crit * r / root
        return (sps.norm.sf(c - ncp) + sps.norm.cdf(-c - ncp)) * sps.chi.pdf(r, df)

    lo, hi = sps.chi.ppf([1e-12, 1 - 1e-12], df)
    return float(integrate.quad(integrand, lo, hi, points=[root], limit=200)[0])


@functools.lru_cache(maxsize=4096)
def _ncp(df: float, alpha: float, power: float) -> float:
    high = sps.t.ppf(1 - alpha / 2, df) + 10.0
    while t_power(high, df, alpha) < power:
        high *= 2
    return float(optimize.brentq(lambda ncp: t_power(ncp, df, alpha) - power, 0.0, high, xtol=1e-6))


def _se_bias(df: float) -> float:
    """E[sqrt(chi2_df / df)] (c4): an SE estimated with df degrees of freedom is this fraction of the true SE."""
    df = float(df)
    return float(np.sqrt(2.0 / df) * np.exp(special.gammaln((df + 1) / 2) - special.gammaln(df / 2)))


def minimum_detectable_effect(se: float, df: float, alpha: float = ALPHA, power: float = POWER,
                              base_rate: float | None = None, debias: bool = True, seed_share: float = 0.0) -> float:
    """The true difference detected with `power` by the two-sided test at `alpha`, for an estimated SE.

    ncp(df) * SE / c4(df): the noncentral t's effect in SE units, with the estimated SE
    de-biased (an SE from few degrees of freedom under-states the true SE on average; `debias=False`
    for an SE that is an expectation already, as in `planned`).

    With `base_rate` (the baseline's mean of 0/1 scores) the SE is scaled to the variance under
    the alternative, since an effect of the MDE's size is measured less precisely than the null
    SE says when the accuracy moves towards 0.5: the cell noise's share of V scales like the 0/1
    variance p (1 - p), and `seed_share` (the share of V from seed effects, which act on a
    latent scale: a run is better or worse at everything) like phi(Phi^-1(p))^2, the slope of
    accuracy in a latent shift (a probit link). The larger of the two directions is taken; the MDE is the fixed point of
    MDE = m0 sqrt(f(MDE)).
    """
    if not np.isfinite(se) or se == 0.0:
        return 0.0 if se == 0.0 else float("nan")
    m0 = detectable_ncp(df, alpha, power) * float(se) / (_se_bias(df) if debias else 1.0)
    if base_rate is None or not 0.0 < base_rate < 1.0:
        return m0
    share = float(np.clip(seed_share, 0.0, 1.0))

    def q(p: float) -> float:
        return p * (1.0 - p)

    def g(p: float) -> float:
        return 0.0 if p <= 0.0 or p >= 1.0 else float(sps.norm.pdf(sps.norm.ppf(p)) ** 2)

    def scale(delta: float) -> float:
        sides = [p for p in (base_rate + delta, base_rate - delta) if 0.0 <= p <= 1.0]
        return max([1.0] + [share * (g(p) + g(base_rate)) / (2 * g(base_rate))
                            + (1 - share) * (q(p) + q(base_rate)) / (2 * q(base_rate)) for p in sides])

    mde = m0
    for _ in range(100):
        new = m0 * np.sqrt(scale(mde))
        if abs(new - mde) < 1e-9:
            break
        mde = new
    return float(mde)


def seed_share(comp: Components) -> float:
    """The share of Var(mean) that the seed effects make up (the rest: item effects and the cells' noise)."""
    if not comp.variance > 0:
        return 0.0
    return float(np.clip(comp.seed / max(comp.seeds, 1) / comp.variance, 0, 1))


def planned(comp: Components, seeds: int, items: int, alpha: float = ALPHA, power: float = POWER,
            base_rate: float | None = None, cell_scale: float = 1.0) -> dict:
    """The design (seeds x items) that variance components `comp` predict: SE, df and MDE.

    Expected mean squares at the new design: E[MS_seed] = s_e^2 + N s_u^2, E[MS_item] = s_e^2 + S s_v^2,
    E[MS_resid] = s_e^2; df by Satterthwaite on those expectations, with E[MS_seed] at the same upper value
    the analysis reads (`variance_of_mean`), so the plan's df is the one its verdicts will have. `cell_scale` multiplies s_e^2 (e.g.
    about 1/K for pass@1 over K samples where the cell noise is sampling noise).
    """
    S, N = int(seeds), int(items)
    su, sv, se2 = comp.seed, comp.item, comp.cell * cell_scale
    V = su / S + sv / N + se2 / (S * N)
    if S == 1:
        df = float(N - 1)
    elif V == 0.0:  # no variance at all (identical runs): nothing to estimate, nothing to detect
        df = float(S - 1)
    else:
        ms_s, ms_i, ms_r = se2 + N * su, se2 + S * sv, se2
        ms_s = ms_s * (S - 1) / _chi2_quantile(S - 1)  # as variance_of_mean reads it: the df the analysis will use
        df = (ms_s + ms_i - ms_r) ** 2 / (ms_s**2 / (S - 1) + ms_i**2 / (N - 1) + ms_r**2 / ((S - 1) * (N - 1)))
        df = float(np.clip(df, S - 1, S * N - 1))
    se = float(np.sqrt(V))
    share = su / S / V if V > 0 else 0.0
    mde = minimum_detectable_effect(se, df, alpha, power, base_rate, debias=False, seed_share=share)
    return {"seeds": S, "items": N, "se": se, "df": df, "mde": mde}


def seeds_needed(comp: Components, items: int, target: float, alpha: float = ALPHA, power: float = POWER,
                 base_rate: float | None = None, most: int = 100) -> int | None:
    """The fewest seeds (2..most) whose planned MDE is at most `target`; None if even `most` do not reach it."""
    for S in range(2, most + 1):
        if planned(comp, S, items, alpha, power, base_rate)["mde"] <= target:
            return S
    return None


def interval(scores, alpha: float = ALPHA) -> Interval:
    """Mean of a (seeds x items) score matrix and its (1 - alpha) t interval (variance components)."""
    m = _matrix(scores)
    c = components(m)
    low, high = t_interval(m.mean(), c.se, c.df, alpha)
    return Interval(float(m.mean()), float(low), float(high))


def paired_difference(scores, baseline, alpha: float = ALPHA, margin: float | None = None,
                      mde_alpha: float | None = None) -> PairedDifference:
    """Mean of (scores - baseline) over the same seeds and items: interval, SE, p-value, TOST, MDE.

    Row i of both matrices must be the same seed and column j the same item. A
    single-row side (no seeds, e.g. the untuned base) is broadcast to the other's
    seeds. `mde_alpha` (default `alpha`): the level of the test whose MDE is wanted
    (alpha / m for the first step of a Holm family of m).
    """
    a, b = _matrix(scores), _matrix(baseline)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"paired comparison needs the same items: {a.shape[1]} vs {b.shape[1]}")
    if a.shape[0] != b.shape[0] and 1 not in (a.shape[0], b.shape[0]):
        raise ValueError(f"paired comparison needs the same seeds: {a.shape[0]} vs {b.shape[0]} rows")
    a, b = np.broadcast_arrays(a, b)
    diff = a - b
    c = components(diff)
    mean = float(diff.mean())
    low, high = t_interval(mean, c.se, c.df, alpha)
    p_eq = float(tost_p_value(mean, c.se, c.df, margin)) if margin is not None else float("nan")
    return PairedDifference(mean, float(low), float(high), se=c.se, df=c.df, p=float(t_p_value(mean, c.se, c.df)),
                            mde=minimum_detectable_effect(c.se, c.df, mde_alpha or alpha, seed_share=seed_share(c)),
                            p_equivalent=p_eq, margin=float("nan") if margin is None else float(margin),
                            components=c)


def holm(p_values) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values, in the input order; NaN entries stay NaN and are not counted."""
    p = np.asarray(p_values, dtype=np.float64).ravel()
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    if valid.size == 0:
        return out
    if ((p[valid] < 0) | (p[valid] > 1)).any():
        raise ValueError(f"p-values must lie in [0, 1], got {p[valid]}")
    m = valid.size
    order = valid[np.argsort(p[valid], kind="stable")]
    adjusted = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out[order] = np.minimum(adjusted, 1.0)
    return out
