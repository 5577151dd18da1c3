"""Per-study tables from the workflow's run index (pandas; CSV + Markdown).

The index (`results/<setup>/studies/<study>/runs.json`, written by the workflow)
lists the study's runs (variant, seed, run directory, benchmark file) and the
untuned base model's evaluation. Every run directory holds run.json (training),
metrics.jsonl (training curves), heldout.json (greedy answers per item, both
scores) and lmeval.json (lm-eval task scores with their standard errors).

Intervals: `mawt.stats` (two-level bootstrap over seeds and held-out items;
the difference to the `plain` baseline is paired over the same seeds and items).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_path
from .stats import bootstrap_ci, paired_difference_ci

SCORES = ("exact_match", "challenge_metric")  # per-item 0/1 scores with intervals
ITEM_KEYS = {"exact_match": "exact_match", "challenge_metric": "challenge_correct"}
BASELINE = "plain"
BASE = "base (untuned)"
AXES = ("depth", "mixer", "layers", "trainable", "group_size", "learning_rate", "steps")


def _read(path) -> dict:
    return json.loads(Path(path).read_text())


def write_table(frame_or_text, path: Path) -> None:
    """Write through a temporary file so a crash never leaves a half-written table."""
    with atomic_path(path) as tmp:
        if isinstance(frame_or_text, str):
            tmp.write_text(frame_or_text)
        elif path.suffix == ".parquet":
            frame_or_text.to_parquet(tmp, index=False)
        else:
            frame_or_text.to_csv(tmp, index=False)


def read_benchmark(path) -> dict:
    """Snakemake's `benchmark:` TSV (s, max_rss in MB, ...) -> dict; {} when absent."""
    if not path or not Path(path).exists():
        return {}
    frame = pd.read_csv(path, sep="\t")
    return {} if frame.empty else {"seconds": float(frame["s"].iloc[-1]), "max_rss_mb": float(frame["max_rss"].iloc[-1])}


def read_metrics(path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        return pd.DataFrame()
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return pd.DataFrame(rows)


def _lm_eval_columns(lmeval: dict) -> dict:
    return {f"lm_eval:{task}:{metric}": value for task, scores in lmeval.get("tasks", {}).items()
            for metric, value in scores.items()}


@dataclass
class Study:
    """Everything one study's tables, plots and report section need."""

    name: str
    setup: str
    description: str
    yaml: str
    runs: pd.DataFrame  # one row per run (the untuned base first, seed NaN)
    items: dict[str, pd.DataFrame] = field(default_factory=dict)  # run id -> per-item records
    metrics: dict[str, pd.DataFrame] = field(default_factory=dict)  # run id -> training log
    attention: str | None = None  # .npz written by `python -m mawt attention`
    dirs: dict[str, str] = field(default_factory=dict)  # run id -> run directory

    @property
    def variants(self) -> list[str]:
        return list(dict.fromkeys(self.runs["variant"]))

    def score_matrix(self, variant: str, metric: str) -> np.ndarray:
        """(seeds x items) per-item scores of a variant, rows in seed order."""
        runs = self.runs[self.runs["variant"] == variant].sort_values("seed", na_position="first")
        key = ITEM_KEYS[metric]
        rows = [self.items[r][key].astype(float).to_numpy() for r in runs["run_id"]]
        return np.stack(rows)


def load_study(index_path) -> Study:
    index = _read(index_path)
    base = index["base"]
    held = _read(base["heldout"])
    rows = [{"variant": BASE, "seed": np.nan, "run_id": "base",
             **{m: held[m] for m in (*SCORES, "heldout_answer_loss")}, **_lm_eval_columns(_read(base["lmeval"]))}]
    items = {"base": pd.DataFrame(held["items"])}
    metrics = {}
    for run in index["runs"]:
        d = Path(run["dir"])
        info, held = _read(d / "run.json"), _read(d / "heldout.json")
        cfg = info["config"]
        mawt = cfg.get("mawt") or {}
        bench = read_benchmark(run.get("bench"))
        rows.append({
            "variant": run["variant"], "seed": run["seed"], "run_id": run["run_id"],
            **{m: held[m] for m in (*SCORES, "heldout_answer_loss")},
            **_lm_eval_columns(_read(d / "lmeval.json")),
            "depth": mawt.get("depth"), "mixer": mawt.get("mixer"), "layers": str(mawt.get("layers")),
            "trainable": cfg["trainable"], "group_size": cfg["train"].get("group_size"),
            "learning_rate": cfg["train"].get("learning_rate"), "steps": cfg["train"].get("steps"),
            "trainable_parameters": info["trainable_parameters"], "train_seconds": info["train_seconds"],
            "job_seconds": bench.get("seconds", np.nan), "peak_mem_mb": bench.get("max_rss_mb", np.nan),
            **info.get("final_selection", {}),
        })
        items[run["run_id"]] = pd.DataFrame(held["items"])
        metrics[run["run_id"]] = read_metrics(d / "metrics.jsonl")
    challenges = {r: tuple(frame["challenge"]) for r, frame in items.items()}
    if len(set(challenges.values())) > 1:
        raise ValueError(f"{index_path}: runs were evaluated on different held-out items; re-run eval_heldout")
    return Study(index["study"], index["setup"], index.get("description", ""), index.get("yaml", ""),
                 pd.DataFrame(rows), items, metrics, index.get("attention"),
                 {r["run_id"]: r["dir"] for r in index["runs"]})


def summarise(study: Study, n_boot: int = 2000) -> pd.DataFrame:
    """One row per variant: means, 95% intervals, paired differences to `plain`, cost, selector."""
    runs = study.runs
    has_baseline = BASELINE in study.variants
    out = []
    for variant in study.variants:
        sub = runs[runs["variant"] == variant]
        row = {"variant": variant, "seeds": int(sub["seed"].notna().sum())}
        for axis in AXES:
            row[axis] = sub[axis].iloc[0] if axis in sub and sub[axis].notna().any() else None
        for metric in SCORES:
            scores = study.score_matrix(variant, metric)
            ci = bootstrap_ci(scores, n_boot=n_boot)
            row.update({metric: ci.mean, f"{metric}_low": ci.low, f"{metric}_high": ci.high})
            if has_baseline and variant != BASELINE:
                diff = paired_difference_ci(scores, study.score_matrix(BASELINE, metric), n_boot=n_boot)
                row.update({f"diff_{metric}": diff.mean, f"diff_{metric}_low": diff.low,
                            f"diff_{metric}_high": diff.high, f"diff_{metric}_significant": diff.excludes_zero})
        numeric = [c for c in sub.columns if c not in (*SCORES, "seed", *AXES) and pd.api.types.is_numeric_dtype(sub[c])]
        for col in numeric:
            if sub[col].notna().any():
                row[col] = float(sub[col].max() if col == "peak_mem_mb" else sub[col].mean())
        out.append(row)
    return pd.DataFrame(out)


def long_table(study: Study) -> pd.DataFrame:
    """The tidy form: one row per (study, variant, config axes, seed, metric, value)."""
    keep = ["variant", "seed", "run_id", *[a for a in AXES if a in study.runs]]
    values = [c for c in study.runs.columns if c not in keep]
    frame = study.runs.melt(id_vars=keep, value_vars=values, var_name="metric", value_name="value")
    frame.insert(0, "study", study.name)
    frame.insert(1, "setup", study.setup)
    return frame.dropna(subset=["value"]).reset_index(drop=True)


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _interval(row, metric: str, digits: int = 2) -> str:
    if pd.isna(row.get(metric)):
        return ""
    return f"{row[metric]:.{digits}f} [{row[f'{metric}_low']:.{digits}f}, {row[f'{metric}_high']:.{digits}f}]"


def _difference(row, metric: str) -> str:
    if pd.isna(row.get(f"diff_{metric}", np.nan)):
        return "(baseline)" if row["variant"] == BASELINE else ""
    mark = " *" if row[f"diff_{metric}_significant"] else ""
    return (f"{row[f'diff_{metric}']:+.2f} [{row[f'diff_{metric}_low']:+.2f}, "
            f"{row[f'diff_{metric}_high']:+.2f}]{mark}")


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The human-readable table (strings): what the Markdown file and the report show."""
    shown = []
    for _, row in table.iterrows():
        entry = {
            "variant": row["variant"],
            "D": "" if pd.isna(row.get("depth")) else int(row["depth"]),
            "mixer": _text(row.get("mixer")),
            "trainable": _text(row.get("trainable")),
            "seeds": row["seeds"],
            "exact match [95% CI]": _interval(row, "exact_match"),
            "vs plain": _difference(row, "exact_match"),
            "challenge metric [95% CI]": _interval(row, "challenge_metric"),
            "vs plain ": _difference(row, "challenge_metric"),
            "answer loss": f"{row['heldout_answer_loss']:.3f}",
        }
        for col in table.columns:
            if col.startswith("lm_eval:") and not col.endswith("_stderr"):
                err = row.get(f"{col}_stderr", np.nan)
                entry[col.removeprefix("lm_eval:")] = "" if pd.isna(row[col]) else (
                    f"{row[col]:.3f}" + ("" if pd.isna(err) else f" ± {err:.3f}"))
        for col, label, fmt in (("trainable_parameters", "trainable params", "{:,.0f}"),
                                ("train_seconds", "train s", "{:.1f}"), ("peak_mem_mb", "peak MB", "{:.0f}"),
                                ("selector_entropy", "selector entropy", "{:.3f}")):
            entry[label] = "" if pd.isna(row.get(col, np.nan)) else fmt.format(row[col])
        usage = sorted(c for c in table.columns if c.startswith("depth_usage_"))
        if usage and not pd.isna(row.get(usage[0], np.nan)):
            entry["held-out slice usage"] = " / ".join(f"{row[c]:.2f}" for c in usage if not pd.isna(row[c]))
        else:
            entry["held-out slice usage"] = ""
        shown.append(entry)
    return pd.DataFrame(shown)


NOTE = ("Mean over seeds and held-out items with a 95% bootstrap interval (seeds and items resampled); "
        "'vs plain' is the paired difference to plain fine-tuning (D=1, fixed) over the same seeds and items, "
        "'*' where its interval excludes 0. lm-eval: score ± lm-eval's standard error, both averaged over seeds. "
        "peak MB: the largest max RSS of the variant's training jobs (Snakemake benchmark). Selector entropy and "
        "slice usage: the trained model on the held-out answers (eval mode: GRPO and gumbel pick the argmax slice).")


def study_table(index_path: Path, out_dir: Path, n_boot: int = 2000) -> pd.DataFrame:
    """Write table.csv (numbers), table.md (display), runs.csv (one row per run), long.csv (tidy)."""
    study = load_study(index_path)
    table = summarise(study, n_boot=n_boot)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(study.runs, out_dir / "runs.csv")
    write_table(table, out_dir / "table.csv")
    write_table(long_table(study), out_dir / "long.csv")
    md = (f"# Study `{study.name}` ({study.setup} setup)\n\n" + (f"{study.description}\n\n" if study.description else "")
          + display_table(table).to_markdown(index=False) + f"\n\n{NOTE}\n")
    write_table(md, out_dir / "table.md")
    return table
