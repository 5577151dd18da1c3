"""A study's comparisons: every variant against its own baseline (`mawt.stats`).

Each variant is compared with its own baseline, paired by seed id over the same
held-out items (a variant whose seeds differ from its baseline's is refused with
a ValueError; the untuned base, one row without a seed, is broadcast to every
seed). Per compared variant and metric the summary holds the difference, its
unadjusted 95% interval, the bootstrap SE, the two-sided p-value, the
Holm-adjusted p-value over the study's compared variants (one family per
metric) and the minimum detectable effect; `diff_<metric>_significant` is
Holm-adjusted p < 0.05.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .results import AXES, N_SUFFIX, SCORES, StudyResults
from .stats import ALPHA, bootstrap_ci, holm, paired_difference


def _side_columns(runs: pd.DataFrame) -> list[str]:
    skip = {*SCORES, "seed", *AXES}
    return [c for c in runs.columns if c not in skip and pd.api.types.is_numeric_dtype(runs[c])]


def summarise(study: StudyResults, n_boot: int = 2000) -> pd.DataFrame:
    """One row per variant: means, 95% intervals, paired differences to its baseline (p, Holm, MDE), side metrics."""
    runs = study.runs
    referenced = {b for b in study.baselines.values() if b}
    out = []
    for variant in study.variants:
        sub = runs[runs["variant"] == variant]
        baseline = study.baselines.get(variant)
        row = {"variant": variant, "baseline": baseline, "is_baseline": variant in referenced,
               "seeds": int(sub["seed"].notna().sum()), "runs": len(sub), "items": len(study.items[sub["run_id"].iloc[0]])}
        for axis in AXES:
            row[axis] = sub[axis].iloc[0] if axis in sub and sub[axis].notna().any() else None
        for metric in SCORES:
            ci = bootstrap_ci(study.score_matrix(variant, metric), n_boot=n_boot)
            row.update({metric: ci.mean, f"{metric}_low": ci.low, f"{metric}_high": ci.high})
            if baseline:
                diff = paired_difference(*study.paired_matrices(variant, baseline, metric), n_boot=n_boot)
                row.update({f"diff_{metric}": diff.mean, f"diff_{metric}_low": diff.low,
                            f"diff_{metric}_high": diff.high, f"diff_{metric}_se": diff.se,
                            f"diff_{metric}_p": diff.p, f"mde_{metric}": diff.mde})
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
            table[f"diff_{metric}_p_holm"] = holm(table[f"diff_{metric}_p"].to_numpy(dtype=float))
            compared = table[f"diff_{metric}"].notna()
            significant = (table[f"diff_{metric}_p_holm"] < ALPHA).astype(object)
            table[f"diff_{metric}_significant"] = significant.where(compared, np.nan)
    return table


def verdict(row, metric: str = "exact_match") -> str | None:
    """"better" / "worse" / "not distinguishable" (Holm-adjusted p < 0.05), None when not compared."""
    p = row.get(f"diff_{metric}_p_holm", np.nan)
    if pd.isna(row.get(f"diff_{metric}", np.nan)) or pd.isna(p):
        return None
    if p < ALPHA:
        return "better" if row[f"diff_{metric}"] > 0 else "worse"
    return "not distinguishable"


def design(table: pd.DataFrame, metric: str = "exact_match") -> dict:
    """The study's design and power: compared variants, seeds x items, median MDE per metric."""
    compared = table[table[f"diff_{metric}"].notna()] if f"diff_{metric}" in table else table.iloc[:0]
    seeds = sorted({int(s) for s in compared["seeds"]}) if not compared.empty else []
    items = int(table["items"].iloc[0]) if "items" in table and len(table) else 0
    mde = {m: float(np.median(compared[f"mde_{m}"])) for m in SCORES
           if f"mde_{m}" in compared and not compared.empty}
    seed_text = (f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}") if seeds else "?"
    return {"compared": len(compared), "seeds": seeds, "items": items, "mde": mde,
            "seeds x items": f"{seed_text} seeds x {items} items"}


def long_table(study: StudyResults) -> pd.DataFrame:
    """The tidy form: one row per (study, variant, config axes, seed, metric, value)."""
    keep = ["variant", "seed", "run_id", *[c for c in ("baseline", "data", *AXES) if c in study.runs]]
    values = [c for c in study.runs.columns if c not in keep]
    frame = study.runs.melt(id_vars=keep, value_vars=values, var_name="metric", value_name="value")
    frame.insert(0, "study", study.name)
    frame.insert(1, "setup", study.setup)
    return frame.dropna(subset=["value"]).reset_index(drop=True)
