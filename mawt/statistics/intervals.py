"""Intervals of a seeds x items design: variance components, t intervals, p-values, TOST, Holm.

A variant's scores form a (seeds x items) matrix (S training seeds, N held-out items, one
score per cell); the paired difference to its baseline follows the crossed random-effects
model without replication, d[s, i] = mu + u_s + v_i + e_si, whose mean has variance
s_u^2 / S + s_v^2 / N + s_e^2 / (S N). `variance_of_mean` estimates it from the two-way
ANOVA's mean squares, with Satterthwaite's degrees of freedom read at an upper value of
MS_seed (`SEED_MS_QUANTILE`). docs/statistics.md is the one description of the method, its
departure from the textbook and its calibration (`tests/test_stats_calibration.py`).
A variant against its baseline: `mawt.statistics.paired`; the MDE and the planned design:
`mawt.statistics.power`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

ALPHA = 0.05  # the level of every test and verdict ((1 - ALPHA) intervals)
SEED_MS_QUANTILE = 0.25  # the degrees of freedom read MS_seed * dfs / chi2_dfs(this quantile): docs/statistics.md


def seed_chi2_quantile(df: int) -> float:
    """chi2_df at SEED_MS_QUANTILE: MS_seed * df / this is the upper value the degrees of freedom read."""
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


def score_matrix(scores) -> np.ndarray:
    """`scores` as a float64 (seeds x items) matrix (one row for a 1-d input); refuses empty and non-finite."""
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
    """(V, df, (s_u^2, s_v^2, s_e^2)) for (..., S, N) score matrices (docs/statistics.md).

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
    ms_s_up = ms_s * dfs / seed_chi2_quantile(dfs)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (ms_s_up + ms_i - ms_r) ** 2 / (ms_s_up**2 / dfs + ms_i**2 / dfi + ms_r**2 / dfr)
    df = np.where(np.isfinite(df) & positive, np.clip(df, dfs, dfs + dfi + dfr), float(dfs))
    return V, df, (seed, item, ms_r)


def components(scores) -> Components:
    """The variance components of one (seeds x items) matrix."""
    m = score_matrix(scores)
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


def interval(scores, alpha: float = ALPHA) -> Interval:
    """Mean of a (seeds x items) score matrix and its (1 - alpha) t interval (variance components)."""
    m = score_matrix(scores)
    c = components(m)
    low, high = t_interval(m.mean(), c.se, c.df, alpha)
    return Interval(float(m.mean()), float(low), float(high))


def holm(p_values) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values, in the input order; NaN entries stay NaN and are not counted.

    Sort ascending, multiply the i-th smallest (i = 0..m-1) by (m - i), running maximum, cap at 1.
    """
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
