"""A study's comparisons: every variant against its own baseline, with verdicts (`mawt.statistics.paired`).

Each variant is compared with its own baseline (its plain counterpart, or the
variant named in the study's `compare:`), paired by seed id over the same
held-out items (a variant whose seeds differ from its baseline's is refused
with a ValueError; the untuned base, one row without a seed, is broadcast to
every seed). Per compared variant and metric the summary holds the difference,
its unadjusted 95% t interval, SE and degrees of freedom, the variance
components, the two-sided p-value and the TOST p-value of equivalence within
the study's margin, both Holm-adjusted over the study's compared variants (one
family per metric), and:

* `verdict_<metric>`: "better" / "worse" (Holm-adjusted p < 0.05), else
  "equivalent" (Holm-adjusted TOST p < 0.05: the difference lies within
  +-margin), else "inconclusive";
* `mde_<metric>`: the MDE of that verdict, the difference detected with 80%
  power by the test at Holm's first-step level 0.05 / m (m compared variants;
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

VERDICTS = ("better", "worse", "equivalent", "inconclusive")


def _side_columns(runs: pd.DataFrame) -> list[str]:
    skip = {*SCORES, "seed", *AXES}
    return [c for c in runs.columns if c not in skip and pd.api.types.is_numeric_dtype(runs[c])]


def _binary(matrix: np.ndarray) -> bool:
    return bool(np.isin(matrix, (0.0, 1.0)).all())


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
                f"base_rate_{metric}": np.nan if rate is None else rate})


def _family(table: pd.DataFrame, metric: str, margin: float) -> None:
    """Holm over the study's compared variants, the verdicts, the verdict's MDE and the seeds it needs."""
    compared = table[f"diff_{metric}"].notna()
    m = int(compared.sum())
    table[f"diff_{metric}_p_holm"] = holm(table[f"diff_{metric}_p"].to_numpy(dtype=float))
    table[f"diff_{metric}_p_equiv_holm"] = holm(table[f"diff_{metric}_p_equiv"].to_numpy(dtype=float))
    verdicts, mdes, needed = [], [], []
    for _, row in table.iterrows():
        if not compared[_]:
            verdicts.append(None), mdes.append(np.nan), needed.append(np.nan)
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
    """better / worse (Holm-adjusted p < 0.05), equivalent (Holm-adjusted TOST p < 0.05), else inconclusive;
    None when the row is not compared."""
    p = row.get(f"diff_{metric}_p_holm", np.nan)
    if pd.isna(row.get(f"diff_{metric}", np.nan)) or pd.isna(p):
        return None
    if p < ALPHA:
        return "better" if row[f"diff_{metric}"] > 0 else "worse"
    if row.get(f"diff_{metric}_p_equiv_holm", np.nan) < ALPHA:
        return "equivalent"
    return "inconclusive"


def design(table: pd.DataFrame, metric: str = "exact_match") -> dict:
    """The study's design and power: compared variants, seeds x items, margin, median MDE per metric."""
    compared = table[table[f"diff_{metric}"].notna()] if f"diff_{metric}" in table else table.iloc[:0]
    seeds = sorted({int(s) for s in compared["seeds"]}) if not compared.empty else []
    items = int(table["items"].iloc[0]) if "items" in table and len(table) else 0
    mde = {m: float(np.median(compared[f"mde_{m}"])) for m in SCORES
           if f"mde_{m}" in compared and not compared.empty}
    needed = compared.get(f"seeds_needed_{metric}", pd.Series(dtype=float))
    seed_text = (f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}") if seeds else "?"
    return {"compared": len(compared), "seeds": seeds, "items": items, "mde": mde,
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
