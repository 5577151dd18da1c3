"""A study's comparisons: every variant against its own baseline, with verdicts (`mawt.statistics.paired`).

Each variant is compared with its own baseline (its plain counterpart, or the
variant named in the study's `compare:`), paired by seed id over the same
held-out items (a variant whose seeds differ from its baseline's is refused
with a ValueError; the untuned base, one row without a seed, is broadcast to
every seed). Per compared variant and metric the summary holds the difference,
its unadjusted 95% t interval, SE and degrees of freedom, the variance
components, the two-sided p-value and the TOST p-value of equivalence within
the study's margin, both Holm-adjusted over the study's compared variants but
its floors (one family per metric), and:

* `verdict_<metric>`: "better" / "worse" (Holm-adjusted p < 0.05), else
  "equivalent" (Holm-adjusted TOST p < 0.05: the difference lies within
  +-margin), else "inconclusive"; or "floor" (`floor_<metric>` True): the
  variant and its baseline score one and the same constant in every seed x item
  cell (0 everywhere, say). Zero variance on both sides is a floor (or a ceiling),
  not evidence of equivalence: there is nothing to test, so a floor keeps its
  difference (0, interval [0, 0]) but has no SE, degrees of freedom, p-values,
  TOST, MDE, seeds needed, variance components or base rate (NaN: `mawt plan`
  then does not read its zeros) and is left out of Holm's m. Two sides that are each
  constant but differ (0 vs 1 everywhere) are no floor but a deterministic
  difference, kept as the estimator gives it: SE 0, p 0 (`t_p_value`), TOST p
  0 or 1 (`tost_p_value`), so "better" / "worse" with MDE 0;
* `mde_<metric>`: the MDE of that verdict, the difference detected with 80%
  power by the test at Holm's first-step level 0.05 / m (m compared variants but the floors;
  Holm's later steps only add power); `mde_<metric>_single`: the same at 0.05,
  for one comparison on its own;
* `seeds_needed_<metric>`: how many seeds would bring `mde_<metric>` down to the
  margin, from this comparison's variance components (`mawt.statistics.power.planned`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mawt.analysis.results import AXES, N_SUFFIX, StudyResults
from mawt.evaluation.scoring import SCORES
from mawt.statistics.intervals import ALPHA, Components, holm, interval
from mawt.statistics.paired import paired_difference
from mawt.statistics.power import minimum_detectable_effect, seed_share, seeds_needed

FLOOR = "floor"
VERDICTS = ("better", "worse", "equivalent", "inconclusive", FLOOR)
# what a floor is, in words (the report, summary.md, table.md)
FLOOR_MEANING = ("both sides score the same constant on every item and seed, so there is nothing to test: no p-value, "
                 "no MDE, not counted in Holm's m; move the variant off the floor, e.g. more steps or a higher "
                 "learning rate")


def _side_columns(runs: pd.DataFrame) -> list[str]:
    skip = {*SCORES, "seed", *AXES}
    return [c for c in runs.columns if c not in skip and pd.api.types.is_numeric_dtype(runs[c])]


def _binary(matrix: np.ndarray) -> bool:
    return bool(np.isin(matrix, (0.0, 1.0)).all())


def _floor(variant: np.ndarray, base: np.ndarray) -> bool:
    """Every cell of both matrices the same value: zero variance on both sides, a floor (or ceiling)."""
    value = variant.flat[0]
    return bool((variant == value).all() and (base == value).all())


def is_floor(row, metric: str = "exact_match") -> bool:
    """The row's `floor_<metric>` flag, also after a CSV round trip (True, np.True_, "True"; NaN is False)."""
    value = row.get(f"floor_{metric}", False)
    return not pd.isna(value) and str(value) == "True"


def _compare(row: dict, metric: str, variant: np.ndarray, base: np.ndarray, margin: float) -> None:
    diff = paired_difference(variant, base, margin=margin)
    c = diff.components
    rate = float(base.mean()) if _binary(base) else None
    row.update({f"diff_{metric}": diff.mean, f"diff_{metric}_low": diff.low, f"diff_{metric}_high": diff.high,
                f"diff_{metric}_se": diff.se, f"diff_{metric}_df": diff.df, f"diff_{metric}_p": diff.p,
                f"diff_{metric}_p_equiv": diff.p_equivalent,
                f"mde_{metric}_single": minimum_detectable_effect(diff.se, diff.df, ALPHA, seed_share=seed_share(c),
                                                                  base_rate=rate),
                f"var_seed_{metric}": c.seed, f"var_item_{metric}": c.item, f"var_cell_{metric}": c.cell,
                f"base_rate_{metric}": np.nan if rate is None else rate, f"floor_{metric}": _floor(variant, base)})
    if row[f"floor_{metric}"]:  # nothing was tested: no p-value, TOST, MDE, SE, components (module docstring)
        row.update(dict.fromkeys([f"diff_{metric}_{k}" for k in ("se", "df", "p", "p_equiv")]
                                 + [f"mde_{metric}_single", f"base_rate_{metric}"]
                                 + [f"var_{k}_{metric}" for k in ("seed", "item", "cell")], np.nan))


def _family(table: pd.DataFrame, metric: str, margin: float) -> None:
    """Holm over the study's compared variants but its floors (m: the tested ones), the verdicts, the verdict's
    MDE and the seeds it needs."""
    compared = table[f"diff_{metric}"].notna()
    floor = pd.Series([is_floor(row, metric) for _, row in table.iterrows()], index=table.index, dtype=bool)
    tested = compared & ~floor
    m = int(tested.sum())
    for col in (f"diff_{metric}_p", f"diff_{metric}_p_equiv"):  # a floor's p-values are NaN: holm() skips them
        table[f"{col}_holm"] = holm(table[col].where(tested).to_numpy(dtype=float))
    verdicts, mdes, needed = [], [], []
    for _, row in table.iterrows():
        if not tested[_]:
            verdicts.append(FLOOR if floor[_] else None), mdes.append(np.nan), needed.append(np.nan)
            continue
        verdicts.append(verdict(row, metric))
        rate = row[f"base_rate_{metric}"]
        rate = None if pd.isna(rate) else float(rate)
        comp = Components(int(row["seeds"]) or 1, int(row["items"]), row[f"var_seed_{metric}"],
                          row[f"var_item_{metric}"], row[f"var_cell_{metric}"], row[f"diff_{metric}_se"] ** 2,
                          row[f"diff_{metric}_df"])
        mdes.append(minimum_detectable_effect(row[f"diff_{metric}_se"], row[f"diff_{metric}_df"], ALPHA / m,
                                              base_rate=rate, seed_share=seed_share(comp)))
        need = seeds_needed(comp, int(row["items"]), margin, ALPHA / m, base_rate=rate)
        needed.append(np.nan if need is None else need)
    table[f"verdict_{metric}"] = pd.Series(verdicts, index=table.index, dtype=object)
    table[f"mde_{metric}"] = mdes
    table[f"seeds_needed_{metric}"] = needed


def summarise(study: StudyResults) -> pd.DataFrame:
    """One row per variant: means, 95% intervals, paired differences to its baseline with verdicts, side metrics."""
    runs = study.runs
    referenced = {b for b in study.baselines.values() if b}
    out = []
    for variant in study.variants:
        sub = runs[runs["variant"] == variant]
        baseline = study.baselines.get(variant)
        row = {"variant": variant, "baseline": baseline, "is_baseline": variant in referenced,
               "seeds": int(sub["seed"].notna().sum()), "runs": len(sub), "items": len(study.items[sub["run_id"].iloc[0]]),
               "margin": study.margin}
        for axis in AXES:
            row[axis] = sub[axis].iloc[0] if axis in sub and sub[axis].notna().any() else None
        for metric in SCORES:
            ci = interval(study.score_matrix(variant, metric))
            row.update({metric: ci.mean, f"{metric}_low": ci.low, f"{metric}_high": ci.high})
            if baseline:
                _compare(row, metric, *study.paired_matrices(variant, baseline, metric), study.margin)
        for col in _side_columns(sub):
            values = sub[col].dropna()
            if values.empty:
                continue
            row[col] = float(values.max() if col == "peak_mem_mb" else values.mean())
            if len(values) < len(sub):  # never average a partial set silently: keep the count
                row[f"{col}{N_SUFFIX}"] = len(values)
        out.append(row)
    table = pd.DataFrame(out)
    for metric in SCORES:
        if f"diff_{metric}_p" in table:  # one Holm family per metric: the study's compared variants
            _family(table, metric, study.margin)
    return table


def verdict(row, metric: str = "exact_match") -> str | None:
    """floor (both sides one and the same constant), else better / worse (Holm-adjusted p < 0.05), equivalent
    (Holm-adjusted TOST p < 0.05), else inconclusive; None when the row is not compared."""
    p = row.get(f"diff_{metric}_p_holm", np.nan)
    if pd.isna(row.get(f"diff_{metric}", np.nan)):
        return None
    if is_floor(row, metric):
        return FLOOR
    if pd.isna(p):
        return None
    if p < ALPHA:
        return "better" if row[f"diff_{metric}"] > 0 else "worse"
    if row.get(f"diff_{metric}_p_equiv_holm", np.nan) < ALPHA:
        return "equivalent"
    return "inconclusive"


def design(table: pd.DataFrame, metric: str = "exact_match") -> dict:
    """The study's design and power: compared variants, of them at the floor and tested (Holm's m), seeds x items,
    margin, median MDE per metric (over the tested ones: a floor has none)."""
    compared = table[table[f"diff_{metric}"].notna()] if f"diff_{metric}" in table else table.iloc[:0]
    floor = [is_floor(row, metric) for _, row in compared.iterrows()]
    tested = compared[~np.array(floor, dtype=bool)]
    seeds = sorted({int(s) for s in compared["seeds"]}) if not compared.empty else []
    items = int(table["items"].iloc[0]) if "items" in table and len(table) else 0
    mde = {m: float(np.median(compared[f"mde_{m}"].dropna())) for m in SCORES  # NaN: a floor of that metric
           if f"mde_{m}" in compared and compared[f"mde_{m}"].notna().any()}
    needed = tested.get(f"seeds_needed_{metric}", pd.Series(dtype=float))
    seed_text = (f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}") if seeds else "?"
    return {"compared": len(compared), "floor": sum(floor), "tested": len(tested), "seeds": seeds, "items": items,
            "mde": mde,
            "margin": float(table["margin"].iloc[0]) if "margin" in table and len(table) else np.nan,
            "seeds_needed": _median_seeds(needed),
            "seeds x items": f"{seed_text} seeds x {items} items"}


def _median_seeds(needed: pd.Series) -> int | None:
    """The median of the seeds each comparison needs (None: none compared, or the median needs more than 100)."""
    if needed.empty:
        return None
    value = float(np.median(needed.fillna(np.inf).to_numpy(dtype=float)))
    return None if not np.isfinite(value) else int(np.ceil(value))


def long_table(study: StudyResults) -> pd.DataFrame:
    """The tidy form: one row per (study, variant, config axes, seed, metric, value)."""
    keep = ["variant", "seed", "run_id", *[c for c in ("baseline", "data", *AXES) if c in study.runs]]
    values = [c for c in study.runs.columns if c not in keep]
    frame = study.runs.melt(id_vars=keep, value_vars=values, var_name="metric", value_name="value")
    frame.insert(0, "study", study.name)
    frame.insert(1, "setup", study.setup)
    return frame.dropna(subset=["value"]).reset_index(drop=True)
