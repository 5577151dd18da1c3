"""Per-study tables from the workflow's run index (pandas; CSV + Markdown).

The index (`results/<setup>/studies/<study>/runs.json`, written by the workflow)
lists the study's runs and the untuned base model's evaluation. Each entry of
`index["runs"]` has `variant`, `seed`, `run_id`, `dir`, `bench` and, optionally,
`baseline`: the variant it is compared with (e.g. "plain_last2" for a variant
trained with `trainable: last:2`); null for the baselines/controls themselves.
When the key is absent the baseline is "plain" (for every variant but plain
itself, and only if the study has a plain variant), so older indexes keep
their meaning. Every run directory holds run.json (training, `environment`),
metrics.jsonl (training curves), heldout.json (greedy answers per item, both
scores, `environment`, and `selection`: slice usage `depth_usage_<d>` and
`selector_entropy` of the trained model over every held-out item at the
answer-predicting positions) and lmeval.json (lm-eval task scores with their
standard errors). A run whose heldout.json has no `selection` falls back to
run.json's `final_selection` (the last training batch), kept in separate
`train_batch_*` columns and labelled as such.

Comparisons (`mawt.stats`): each variant against its own baseline, paired by
seed id over the same held-out items (a variant whose seeds differ from its
baseline's is refused with a ValueError when the table is built; the untuned
base, one row without a seed, is broadcast to every seed). Per compared variant
and metric table.csv holds the difference, its unadjusted 95% interval, the
bootstrap SE, the two-sided p-value, the Holm-adjusted p-value over the
study's compared variants (one family per metric) and the minimum detectable
effect; `diff_<metric>_significant` is Holm-adjusted p < 0.05.

Side metrics (lm-eval scores, selector statistics, costs, ...) are means over
the variant's runs that have a value; when some runs lack it, the count is
stored in `<column>__n` and shown as "(n=k of S)", never averaged silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_path
from .config import uses_grpo
from .stats import ALPHA, bootstrap_ci, holm, paired_difference

# per-item scores with intervals (0/1, or with n_samples > 1 the item's mean over its samples: pass@1)
SCORES = ("exact_match", "challenge_metric", "challenge_strict")
ITEM_KEYS = {"exact_match": "exact_match", "challenge_metric": "challenge_correct",
             "challenge_strict": "challenge_strict"}
# reasoning-model quantities of heldout.json, shown next to the scores
REASONING = {"closed_think_rate": ("closed think", "{:.2f}"), "truncation_rate": ("truncated", "{:.2f}"),
             "mean_output_tokens": ("output tokens", "{:.1f}")}
BASELINE = "plain"  # the default baseline when an index entry has no `baseline` key
BASE = "base (untuned)"
AXES = ("depth", "mixer", "gate", "layers", "trainable", "families", "credit", "advantage", "group_size",
        "learning_rate", "steps")
TRAIN_BATCH = "train_batch_"  # prefix of selector statistics from run.json's final_selection (fallback)
N_SUFFIX = "__n"  # `<column>__n`: how many of the variant's runs have a value, when not all do
LABELS = {"exact_match": "exact match", "challenge_metric": "challenge metric", "challenge_strict": "challenge strict"}
SHORT = {"exact_match": "EM", "challenge_metric": "CM", "challenge_strict": "CS"}


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


def _seed_value(seed):
    return int(seed) if isinstance(seed, (int, float, np.integer, np.floating)) and float(seed).is_integer() else seed


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
    baselines: dict[str, str | None] = field(default_factory=dict)  # variant -> its baseline variant (None: none)
    environments: dict[str, dict] = field(default_factory=dict)  # "run id (train|eval)" -> environment dict

    @property
    def variants(self) -> list[str]:
        return list(dict.fromkeys(self.runs["variant"]))

    def seeds(self, variant: str) -> list:
        """The variant's seed ids, sorted ([] for the untuned base, which has none)."""
        sub = self.runs[self.runs["variant"] == variant]
        return sorted(_seed_value(s) for s in sub["seed"].dropna())

    def score_matrix(self, variant: str, metric: str) -> np.ndarray:
        """(seeds x items) per-item scores of a variant, rows in seed-id order."""
        runs = self.runs[self.runs["variant"] == variant].sort_values("seed", na_position="first")
        key = ITEM_KEYS[metric]
        rows = [self.items[r][key].astype(float).to_numpy() for r in runs["run_id"]]
        return np.stack(rows)

    def paired_matrices(self, variant: str, baseline: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """Both score matrices with row i the same seed id; refuses different seed sets.

        The untuned base (no seed, one row) on either side is broadcast to every seed of the other.
        """
        mine, theirs = self.seeds(variant), self.seeds(baseline)
        if mine and theirs and mine != theirs:
            raise ValueError(
                f"study {self.name!r}: variant {variant!r} has seeds {mine} but its baseline {baseline!r} has "
                f"seeds {theirs}; a paired comparison needs the same seed ids (run the missing seeds or drop the "
                f"extra ones from the study)")
        return self.score_matrix(variant, metric), self.score_matrix(baseline, metric)


def _numeric_items(values: dict) -> dict:
    return {k: float(v) for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _selection_columns(held: dict, info: dict) -> dict:
    """Held-out selector statistics (heldout.json `selection`), else the last training batch's, relabelled."""
    if "selection" in held and held["selection"] is not None:
        return _numeric_items(held["selection"])
    return {f"{TRAIN_BATCH}{k}": v for k, v in _numeric_items(info.get("final_selection") or {}).items()}


_ABSENT = object()


def _baselines(name: str, entries: list[dict], variants: list[str]) -> dict[str, str | None]:
    """variant -> its baseline, from the index's `baseline` fields (absent: "plain"; null: none)."""
    named: dict[str, set] = {}
    for run in entries:
        value = run.get("baseline", _ABSENT)
        named.setdefault(run["variant"], set()).add(value)
    out = {}
    for variant, values in named.items():
        if len(values) > 1:
            shown = sorted("(absent)" if v is _ABSENT else repr(v) for v in values)
            raise ValueError(f"study {name!r}: the runs of variant {variant!r} name different baselines: {shown}")
        value = values.pop()
        if value is _ABSENT:
            value = BASELINE if variant != BASELINE and BASELINE in variants else None
        elif value is not None and value not in variants:
            raise ValueError(f"study {name!r}: variant {variant!r} names baseline {value!r}, which is not a variant "
                             f"of the study (variants: {variants})")
        elif value == variant:
            raise ValueError(f"study {name!r}: variant {variant!r} names itself as its baseline")
        out[variant] = value
    return out


def _base_rows(index: dict) -> tuple[list[dict], dict, dict, str]:
    """One untuned-base row per data split of the study (`index["bases"]`; old indexes: `index["base"]`).

    The study's first split's base is `base (untuned)` with run id `base`; another split's is
    e.g. `base (untuned, later_letter)` with run id `base-<data id>`."""
    bases = index.get("bases") or {None: index["base"]}
    # the study's own split first (`index["base"]`): JSON may have sorted the others around it
    first = next((d for d, b in bases.items() if b == index["base"]), next(iter(bases)))
    bases = {first: bases[first], **{d: b for d, b in bases.items() if d != first}}
    rows, items, environments = [], {}, {}
    for data, base in bases.items():
        tag = "+".join(base.get("families") or []) or str(data)
        name, rid = (BASE, "base") if data == first else (f"{BASE[:-1]}, {tag})", f"base-{data}")
        lm = _lm_eval_columns(_read(base["lmeval"])) if base.get("lmeval") else {}
        shown = [(name, rid, base["heldout"], lm)]
        if base.get("native_heldout"):  # the reasoning model in its own thinking mode: a reference row
            shown.append((f"{name[:-1]}, native thinking)", f"{rid}-native", base["native_heldout"], {}))
        for name, rid, path, lm in shown:
            held = _read(path)
            rows.append({"variant": name, "seed": np.nan, "run_id": rid, "baseline": None, "data": data,
                         **_held_columns(held), **lm})
            items[rid] = pd.DataFrame(held["items"])
            if held.get("environment"):
                environments[f"{rid} (eval)"] = held["environment"]
    return rows, items, environments, first


def _held_columns(held: dict) -> dict:
    """The scores, the answer loss and the reasoning quantities of a heldout.json."""
    return {m: held[m] for m in (*SCORES, "heldout_answer_loss", *REASONING)}


def load_study(index_path) -> Study:
    index = _read(index_path)
    rows, items, environments, first_data = _base_rows(index)
    metrics = {}
    variants = [*(r["variant"] for r in rows), *dict.fromkeys(run["variant"] for run in index["runs"])]
    baselines = _baselines(index["study"], index["runs"], variants)
    seen: dict[tuple, str] = {}
    for run in index["runs"]:
        key = (run["variant"], _seed_value(run["seed"]))
        if key in seen:
            raise ValueError(f"study {index['study']!r}: variant {run['variant']!r} has seed {key[1]} twice "
                             f"(runs {seen[key]!r} and {run['run_id']!r})")
        seen[key] = run["run_id"]
        d = Path(run["dir"])
        info, held = _read(d / "run.json"), _read(run.get("heldout") or d / "heldout.json")
        cfg = info["config"]
        mawt = cfg.get("mawt") or {}
        bench = read_benchmark(run.get("bench"))
        lmeval = run.get("lmeval", str(d / "lmeval.json"))  # null: lm-eval ran for other seeds only
        rows.append({
            "variant": run["variant"], "seed": run["seed"], "run_id": run["run_id"],
            "baseline": baselines[run["variant"]], "data": run.get("data", first_data),
            **_held_columns(held),
            **(_lm_eval_columns(_read(lmeval)) if lmeval else {}),
            "depth": mawt.get("depth"), "mixer": mawt.get("mixer"), "gate": mawt.get("gate"),
            "layers": str(mawt.get("layers")), "families": "+".join(cfg.get("data", {}).get("families") or []),
            # GRPO knobs only where the GRPO objective trains (plain, softmax, ... ignore them)
            **({"credit": cfg["train"].get("credit"), "advantage": cfg["train"].get("advantage")}
               if uses_grpo(mawt) else {}),
            "trainable": cfg["trainable"], "group_size": cfg["train"].get("group_size"),
            "learning_rate": cfg["train"].get("learning_rate"), "steps": cfg["train"].get("steps"),
            "trainable_parameters": info["trainable_parameters"], "train_seconds": info["train_seconds"],
            "job_seconds": bench.get("seconds", np.nan), "peak_mem_mb": bench.get("max_rss_mb", np.nan),
            **_selection_columns(held, info),
        })
        items[run["run_id"]] = pd.DataFrame(held["items"])
        metrics[run["run_id"]] = read_metrics(d / "metrics.jsonl")
        if info.get("environment"):
            environments[f"{run['run_id']} (train)"] = info["environment"]
        if held.get("environment"):
            environments[f"{run['run_id']} (eval)"] = held["environment"]
    runs = pd.DataFrame(rows)
    for data, group in runs.groupby("data", dropna=False, sort=False):  # the same items within a split
        if len({tuple(items[r]["challenge"]) for r in group["run_id"]}) > 1:
            raise ValueError(f"{index_path}: runs on data split {data} were evaluated on different held-out items; "
                             "re-run their evaluation")
    return Study(index["study"], index["setup"], index.get("description", ""), index.get("yaml", ""),
                 runs, items, metrics, index.get("attention"),
                 {r["run_id"]: r["dir"] for r in index["runs"]}, baselines, environments)


def _side_columns(runs: pd.DataFrame) -> list[str]:
    skip = {*SCORES, "seed", *AXES}
    return [c for c in runs.columns if c not in skip and pd.api.types.is_numeric_dtype(runs[c])]


def summarise(study: Study, n_boot: int = 2000) -> pd.DataFrame:
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


def verdict_text(row, metric: str = "exact_match") -> str:
    """E.g. "better than plain (Holm-adjusted p=0.012)"; "" when the row is not compared."""
    word = verdict(row, metric)
    if word is None:
        return ""
    p = fmt_p(row[f"diff_{metric}_p_holm"])
    return (f"{word} {'from' if word == 'not distinguishable' else 'than'} {row['baseline']} "
            f"(Holm-adjusted p{p if p.startswith('<') else '=' + p})")


def fmt_p(p) -> str:
    if pd.isna(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}" if p < 0.01 else f"{p:.2f}"


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


def design_text(table: pd.DataFrame) -> str:
    d = design(table)
    if not d["compared"]:
        return f"No variant of this study is compared with a baseline ({d['items']} held-out items)."
    mde = ", ".join(f"{LABELS[m]} {v:.3f}" for m, v in d["mde"].items())
    return (f"Design: {d['seeds x items']}, {d['compared']} compared variant(s). Minimum detectable effect "
            f"(80% power, two-sided alpha {ALPHA}, per comparison; median over the compared variants): {mde}. "
            "A true difference of that size is found 4 times in 5; smaller ones are often 'not distinguishable'.")


def long_table(study: Study) -> pd.DataFrame:
    """The tidy form: one row per (study, variant, config axes, seed, metric, value)."""
    keep = ["variant", "seed", "run_id", *[c for c in ("baseline", "data", *AXES) if c in study.runs]]
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


def _flag(value) -> bool:
    """A boolean cell, also after a CSV round trip (True, np.True_, "True"; NaN is False)."""
    return not pd.isna(value) and str(value) == "True"


def _difference(row, metric: str) -> str:
    if pd.isna(row.get(f"diff_{metric}", np.nan)):
        return "(baseline)" if _flag(row.get("is_baseline")) else ""
    mark = " *" if verdict(row, metric) in ("better", "worse") else ""
    return (f"{row[f'diff_{metric}']:+.2f} [{row[f'diff_{metric}_low']:+.2f}, "
            f"{row[f'diff_{metric}_high']:+.2f}]{mark}")


def _side(row, col: str, fmt: str, stderr: str | None = None) -> str:
    """A side metric (± its standard error column), with "(n=k of S)" when only k of the variant's S runs have it."""
    if pd.isna(row.get(col, np.nan)):
        return ""
    err = row.get(stderr, np.nan) if stderr else np.nan
    n = row.get(f"{col}{N_SUFFIX}", np.nan)
    return (fmt.format(row[col]) + ("" if pd.isna(err) else " ± " + fmt.format(err))
            + ("" if pd.isna(n) else f" (n={int(n)} of {int(row['runs'])})"))


def _usage_columns(table: pd.DataFrame, prefix: str) -> list[str]:
    cols = [c for c in table.columns if c.startswith(prefix + "depth_usage_") and not c.endswith(N_SUFFIX)]
    return sorted(cols, key=lambda c: int(c.rsplit("_", 1)[1]))


def _usage(row, cols: list[str]) -> str:
    present = [c for c in cols if not pd.isna(row.get(c, np.nan))]
    if not present:
        return ""
    counts = {int(row[f"{c}{N_SUFFIX}"]) for c in present if not pd.isna(row.get(f"{c}{N_SUFFIX}", np.nan))}
    note = f" (n={min(counts)} of {int(row['runs'])})" if counts else ""
    return " / ".join(f"{row[c]:.2f}" for c in present) + note


def _baseline_cell(row) -> str:
    if not pd.isna(row.get("baseline", np.nan)) and row.get("baseline"):
        return str(row["baseline"])
    return "(baseline)" if _flag(row.get("is_baseline")) else ""


def _varies(table: pd.DataFrame, column: str) -> bool:
    """More than one value among the trained variants: worth a column of its own."""
    return column in table and table[column].dropna().astype(str).replace("", np.nan).dropna().nunique() > 1


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The human-readable table (strings): what the Markdown file and the report show."""
    selector = [(prefix, label) for prefix, label in (("", "held-out"), (TRAIN_BATCH, "last training batch"))
                if f"{prefix}selector_entropy" in table or _usage_columns(table, prefix)]
    shown = []
    for _, row in table.iterrows():
        params = ("0 (untuned)" if str(row["variant"]).startswith(BASE[:-1])
                  and pd.isna(row.get("trainable_parameters", np.nan))
                  else _side(row, "trainable_parameters", "{:,.0f}"))
        entry = {
            "variant": row["variant"],
            "baseline": _baseline_cell(row),
            "D": "" if pd.isna(row.get("depth")) else int(row["depth"]),
            "mixer": _text(row.get("mixer")) + (" + gate" if _text(row.get("gate")) == "head" else ""),
            "trainable": _text(row.get("trainable")),
            **({"data": _text(row.get("families"))} if _varies(table, "families") else {}),
            **({"credit": _text(row.get("credit")), "advantage": _text(row.get("advantage"))}
               if _varies(table, "credit") or _varies(table, "advantage") else {}),
            "trainable params": params,
            "seeds": row["seeds"],
        }
        for metric in SCORES:
            entry[f"{LABELS[metric]} [95% CI]"] = _interval(row, metric)
            entry[f"{SHORT[metric]} vs baseline [95% CI]"] = _difference(row, metric)
            entry[f"{SHORT[metric]} Holm p"] = fmt_p(row.get(f"diff_{metric}_p_holm", np.nan))
        for col, (label, fmt) in REASONING.items():
            entry[label] = _side(row, col, fmt)
        entry["answer loss"] = _side(row, "heldout_answer_loss", "{:.3f}")
        for col in table.columns:
            if col.startswith("lm_eval:") and not col.endswith(("_stderr", N_SUFFIX)):
                entry[col.removeprefix("lm_eval:")] = _side(row, col, "{:.3f}", stderr=f"{col}_stderr")
        for col, label, fmt in (("train_seconds", "train s", "{:.1f}"), ("peak_mem_mb", "peak MB", "{:.0f}")):
            entry[label] = _side(row, col, fmt)
        for prefix, label in selector:
            entry[f"selector entropy ({label})"] = _side(row, f"{prefix}selector_entropy", "{:.3f}")
            entry[f"slice usage ({label})"] = _usage(row, _usage_columns(table, prefix))
        shown.append(entry)
    return pd.DataFrame(shown)


NOTE = ("Scores: mean over seeds and held-out items with a 95% bootstrap interval (seeds and items resampled). "
        "'vs baseline': the paired difference to the variant's own baseline (column 'baseline': plain fine-tuning, "
        "or the plain run with the same trainable layers) over the same seed ids and items, with its unadjusted 95% "
        "interval. 'Holm p': the two-sided paired-bootstrap p-value (percentile-interval inversion, at least "
        "1/n_boot), Holm-adjusted over the study's compared variants, one family per metric. '*' marks a "
        "Holm-adjusted p < 0.05 only; the intervals are not adjusted for multiplicity. Minimum detectable effect "
        "(MDE): (z_0.975 + z_0.80) x the bootstrap SE of the paired difference, the true difference found with 80% "
        "power at two-sided alpha 0.05 (per comparison); table.csv has it per variant. lm-eval: score ± lm-eval's "
        "standard error. Side metrics (lm-eval, answer loss, costs, selector) are means over the runs that have "
        "them; '(n=k of S)' marks a value that only k of the variant's S runs have. peak MB: the largest max RSS of "
        "the variant's training jobs (Snakemake benchmark). Selector entropy and slice usage '(held-out)': the "
        "trained model over every held-out item at the answer-predicting positions (eval mode: GRPO and gumbel pick "
        "the argmax slice); '(last training batch)': run.json's final_selection, for runs whose heldout.json has no "
        "held-out selector statistics.")


def study_table(index_path: Path, out_dir: Path, n_boot: int = 2000) -> pd.DataFrame:
    """Write table.csv (numbers), table.md (display), runs.csv (one row per run), long.csv (tidy)."""
    study = load_study(index_path)
    table = summarise(study, n_boot=n_boot)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(study.runs, out_dir / "runs.csv")
    write_table(table, out_dir / "table.csv")
    write_table(long_table(study), out_dir / "long.csv")
    md = (f"# Study `{study.name}` ({study.setup} setup)\n\n"
          + (f"{study.description}\n\n" if study.description else "")
          + display_table(table).to_markdown(index=False, disable_numparse=True) + f"\n\n{design_text(table)}\n\n{NOTE}\n")
    write_table(md, out_dir / "table.md")
    return table
