"""Power of a seeds x items design: the minimum detectable effect (MDE) and the planned design.

The MDE is the true difference that the two-sided t test at level alpha detects with 80%
power, from the noncentral t distribution with the estimate's degrees of freedom (so the
uncertainty of the variance estimate counts). `alpha` may be a Holm family's first-step level
alpha / m: `mawt.analysis.comparisons` reports the MDE of the verdict it shows. `planned`
projects variance components (`mawt.statistics.intervals`) to another design, and
`seeds_needed` finds the seeds that reach a target MDE. The method: docs/statistics.md.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import integrate, optimize, special
from scipy import stats as sps

from mawt.statistics.intervals import ALPHA, Components, seed_chi2_quantile

POWER = 0.80  # the power at which an effect counts as detectable


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

    g0 = probit_slope_squared(base_rate)

    def scale(delta: float) -> float:
        sides = [p for p in (base_rate + delta, base_rate - delta) if 0.0 <= p <= 1.0]
        return max([1.0] + [share * (probit_slope_squared(p) + g0) / (2 * g0)
                            + (1 - share) * (q(p) + q(base_rate)) / (2 * q(base_rate)) for p in sides])

    mde = m0
    for _ in range(100):
        new = m0 * np.sqrt(scale(mde))
        if abs(new - mde) < 1e-9:
            break
        mde = new
    return float(mde)


_SQRT_2PI = np.sqrt(2 * np.pi)


def probit_slope_squared(p: float) -> float:
    """phi(Phi^-1(p))^2, 0 outside (0, 1): scipy.stats.norm's pdf of its ppf, written as scipy computes them
    (ndtri, then exp(-z^2/2) / sqrt(2 pi)) without the per-call overhead of its distribution objects
    (the MDE's fixed point calls it thousands of times in a calibration)."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    z = special.ndtri(np.float64(p))
    return float((np.exp(-z**2 / 2.0) / _SQRT_2PI) ** 2)


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
        ms_s = ms_s * (S - 1) / seed_chi2_quantile(S - 1)  # as variance_of_mean reads it: the df the analysis will use
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
