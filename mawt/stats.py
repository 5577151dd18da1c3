"""Bootstrap intervals, paired p-values, the Holm correction and the minimum detectable effect.

A variant's score is a (seeds x items) matrix of per-item scores (0/1 for
exact match, the lenient challenge metric, ...). Both the seeds and the items
are samples (of training randomness and of puzzles), so the interval resamples
both: each replicate draws S seeds and N items with replacement (a two-level,
"hierarchical" bootstrap; Efron & Tibshirani 1993, ch. 8; Davison & Hinkley
1997, sec. 3.8) and takes the mean of the resampled sub-matrix. Percentile
intervals.

With `eval.n_samples` > 1 (sampling, DeepSeek-R1's pass@1 protocol) an item's
score is the mean over its n samples (mawt.evaluate), and these item means are
what the bootstrap resamples. The samples are nested in (seed, item) cells, so
their noise is already part of each cell's mean: resampling seeds and items
carries it, and resampling the samples again would count it twice (Davison &
Hinkley 1997, sec. 3.8, on nested designs); treating them as extra items would
count them as independent puzzles and shrink the interval. `tests/test_stats.py`
checks on simulated data that the resulting SE matches the estimator's spread
over new seeds, items and samples.

The comparison with a baseline is paired: both matrices are indexed by the
same seeds and the same items (the caller, `mawt.comparisons`, lines the rows up
by seed id and refuses different seed sets), and one replicate applies the
same draw to both, so the interval is that of the mean per-item difference.
Identical runs give a difference of exactly 0 with a zero-width interval. A
single-row matrix (the untuned base model: no training seed) is compared to
every seed of the other.

From the same paired replicates `paired_difference` also derives:

* a two-sided p-value for "no difference", by inverting the percentile
  interval: p = min(1, 2 * min(frac(reps <= 0), frac(reps >= 0))), floored at
  1 / n_boot (the bootstrap cannot resolve smaller p-values). p < alpha exactly
  when the (1 - alpha) percentile interval excludes 0, up to quantile
  interpolation. Identical runs give p = 1.
* the standard error SE = SD of the replicates (ddof=1), and the minimum
  detectable effect at 80% power and two-sided alpha = 0.05 for this design
  (these seeds x these items):
  MDE = (z_{1-alpha/2} + z_{power}) * SE = (1.960 + 0.842) * SE = 2.80 * SE.
  A true difference smaller than the MDE is more likely than not (beyond 20%)
  to come out "not distinguishable"; a null verdict says nothing about
  effects below it. It is per comparison (not Holm-adjusted).

`holm` adjusts a family of p-values for multiplicity (Holm 1979, "A simple
sequentially rejective multiple test procedure"): sort ascending, multiply the
i-th smallest (i = 0..m-1) by (m - i), take the running maximum, cap at 1.
`mawt.comparisons` applies it over a study's compared variants, one family per
metric, and marks a difference only where the adjusted p < 0.05; the printed
intervals stay unadjusted 95% intervals.

With 2 seeds the seed level has only three distinct draws; intervals are wide,
which is the honest answer for two training runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

N_BOOT = 2000
ALPHA = 0.05
POWER = 0.80


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
class PairedDifference(Interval):
    """A paired difference: mean and percentile interval, plus SE, p-value and MDE from the same replicates."""

    se: float = float("nan")
    p: float = float("nan")
    mde: float = float("nan")

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


def _draws(n_seeds: int, n_items: int, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_seeds, (n_boot, n_seeds)), rng.integers(0, n_items, (n_boot, n_items))


def _resampled_means(m: np.ndarray, seeds: np.ndarray, items: np.ndarray) -> np.ndarray:
    # mean over the resampled (seed, item) grid = mean over seeds of per-seed item means,
    # computed without building the (n_boot, S, N) tensor: per-seed item means first
    per_seed = np.stack([m[:, idx].mean(axis=1) for idx in items])  # (n_boot, S)
    return np.take_along_axis(per_seed, seeds, axis=1).mean(axis=1)


def bootstrap_replicates(scores, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """The n_boot two-level bootstrap means of a (seeds x items) matrix."""
    m = _matrix(scores)
    seeds, items = _draws(m.shape[0], m.shape[1], n_boot, seed)
    return _resampled_means(m, seeds, items)


def bootstrap_ci(scores, n_boot: int = N_BOOT, alpha: float = ALPHA, seed: int = 0) -> Interval:
    """Mean of a (seeds x items) score matrix and its two-level percentile bootstrap interval."""
    m = _matrix(scores)
    reps = bootstrap_replicates(m, n_boot=n_boot, seed=seed)
    low, high = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    return Interval(float(m.mean()), float(low), float(high))


def bootstrap_p_value(reps) -> float:
    """Two-sided p-value for "the mean is 0" from bootstrap replicates (percentile-interval inversion).

    p = min(1, 2 * min(frac(reps <= 0), frac(reps >= 0))), at least 1 / len(reps).
    """
    reps = np.asarray(reps, dtype=np.float64)
    if reps.ndim != 1 or reps.size == 0 or not np.isfinite(reps).all():
        raise ValueError("replicates must be a non-empty, finite 1-d array")
    tail = min(float(np.mean(reps <= 0.0)), float(np.mean(reps >= 0.0)))
    return float(min(1.0, max(2.0 * tail, 1.0 / reps.size)))


def z_sum(alpha: float = ALPHA, power: float = POWER) -> float:
    """z_{1-alpha/2} + z_{power}: 1.960 + 0.842 = 2.802 for alpha 0.05 and 80% power."""
    normal = NormalDist()
    return normal.inv_cdf(1 - alpha / 2) + normal.inv_cdf(power)


def minimum_detectable_effect(se: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """MDE = (z_{1-alpha/2} + z_{power}) * SE: the true difference found with `power` at two-sided `alpha`."""
    return z_sum(alpha, power) * float(se)


def paired_difference(scores, baseline, n_boot: int = N_BOOT, alpha: float = ALPHA,
                      seed: int = 0) -> PairedDifference:
    """Mean of (scores - baseline) over the same seeds and items: interval, SE, p-value and MDE.

    Row i of both matrices must be the same seed and column j the same item. A
    single-row side (no seeds, e.g. the untuned base) is broadcast to the other's seeds.
    """
    a, b = _matrix(scores), _matrix(baseline)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"paired comparison needs the same items: {a.shape[1]} vs {b.shape[1]}")
    if a.shape[0] != b.shape[0] and 1 not in (a.shape[0], b.shape[0]):
        raise ValueError(f"paired comparison needs the same seeds: {a.shape[0]} vs {b.shape[0]} rows")
    a, b = np.broadcast_arrays(a, b)
    diff = a - b
    reps = bootstrap_replicates(diff, n_boot=n_boot, seed=seed)
    low, high = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    se = float(reps.std(ddof=1)) if reps.size > 1 else float("nan")
    return PairedDifference(float(diff.mean()), float(low), float(high), se=se, p=bootstrap_p_value(reps),
                            mde=minimum_detectable_effect(se))


def paired_difference_ci(scores, baseline, n_boot: int = N_BOOT, alpha: float = ALPHA, seed: int = 0) -> Interval:
    """The interval part of `paired_difference`."""
    return paired_difference(scores, baseline, n_boot=n_boot, alpha=alpha, seed=seed).interval


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
