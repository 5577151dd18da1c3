"""Per-study tables from the workflow's run index (pandas; CSV + Markdown).

The index (`results/<setup>/studies/<study>/runs.json`, written by the workflow)
lists the study's runs (variant, seed, run directory) and the untuned base
model's evaluation. Every run directory holds run.json (training), heldout.json
(greedy answers, both scores) and lmeval.json (lm-eval task scores).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

METRICS = ("exact_match", "challenge_metric", "heldout_answer_loss")


def _read(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def _lm_eval_columns(lmeval: dict) -> dict:
    out = {}
    for task, scores in lmeval.get("tasks", {}).items():
        for metric, value in scores.items():
            if not metric.endswith("_stderr"):
                out[f"lm_eval:{task}:{metric}"] = value
    return out


def tidy_runs(index: dict) -> pd.DataFrame:
    """One row per (variant, seed): config axes, scores, cost."""
    rows = []
    base = index["base"]
    rows.append({"variant": "base (untuned)", "seed": None, "run_id": "base",
                 **{m: _read(base["heldout"])[m] for m in METRICS}, **_lm_eval_columns(_read(base["lmeval"]))})
    for run in index["runs"]:
        d = Path(run["dir"])
        info, held = _read(d / "run.json"), _read(d / "heldout.json")
        mawt = info["config"]["mawt"] or {}
        rows.append({
            "variant": run["variant"], "seed": run["seed"], "run_id": run["run_id"],
            "depth": mawt.get("depth"), "mixer": mawt.get("mixer"), "layers": str(mawt.get("layers")),
            "trainable": info["config"]["trainable"],
            **{m: held[m] for m in METRICS},
            **_lm_eval_columns(_read(d / "lmeval.json")),
            "trainable_parameters": info["trainable_parameters"], "train_seconds": info["train_seconds"],
            **{k: v for k, v in info.get("final_selection", {}).items()},
        })
    return pd.DataFrame(rows)


def summarise(tidy: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds, per variant (in the index's order)."""
    order = list(dict.fromkeys(tidy["variant"]))
    numeric = [c for c in tidy.columns if c not in ("variant", "seed", "run_id", "mixer", "layers", "trainable")
               and pd.api.types.is_numeric_dtype(tidy[c])]
    grouped = tidy.groupby("variant", sort=False)
    table = grouped[numeric].mean()
    for metric in ("exact_match", "challenge_metric"):
        table[f"{metric}_sd"] = grouped[metric].std(ddof=1)
    table["seeds"] = grouped["seed"].count()
    for col in ("mixer", "layers", "trainable"):
        table[col] = grouped[col].first()
    return table.loc[order].reset_index()


def study_table(index_path: Path, out_dir: Path) -> pd.DataFrame:
    index = _read(index_path)
    tidy = tidy_runs(index)
    table = summarise(tidy)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in (("runs.csv", tidy), ("table.csv", table)):
        tmp = out_dir / f"{name}.tmp"
        frame.to_csv(tmp, index=False)
        tmp.replace(out_dir / name)
    shown = ["variant", "depth", "mixer", "trainable", "seeds", "exact_match", "exact_match_sd", "challenge_metric",
             "heldout_answer_loss", "trainable_parameters", "train_seconds"]
    shown += [c for c in table.columns if c.startswith("lm_eval:")]
    md = f"# Study `{index['study']}` ({index['setup']} setup)\n\n" + table[[c for c in shown if c in table]].to_markdown(
        index=False, floatfmt=".3f") + "\n"
    tmp = out_dir / "table.md.tmp"
    tmp.write_text(md)
    tmp.replace(out_dir / "table.md")
    return table
