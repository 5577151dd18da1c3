"""`mawt plan`: what a setup's studies can detect, and what they cost, before the GPU hours.

For each study of the setup: the number of compared variants m (its Holm family),
the planned minimum detectable effect of its verdicts (80% power at 0.05 / m,
`mawt.statistics.power.planned`) at the chosen seeds x held-out items x samples, and its
jobs (trainings and held-out evaluations; a run shared by several studies is
counted once, in the first) with GPU-hours estimated from the setup's `plan:`
costs (`train_gpu_s`, `job_gpu_s`, `eval_gpu_s_per_item`, taken from
`benchmarks/paper_cost.py`'s estimate for the paper setup).

Variance components (seed, item, cell; of a paired difference of exact match)
come from, in this order:

1. a finished run of the same setup: the median over the study's comparisons
   of the components its table.csv recorded (`results/<setup>/studies/<study>/`);
2. a finished run of another study of the setup (pooled: the median over every
   comparison of every finished study), for a study not run yet;
3. the setup's stated assumptions (`plan:` in the setup YAML): the baseline's
   accuracy p, the SD of one run's accuracy over seeds (the difference of two
   independent runs has seed variance 2 seed_sd^2), the SD of the per-item true
   difference, and the cell variance of a 0/1 difference, 2 p (1 - p) (an upper
   bound: within-item correlation only lowers it).

With `--samples K` the cell variance is divided by K: pass@1 over K sampled
answers averages K draws of a 0/1 cell (DeepSeek-R1's protocol). That assumes
the cell noise is sampling noise; where it is the seed x item interaction of
greedy runs, more samples do not shrink it and the plan is optimistic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mawt.common.layout import Layout, STUDY_FILES
from mawt.statistics.intervals import ALPHA, Components
from mawt.statistics.power import planned

TARGET_MDE = 0.06  # the default aim: `plan.target_mde` in the setup overrides it


def _measured(table_csv: Path) -> tuple[Components | None, float | None]:
    """The median variance components of a finished study's comparisons and its baselines' median 0/1 rate."""
    if not table_csv.is_file():
        return None, None
    table = pd.read_csv(table_csv)
    rate_col = "base_rate_exact_match"
    rate = (float(np.median(table[rate_col].dropna())) if rate_col in table and table[rate_col].notna().any()
            else None)
    cols = ("var_seed_exact_match", "var_item_exact_match", "var_cell_exact_match")
    if not set(cols) <= set(table) or table[cols[0]].notna().sum() == 0:
        return None, rate
    sub = table[table[cols[0]].notna()]
    seed, item, cell = (float(np.median(sub[c])) for c in cols)
    comp = Components(int(sub["seeds"].max()), int(sub["items"].iloc[0]), seed, item, cell, float("nan"), float("nan"))
    return comp, rate


def _assumed(setup: dict) -> tuple[Components, float]:
    plan = setup.get("plan") or {}
    p = float(plan.get("accuracy", 0.2))
    seed_sd = float(plan.get("seed_sd", 0.02))
    item_sd = float(plan.get("item_sd", 0.0))
    return Components(0, 0, 2 * seed_sd**2, item_sd**2, 2 * p * (1 - p), float("nan"), float("nan")), p


SOURCES = ("auto", "others", "assumed")


def plan(setup: dict, studies: dict, seeds: int | None = None, heldout: int | None = None,
         samples: int | None = None, root: str = "results", source: str = "auto") -> pd.DataFrame:
    """One row per study: design, source of the components, planned MDE, jobs and GPU-hours.

    source: auto (own finished run, else the others', else assumptions), others (only the other studies'
    finished runs: a check that a pilot predicts a new study), assumed (only the setup's `plan:`).
    """
    if source not in SOURCES:
        raise ValueError(f"--source {source!r} is invalid: allowed are {', '.join(SOURCES)}")
    from mawt.studies.study import run_config, run_id

    layout = Layout(setup["name"], root)
    tables = {name: Path(layout.study_file(name, STUDY_FILES["table"])) for name in studies}
    found = {name: _measured(path) for name, path in tables.items()}
    measured = {name: comp for name, (comp, _) in found.items()}
    if source == "assumed":
        measured = dict.fromkeys(measured)
    assumed, assumed_rate = _assumed(setup)
    rates = [rate for _, rate in found.values() if rate is not None]
    base_rate = float(np.median(rates)) if rates else assumed_rate
    plan_cfg = setup.get("plan") or {}
    run = setup.get("run") or {}
    samples = int(samples or (run.get("eval") or {}).get("n_samples", 1))
    items = heldout or _heldout_items(setup)
    rows, trained = [], set()
    for name, study in studies.items():
        S = int(seeds or len(study.seeds))
        m = sum(1 for v, b in study.baselines.items() if b)
        pooled = _pooled([c for other, c in measured.items() if other != name and c is not None])
        own = measured[name] if source == "auto" else None
        comp, origin = ((own, "this study's finished run") if own is not None
                        else (pooled, "the other finished studies (median)") if pooled is not None
                        else (assumed, "the setup's plan: assumptions"))
        design = planned(comp, S, items, ALPHA / max(m, 1), base_rate=base_rate, cell_scale=1.0 / samples)
        ids = {run_id(run_config(setup, study, v, 0)) for v in study.variants}
        new = ids - trained
        trained |= ids
        train_jobs = eval_jobs = len(new) * S  # a run shared with an earlier study is trained and evaluated once
        hours = (train_jobs * float(plan_cfg.get("train_gpu_s", 0.0))
                 + eval_jobs * (float(plan_cfg.get("job_gpu_s", 0.0))
                                + items * samples * float(plan_cfg.get("eval_gpu_s_per_item", 0.0)))) / 3600
        rows.append({"study": name, "compared (Holm m)": m, "seeds": S, "held-out items": items, "samples": samples,
                     "components from": origin, "seed var": comp.seed, "item var": comp.item,
                     "cell var": comp.cell / samples, "planned SE": design["se"], "df": design["df"],
                     "planned MDE": design["mde"], "new trainings": train_jobs, "new evaluations": eval_jobs,
                     "GPU-hours (estimate)": hours if plan_cfg.get("eval_gpu_s_per_item") else float("nan")})
    return pd.DataFrame(rows)


def _pooled(found: list[Components]) -> Components | None:
    if not found:
        return None
    med = [float(np.median([getattr(c, k) for c in found])) for k in ("seed", "item", "cell")]
    return Components(0, 0, *med, float("nan"), float("nan"))


def _heldout_items(setup: dict) -> int:
    data = setup.get("data") or {}
    if data.get("n_heldout"):
        return int(data["n_heldout"])
    plan_cfg = setup.get("plan") or {}
    if plan_cfg.get("heldout_items"):
        return int(plan_cfg["heldout_items"])
    raise ValueError(f"setup {setup['name']!r}: data.n_heldout is null (every row not trained on) and the plan does "
                     "not know the dataset's size: pass --heldout N or set plan.heldout_items")


def fewest_seeds(setup: dict, studies: dict, target: float, samples: int | None = None,
                 heldout: int | None = None, most: int = 40, **kw) -> int | None:
    """The fewest seeds whose planned MDE is at most `target` in every study (None: not within `most`)."""
    for S in range(2, most + 1):
        if (plan(setup, studies, seeds=S, samples=samples, heldout=heldout, **kw)["planned MDE"] <= target).all():
            return S
    return None


def render(setup: dict, frame: pd.DataFrame, target: float) -> str:
    shown = frame.copy()
    for col, fmt in (("seed var", "{:.2e}"), ("item var", "{:.2e}"), ("cell var", "{:.3f}"), ("planned SE", "{:.4f}"),
                     ("df", "{:.1f}"), ("planned MDE", "{:.3f}"), ("GPU-hours (estimate)", "{:.1f}")):
        shown[col] = [("" if pd.isna(v) else fmt.format(v)) for v in shown[col]]
    total = frame["GPU-hours (estimate)"].sum(min_count=1)
    meets = (frame["planned MDE"] <= target).all()
    lines = [shown.to_markdown(index=False, disable_numparse=True), "",
             f"Target MDE {target:g}: {'met by every study' if meets else 'NOT met by every study'}. "
             f"Jobs: {int(frame['new trainings'].sum())} trainings, {int(frame['new evaluations'].sum())} held-out "
             f"evaluations (lm-eval and the untuned base not counted)" + ("" if pd.isna(total) else f"; about {total:.1f} GPU-hours (estimate: setup's plan "
                                                           "keys, from benchmarks/paper_cost.py)") + "."]
    return "\n".join(lines)
