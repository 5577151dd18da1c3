"""Bootstrap confidence intervals over held-out items and seeds.

A variant's score is a (seeds x items) matrix of per-item scores (0/1 for
exact match, the lenient challenge metric, ...). Both the seeds and the items
are samples (of training randomness and of puzzles), so the interval resamples
both: each replicate draws S seeds and N items with replacement (a two-level,
"hierarchical" bootstrap; Efron & Tibshirani 1993, ch. 8; Davison & Hinkley
1997, sec. 3.8) and takes the mean of the resampled sub-matrix. Percentile
intervals.

The comparison with the baseline is paired: both matrices are indexed by the
same seeds and the same items, and one replicate applies the same draw to both,
so the interval is that of the mean per-item difference. Identical runs give a
difference of exactly 0 with a zero-width interval. A single-row matrix (the
untuned base model: no training seed) is compared to every seed of the other.

With 2 seeds the seed level has only three distinct draws; intervals are wide,
which is the honest answer for two training runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_BOOT = 2000
ALPHA = 0.05


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


def bootstrap_ci(scores, n_boot: int = N_BOOT, alpha: float = ALPHA, seed: int = 0) -> Interval:
    """Mean of a (seeds x items) score matrix and its two-level percentile bootstrap interval."""
    m = _matrix(scores)
    seeds, items = _draws(m.shape[0], m.shape[1], n_boot, seed)
    reps = _resampled_means(m, seeds, items)
    low, high = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    return Interval(float(m.mean()), float(low), float(high))


def paired_difference_ci(scores, baseline, n_boot: int = N_BOOT, alpha: float = ALPHA, seed: int = 0) -> Interval:
    """Mean of (scores - baseline) over the same seeds and items, with a paired bootstrap interval.

    Row i of both matrices must be the same seed and column j the same item. A
    single-row side (no seeds, e.g. the untuned base) is broadcast to the other's seeds.
    """
    a, b = _matrix(scores), _matrix(baseline)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"paired comparison needs the same items: {a.shape[1]} vs {b.shape[1]}")
    if a.shape[0] != b.shape[0] and 1 not in (a.shape[0], b.shape[0]):
        raise ValueError(f"paired comparison needs the same seeds: {a.shape[0]} vs {b.shape[0]} rows")
    a, b = np.broadcast_arrays(a, b)
    return bootstrap_ci(a - b, n_boot=n_boot, alpha=alpha, seed=seed)
