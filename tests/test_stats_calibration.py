"""Calibration tier of mawt.statistics: its intervals, p-values, MDE and verdicts on studies with a known truth.

`mawt.statistics.simulate` draws (seeds x items) 0/1 score matrices from a probit model that
never calls the estimator (item difficulty shared by seeds and variants, per-run
seed effects, heterogeneous item effects), with the true difference known in
closed form; `calibrate` runs the estimator on each simulated study and counts
how often its interval holds the truth, how often it calls a null difference
significant, and how often the Holm verdict finds an effect of the MDE it reports.

A subset of the grid that `benchmarks/calibration.py` tabulates in full (seeds
{2, 3, 5} x items {50, 400} x base rate {0.05, 0.17, 0.5} x latent seed SD
{0, 0.3, 0.6} x heterogeneous effects {0, 0.5}), sized to run in well under a
minute on two cores. Every cell has its own fixed random seed; the bounds allow
for the Monte Carlo error of n_sims studies (2.5 binomial SDs).

Known misses are marked xfail with the measured numbers (strict where they are
far from the bound, so that a fix shows up): power at the reported MDE where the
MDE moves a base rate of 0.05 by ~0.48, and a few conservative cells (POWER_SHORT).
"""

from __future__ import annotations

import functools
import zlib

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # Monte Carlo: several seconds per cell

from mawt.statistics import intervals, paired
from mawt.statistics.simulate import Cell, accuracy_seed_sd, calibrate, simulate

N_SIMS = 1000
ALPHA = 0.05


def slack(p: float = ALPHA, n: int = N_SIMS) -> float:
    """2.5 Monte Carlo SDs of a proportion p estimated from n studies."""
    return 2.5 * float(np.sqrt(p * (1 - p) / n))


seed_sd = accuracy_seed_sd  # a latent (probit-scale) seed SD on the accuracy scale


def _rng(cell: Cell, salt: str = "") -> np.random.Generator:
    """A fixed seed per cell (crc32 of its repr: the same on every machine and run)."""
    return np.random.default_rng(zlib.crc32((repr(cell) + salt).encode()))


# Cells whose power at the reported MDE misses [0.68, 0.92] (measured with these seeds and N_SIMS = 1000).
# 3 seeds, large seed variance at a base rate of 0.05: the MDE is a shift of accuracy by ~0.48 (0.05 -> 0.53);
# over such a shift the probit's slope changes ~4x and the seed x item interaction grows with it, more than
# minimum_detectable_effect's scaling (seed share by phi(Phi^-1(p))^2, the rest by p (1 - p)) allows: the
# MDE is too small. Such a design cannot answer any realistic question (docs/statistics.md says so).
_SHIFT = "an MDE of ~0.48 from a base rate of 0.05: the variance grows faster than the MDE's scaling"
_CONSERVATIVE = "conservative: the variance-under-the-alternative scaling over-states it here"
POWER_SHORT = {
    "S3-N50-p0.05-lat0.6-het0.0": (_SHIFT + " (power 0.386)", True),
    "S3-N400-p0.05-lat0.6-het0.0": (_SHIFT + " (power 0.341)", True),
    # heterogeneous effects at a base rate of 0.05 (the item part scaled like p (1 - p)), and 3 seeds with no
    # seed variance (df about 2 where the variance estimate has more): power 0.94-0.95, the MDE too large
    "S3-N400-p0.05-lat0.0-het0.5": (_CONSERVATIVE + " (power 0.942)", False),
    "S5-N50-p0.05-lat0.0-het0.5": (_CONSERVATIVE + " (power 0.940)", False),
    "S3-N50-p0.5-lat0.0-het0.5": ("conservative df with 3 seeds and no seed variance (power 0.949)", False),
}


def _grid() -> list[tuple[str, Cell, float | None]]:
    """(id, cell, margin): every seeds x items x base rate at two levels, (latent seed SD 0, heterogeneous
    effects 0.5) and (latent seed SD 0.6, no heterogeneity), plus a correlated-seeds cell and a pass@1-over-4-samples
    cell. Margin 0.03 on the 5 x 400 cells."""
    out = []
    for S in (2, 3, 5):
        for N in (50, 400):
            for p in (0.05, 0.17, 0.5):
                for latent, effect_sd in ((0.0, 0.5), (0.6, 0.0)):
                    cell = Cell(seeds=S, items=N, base_rate=p, seed_sd=seed_sd(latent, p), effect_sd=effect_sd)
                    margin = 0.03 if (S, N) == (5, 400) else None
                    out.append((f"S{S}-N{N}-p{p}-lat{latent}-het{effect_sd}", cell, margin))
    out.append(("S3-N400-p0.17-lat0.3-rho0.5", Cell(3, 400, 0.17, seed_sd(0.3, 0.17), rho_seed=0.5), None))
    out.append(("S3-N400-p0.17-lat0.3-K4", Cell(3, 400, 0.17, seed_sd(0.3, 0.17), samples=4), None))
    return out


GRID = _grid()


@functools.lru_cache(maxsize=None)
def _calibrated(cell: Cell, margin: float | None) -> dict:
    """calibrate() once per cell (the coverage, power and equivalence tests share it)."""
    return calibrate(cell, N_SIMS, _rng(cell), family=3, alpha=ALPHA, power=0.80, margin=margin)


def _params(select=lambda cell, margin: True, xfail: dict | None = None) -> list:
    out = []
    for name, cell, margin in GRID:
        if not select(cell, margin):
            continue
        marks = ()
        if xfail and name in xfail:
            reason, strict = xfail[name]
            marks = pytest.mark.xfail(reason=reason, strict=strict)
        out.append(pytest.param(cell, margin, id=name, marks=marks))
    return out


def test_seed_sd_helper_is_the_inverse_of_the_simulators_conversion():
    for latent in (0.0, 0.3, 0.6):
        for p in (0.05, 0.17, 0.5):
            assert Cell(base_rate=p, seed_sd=seed_sd(latent, p)).sigma_u == pytest.approx(latent, abs=1e-12)
    assert seed_sd(0.6, 0.5) == pytest.approx(0.6 * 0.398942 / np.sqrt(2), rel=1e-6)  # phi(0) = 0.398942


@pytest.mark.parametrize("cell, margin", _params())
def test_coverage_and_type_1_error(cell: Cell, margin: float | None):
    r = _calibrated(cell, margin)
    # coverage of the 95% interval. With 2 seeds the degrees of freedom are about 1 and the upper value of the seed
    # mean square in them widens the interval: conservative (up to ~0.99 with 2 seeds and 50 items); near-nominal
    # once there are 3+ seeds and about 8+ expected correct answers per run
    assert 0.925 <= r["coverage"] <= 0.995, r
    if cell.seeds >= 3 and cell.items * cell.base_rate >= 8:
        assert 0.925 <= r["coverage"] <= 0.975, r
    assert r["type_1"] <= 0.06 + slack(0.05), r


@pytest.mark.parametrize("cell, margin", _params(xfail=POWER_SHORT))
def test_power_at_the_reported_mde_and_false_verdicts(cell: Cell, margin: float | None):
    """Holm over 3 comparisons, one with a true difference of the reported MDE: found in about 80% of studies;
    the two null comparisons called different in at most about 5%."""
    r = _calibrated(cell, margin)
    assert r["mde"] > 0, r
    if np.isnan(r["power"]):  # the MDE exceeds what the accuracy scale allows (2 seeds: df about 1)
        assert not 0 < cell.base_rate + r["mde"] < 1, r
        return
    assert r["false_verdicts"] <= 0.06 + slack(0.06), r
    assert 0.68 <= r["power"] <= 0.92, r


@pytest.mark.parametrize("cell, margin", _params(
    lambda cell, margin: margin is not None,
    ))
def test_equivalence_is_rarely_claimed_at_the_margin(cell: Cell, margin: float):
    r = _calibrated(cell, margin)
    # claiming "equivalent within +-margin" when the truth is exactly +margin: an error, at most alpha
    assert r["equivalent_at_margin"] <= 0.05 + slack(0.05), r
    assert 0.0 <= r["equivalent_at_0"] <= 1.0, r


def test_the_bootstraps_null_failure_is_fixed():
    """The issue: under no difference, with a seed SD of 0.04 (accuracy scale; a run's accuracy over seeds),
    3 seeds x 400 items and a base rate of 0.17, the old two-level bootstrap said p < .05 in 11.5% of studies."""
    cell = Cell(seeds=3, items=400, base_rate=0.17, seed_sd=0.04)
    n = 4000
    variants, baseline = simulate(cell, n, _rng(cell, "issue"))
    diff = variants[:, 0] - baseline
    V, df, _ = intervals.variance_of_mean(diff)
    p = intervals.t_p_value(diff.mean((-2, -1)), np.sqrt(V), df)
    # the vectorised path is paired_difference's, study by study
    for k in range(3):
        assert paired.paired_difference(variants[k, 0], baseline[k]).p == pytest.approx(float(p[k]), rel=1e-12)
    rate = float(np.mean(p < 0.05))
    assert rate <= 0.06 + slack(0.05, n), rate  # measured 0.0545 (the bootstrap: 0.115)


def _null_rejections(cell: Cell, n: int, rng: np.random.Generator, batch: int = 2000) -> float:
    """P(p < 0.05) of the paired difference over n simulated null studies (the interval and p-value only)."""
    hits = 0
    for start in range(0, n, batch):
        variants, baseline = simulate(cell, min(batch, n - start), rng)
        diff = variants[:, 0] - baseline
        V, df, _ = intervals.variance_of_mean(diff)
        hits += int((intervals.t_p_value(diff.mean((-2, -1)), np.sqrt(V), df) < 0.05).sum())
    return hits / n


def test_two_seeds_with_seed_variance_and_heterogeneous_effects():
    """2 seeds x 400 items, base rate 0.5, latent seed SD 0.3 and heterogeneous effects 0.5: with MS_seed at its
    median in Satterthwaite's df the type I error was 0.067-0.0705 (20000 studies): when the two seeds agree by
    chance MS_seed is small and the item mean square takes over the df, which jumps from about 1 while V is small
    as well. The upper value MS_seed / chi2_1(0.25) keeps the df near 1 there."""
    cell = Cell(seeds=2, items=400, base_rate=0.5, seed_sd=seed_sd(0.3, 0.5), effect_sd=0.5)
    n = 20000
    rate = _null_rejections(cell, n, _rng(cell, "two seeds"))
    assert rate <= 0.06 + slack(0.05, n), rate
