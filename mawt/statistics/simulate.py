"""Studies with a known truth: simulated (seeds x items) score matrices for calibrating the estimator.

A generative model of the harness's design, independent of the estimator (it
never calls `mawt.statistics.intervals`, `.paired` or `.power`): a probit model of 0/1 scores (exact match) in which

    P(run r of variant v gets item i right) = Phi(a_v + tau * z_i + g_{v,i} + u_r)

* items: difficulty z_i ~ N(0, 1), shared by every seed and both variants (the
  within-item correlation that pairing removes);
* per-run seed effects u_r ~ N(0, sigma_u^2) on the latent scale, correlated
  by `rho_seed` between the variant and its baseline of the same seed id (a
  shared data order);
* heterogeneous effects: g_{v,i} ~ N(0, sigma_g^2), the variant's own item
  effects (fixed across its seeds), zero for the baseline;
* the 0/1 draw of each (run, item) cell; with `samples` K > 1 a cell's score
  is the mean of K independent draws (pass@1 over K samples).

The truth is the population difference of expected accuracy over new items and
new seeds, in closed form: E[Phi(a + X)] = Phi(a / sqrt(1 + Var X)) for normal X,
so E[acc_v] = Phi(a_v / sqrt(1 + tau^2 + sigma_g^2 + sigma_u^2)). `Cell` solves
a_v for the requested true difference, so "no difference" means exactly 0 in
accuracy even with heterogeneous effects.

`seed_sd` is stated on the accuracy scale (the SD of one run's accuracy over
seeds, as papers report it) and converted to the latent scale at the baseline's
accuracy: sigma_u = seed_sd / phi(Phi^-1(p)) * sqrt(1 + tau^2).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from statistics import NormalDist

import numpy as np
from scipy.special import erf

_N = NormalDist()


@dataclass(frozen=True)
class Cell:
    """One design cell of a calibration grid: seeds x items, base rate, noise and true effect."""

    seeds: int = 3
    items: int = 400
    base_rate: float = 0.17  # the baseline's expected accuracy
    seed_sd: float = 0.0  # SD of one run's accuracy over training seeds (accuracy scale)
    effect: float = 0.0  # true difference in expected accuracy, variant - baseline
    tau: float = 1.0  # item difficulty spread (latent SD)
    effect_sd: float = 0.0  # heterogeneous effects: latent SD of the variant's item effects
    rho_seed: float = 0.0  # correlation of a variant's and its baseline's seed effects (same seed id)
    samples: int = 1  # draws per (run, item) cell, averaged

    @property
    def sigma_u(self) -> float:
        density = np.exp(-0.5 * _N.inv_cdf(self.base_rate) ** 2) / np.sqrt(2 * np.pi)
        return self.seed_sd / density * np.sqrt(1 + self.tau**2)

    def _scale(self, heterogeneous: bool) -> float:
        return float(np.sqrt(1 + self.tau**2 + self.sigma_u**2 + (self.effect_sd**2 if heterogeneous else 0.0)))

    @property
    def intercepts(self) -> tuple[float, float]:
        """(a_variant, a_baseline) with E[acc_baseline] = base_rate and E[acc_v] - E[acc_b] = effect."""
        target = self.base_rate + self.effect
        if not 0.0 < target < 1.0:
            raise ValueError(f"base_rate + effect = {target} must lie in (0, 1)")
        return (_N.inv_cdf(target) * self._scale(True), _N.inv_cdf(self.base_rate) * self._scale(False))

    def with_effect(self, effect: float) -> "Cell":
        return replace(self, effect=float(effect))


def accuracy_seed_sd(latent: float, base_rate: float, tau: float = 1.0) -> float:
    """The accuracy-scale seed SD (`Cell.seed_sd`) of a latent (probit-scale) seed SD at `base_rate`:
    latent * phi(Phi^-1(p)) / sqrt(1 + tau^2), the inverse of `Cell.sigma_u`'s conversion."""
    return latent * _N.pdf(_N.inv_cdf(base_rate)) / float(np.sqrt(1 + tau**2))


def simulate(cell: Cell, n_sims: int, rng: np.random.Generator, n_variants: int = 1,
             effects: list[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(variants, baseline): variants (n_sims, n_variants, S, N) and baseline (n_sims, S, N) score arrays.

    Each simulated study has its own items and seeds; the variants share the
    study's items and the baseline. `effects` gives each variant's true difference
    (default: `cell.effect` for all).
    """
    S, N = cell.seeds, cell.items
    effects = [cell.effect] * n_variants if effects is None else list(effects)
    z = rng.standard_normal((n_sims, 1, N))  # item difficulty
    su = cell.sigma_u
    base_u = rng.standard_normal((n_sims, S, 1))
    a_b = cell.intercepts[1]
    baseline = _draw(a_b + cell.tau * z + su * base_u, cell.samples, rng)
    out = []
    for eff in effects:
        a_v = cell.with_effect(eff).intercepts[0]
        own = rng.standard_normal((n_sims, S, 1))
        u = cell.rho_seed * base_u + np.sqrt(1 - cell.rho_seed**2) * own
        g = cell.effect_sd * rng.standard_normal((n_sims, 1, N))
        out.append(_draw(a_v + cell.tau * z + g + su * u, cell.samples, rng))
    return np.stack(out, axis=1), baseline


def _draw(latent: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    return rng.binomial(samples, 0.5 * (1.0 + erf(latent / np.sqrt(2.0)))) / samples


# ------------------------------------------------------------------ calibration of the estimator against the truth
def _estimates(diff: np.ndarray, alpha: float, margin: float | None = None):
    from mawt.statistics import intervals

    V, df, comps = intervals.variance_of_mean(diff)
    se = np.sqrt(V)
    mean = diff.mean((-2, -1))
    low, high = intervals.t_interval(mean, se, df, alpha)
    p = intervals.t_p_value(mean, se, df)
    p_eq = intervals.tost_p_value(mean, se, df, margin) if margin is not None else None
    return mean, se, df, low, high, p, p_eq, comps


def calibrate(cell: Cell, n_sims: int, rng: np.random.Generator, family: int = 3, alpha: float = 0.05,
              power: float = 0.80, margin: float | None = None, n_mde: int = 400) -> dict:
    """Coverage, type I error, MDE and power at that MDE of the estimator on simulated studies of `cell`.

    * coverage: the (1 - alpha) interval of a paired difference holds the true difference (cell.effect);
    * type_1: P(p < alpha) for a variant whose true difference is 0;
    * mde: the mean MDE that `mawt.statistics.power` reports for the verdict shown (Holm over `family` comparisons:
      alpha / family; each study's own baseline accuracy and variance components) on the first `n_mde`
      null studies;
    * power: studies of `family` variants, one with true difference = that MDE and the others 0: how often
      its Holm-adjusted verdict says "better" (the verdict shown); NaN where the MDE leaves the 0-1 scale;
    * false_verdicts: in those studies, how often a null variant is called better or worse;
    * with `margin`: equivalent_at_0 (TOST says "equivalent" and the test no difference, one comparison,
      when the truth is 0) and equivalent_at_margin (the same when the truth is +margin: an error, at most
      alpha).
    """
    from mawt.statistics.intervals import Components, holm
    from mawt.statistics.power import minimum_detectable_effect, seed_share

    variants, baseline = simulate(cell, n_sims, rng)
    mean, se, df, low, high, p, _, (seed, item, cell_var) = _estimates(variants[:, 0] - baseline, alpha)
    truth = cell.effect
    out = {"coverage": float(np.mean((low <= truth) & (truth <= high))),
           "type_1": float(np.mean(p < alpha)) if truth == 0 else float("nan")}
    rates = baseline.mean((-2, -1))
    mdes = []
    for k in range(min(n_mde, n_sims)):
        comp = Components(cell.seeds, cell.items, seed[k], item[k], cell_var[k], se[k] ** 2, df[k])
        mdes.append(minimum_detectable_effect(se[k], df[k], alpha / family, power, base_rate=float(rates[k]),
                                              seed_share=seed_share(comp)))
    mde = float(np.mean(mdes))
    out["mde"] = mde
    out["power"] = out["false_verdicts"] = float("nan")
    if 0.0 < cell.base_rate + mde < 1.0:  # else the design cannot detect any effect the scale allows
        effects = [mde] + [0.0] * (family - 1)
        variants, baseline = simulate(cell.with_effect(0.0), n_sims, rng, n_variants=family, effects=effects)
        ps, means = [], []
        for k in range(family):
            mean, _, _, _, _, p, _, _ = _estimates(variants[:, k] - baseline, alpha)
            ps.append(p)
            means.append(mean)
        adjusted = np.stack([holm(row) for row in np.stack(ps, axis=1)])
        out["power"] = float(np.mean((adjusted[:, 0] < alpha) & (means[0] > 0)))
        if family > 1:
            out["false_verdicts"] = float(np.mean((adjusted[:, 1:] < alpha).any(axis=1)))
    if margin is not None:
        for name, eff in (("equivalent_at_0", 0.0), ("equivalent_at_margin", margin)):
            variants, baseline = simulate(cell.with_effect(eff), n_sims, rng)
            _, _, _, _, _, p, p_eq, _ = _estimates(variants[:, 0] - baseline, alpha, margin)
            out[name] = float(np.mean((p_eq < alpha) & (p >= alpha)))
    return out
