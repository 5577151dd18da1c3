"""A variant against its baseline on the same seeds and items: the paired difference.

`paired_difference` derives from the difference's variance components
(`mawt.statistics.intervals`) its t interval, the two-sided p-value for "no difference",
equivalence within +-margin by two one-sided tests (TOST; Schuirmann 1987: equivalent at
level alpha exactly when the (1 - 2 alpha) interval lies inside +-margin) and the MDE
(`mawt.statistics.power`). The verdicts built on them: docs/statistics.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mawt.statistics.intervals import (
    ALPHA,
    Components,
    Interval,
    components,
    score_matrix,
    t_interval,
    t_p_value,
    tost_p_value,
)
from mawt.statistics.power import minimum_detectable_effect, seed_share


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


def paired_difference(scores, baseline, alpha: float = ALPHA, margin: float | None = None,
                      mde_alpha: float | None = None) -> PairedDifference:
    """Mean of (scores - baseline) over the same seeds and items: interval, SE, p-value, TOST, MDE.

    Row i of both matrices must be the same seed and column j the same item. A
    single-row side (no seeds, e.g. the untuned base) is broadcast to the other's
    seeds. `mde_alpha` (default `alpha`): the level of the test whose MDE is wanted
    (alpha / m for the first step of a Holm family of m).
    """
    a, b = score_matrix(scores), score_matrix(baseline)
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
