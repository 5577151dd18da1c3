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
3. the setup's pilot (`snakemake pilot`, mawt/studies/pilot.py: one variant against
   its baseline, measured on the full held-out set before the studies run;
   `results/<setup>/pilot/pilot.json`), for every study alike;
4. the setup's stated assumptions (`plan:` in the setup YAML): the baseline's
   accuracy p, the SD of one run's accuracy over seeds (the difference of two
   independent runs has seed variance 2 seed_sd^2), the SD of the per-item true
   difference, and the cell variance of a 0/1 difference, 2 p (1 - p) (an upper
   bound: within-item correlation only lowers it).

`source` picks: auto (that order), others (2 only, else 4: a check that finished
studies predict a new one), pilot (3 only: refused, naming the command, when the
pilot has not run) or assumed (4 only). The baseline's rate comes from the same
source. The table puts the seed SD (of the difference's seed effect, sqrt of the seed
variance) that the assumptions give next to the one measured, and the seeds each
study needs to reach the target MDE with the components it used.

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


SOURCES = ("auto", "others", "pilot", "assumed")
ASSUMED = "the setup's plan: assumptions"


def _pilot(setup: dict, root: str, required: bool) -> dict | None:
    """The pilot's exact-match components and rate (mawt/studies/pilot.py), or None when it has not run
    and is not `required` (a missing one is refused then, naming the file and the command that makes it)."""
    from mawt.studies.pilot import METRIC, PILOT_JSON, pilot_file, read_pilot

    if not required and not Path(pilot_file(Layout(setup["name"], root), PILOT_JSON)).is_file():
        return None
    result, path = read_pilot(setup, root)
    score, c = result["scores"][METRIC], result["scores"][METRIC]["components"]
    comp = Components(int(c["seeds"]), int(c["items"]), float(c["var_seed"]), float(c["var_item"]),
                      float(c["var_cell"]), float("nan"), float("nan"))
    return {"components": comp, "rate": score["base_rate"], "path": path, "result": result,
            "origin": f"the pilot ({comp.seeds} seeds x {comp.items} items)"}


def _gpu_hours(plan_cfg: dict, trainings: int, evaluations: int, items: int, samples: int) -> float:
    """The setup's `plan:` costs of so many trainings and held-out evaluations (NaN without per-item costs)."""
    if not plan_cfg.get("eval_gpu_s_per_item"):
        return float("nan")
    return (trainings * float(plan_cfg.get("train_gpu_s", 0.0))
            + evaluations * (float(plan_cfg.get("job_gpu_s", 0.0))
                             + items * samples * float(plan_cfg["eval_gpu_s_per_item"]))) / 3600


def _seeds_for(comp: Components, items: int, alpha: float, base_rate: float, samples: int, target: float,
               most: int = 40) -> int | None:
    """The fewest seeds (2..most) whose planned MDE is at most `target`, these components as they are."""
    for S in range(2, most + 1):
        if planned(comp, S, items, alpha, base_rate=base_rate, cell_scale=1.0 / samples)["mde"] <= target:
            return S
    return None


def plan(setup: dict, studies: dict, seeds: int | None = None, heldout: int | None = None,
         samples: int | None = None, root: str = "results", source: str = "auto",
         target: float | None = None) -> pd.DataFrame:
    """One row per study: design, source of the components, planned MDE, jobs and GPU-hours.

    source: auto (own finished run, else the others', else the pilot, else assumptions), others (only the other
    studies' finished runs: a check that a pilot predicts a new study), pilot (only the pilot; refused when it
    has not run), assumed (only the setup's `plan:`). With `target`, also the seeds each study needs for it.
    `frame.attrs["pilot"]`: the pilot read, if any row used it.
    """
    if source not in SOURCES:
        raise ValueError(f"--source {source!r} is invalid: allowed are {', '.join(SOURCES)}")
    from mawt.studies.study import run_config, run_id

    layout = Layout(setup["name"], root)
    tables = {name: Path(layout.study_file(name, STUDY_FILES["table"])) for name in studies}
    found = ({name: _measured(path) for name, path in tables.items()} if source in ("auto", "others")
             else dict.fromkeys(tables, (None, None)))
    measured = {name: comp for name, (comp, _) in found.items()}
    pilot = _pilot(setup, root, required=source == "pilot") if source in ("auto", "pilot") else None
    assumed, assumed_rate = _assumed(setup)
    rates = [rate for _, rate in found.values() if rate is not None]
    pilot_rate = pilot["rate"] if pilot and pilot["rate"] is not None else None
    base_rate = float(np.median(rates)) if rates else pilot_rate if pilot_rate is not None else assumed_rate
    plan_cfg = setup.get("plan") or {}
    run = setup.get("run") or {}
    samples = int(samples or (run.get("eval") or {}).get("n_samples", 1))
    items = heldout or _heldout_items(setup)
    rows, trained, used_pilot = [], set(), False
    for name, study in studies.items():
        S = int(seeds or len(study.seeds))
        m = sum(1 for v, b in study.baselines.items() if b)
        pooled = _pooled([c for other, c in measured.items() if other != name and c is not None])
        own = measured[name] if source == "auto" else None
        comp, origin = ((own, "this study's finished run") if own is not None
                        else (pooled, "the other finished studies (median)") if pooled is not None
                        else (pilot["components"], pilot["origin"]) if pilot is not None
                        else (assumed, ASSUMED))
        used_pilot |= pilot is not None and comp is pilot["components"]
        alpha = ALPHA / max(m, 1)
        design = planned(comp, S, items, alpha, base_rate=base_rate, cell_scale=1.0 / samples)
        ids = {run_id(run_config(setup, study, v, 0)) for v in study.variants}
        new = ids - trained
        trained |= ids
        train_jobs = eval_jobs = len(new) * S  # a run shared with an earlier study is trained and evaluated once
        row = {"study": name, "compared (Holm m)": m, "seeds": S, "held-out items": items, "samples": samples,
               "components from": origin, "seed SD assumed": float(np.sqrt(assumed.seed)),
               "seed SD measured": float(np.sqrt(comp.seed)) if origin != ASSUMED else float("nan"),
               "seed var": comp.seed, "item var": comp.item, "cell var": comp.cell / samples,
               "planned SE": design["se"], "df": design["df"], "planned MDE": design["mde"]}
        if target is not None:
            need = _seeds_for(comp, items, alpha, base_rate, samples, target)
            row["seeds for target MDE"] = float("nan") if need is None else need
        rows.append({**row, "new trainings": train_jobs, "new evaluations": eval_jobs,
                     "GPU-hours (estimate)": _gpu_hours(plan_cfg, train_jobs, eval_jobs, items, samples)})
    frame = pd.DataFrame(rows)
    frame.attrs.update(base_rate=base_rate, assumed_rate=assumed_rate, pilot=pilot if used_pilot else None)
    return frame


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
    """The plan as Markdown: the table, whether the target is met, the jobs, and where the components came from."""
    from mawt.studies.pilot import pilot_command, pilot_settings

    shown = frame.copy()
    for col, fmt in (("seed SD assumed", "{:.3f}"), ("seed SD measured", "{:.3f}"), ("seed var", "{:.2e}"),
                     ("item var", "{:.2e}"), ("cell var", "{:.3f}"), ("planned SE", "{:.4f}"),
                     ("df", "{:.1f}"), ("planned MDE", "{:.3f}"), ("seeds for target MDE", "{:.0f}"),
                     ("GPU-hours (estimate)", "{:.1f}")):
        if col in shown:
            none = "> 40" if col == "seeds for target MDE" else ""
            shown[col] = [(none if pd.isna(v) else fmt.format(v)) for v in shown[col]]
    total = frame["GPU-hours (estimate)"].sum(min_count=1)
    meets = (frame["planned MDE"] <= target).all()
    lines = [shown.to_markdown(index=False, disable_numparse=True), "",
             f"Target MDE {target:g}: {'met by every study' if meets else 'NOT met by every study'}. "
             f"Jobs: {int(frame['new trainings'].sum())} trainings, {int(frame['new evaluations'].sum())} held-out "
             f"evaluations (lm-eval and the untuned base not counted)" + ("" if pd.isna(total) else f"; about {total:.1f} GPU-hours (estimate: setup's plan "
                                                           "keys, from benchmarks/paper_cost.py)") + ".",
             "", "seed SD: of the paired difference's seed effect, sqrt(seed var) (the setup's plan.seed_sd is one "
             f"run's: x sqrt 2). Baseline exact match: {frame.attrs.get('base_rate', float('nan')):.3f} used, "
             f"{frame.attrs.get('assumed_rate', float('nan')):.3f} assumed."]
    pilot = frame.attrs.get("pilot")
    if pilot is not None:
        r, c = pilot["result"], pilot["components"]
        lines.append(f"Measured by the pilot ({pilot['path']}): `{r['variant']}` of study `{r['study']}` against "
                     f"`{r['baseline']}`, seeds {', '.join(map(str, r['seeds']))} x {r['items']} items; seed SD "
                     f"{np.sqrt(c.seed):.3f} measured against {frame['seed SD assumed'].iloc[0]:.3f} assumed.")
    elif (frame["components from"] == ASSUMED).any():
        n = int(pilot_settings(setup)["seeds"])
        items, samples = int(frame["held-out items"].iloc[0]), int(frame["samples"].iloc[0])
        cost = _gpu_hours(setup.get("plan") or {}, 2 * n, 2 * n, items, samples)
        lines.append(f"These components are assumptions: `{pilot_command(setup)}` measures them ({2 * n} trainings "
                     f"and {2 * n} held-out evaluations" + ("" if pd.isna(cost) else f", about {cost:.1f} GPU-hours")
                     + ", reused by the studies), then plan with `--source pilot`.")
    return "\n".join(lines)
