"""A study's run results, read from its run index (pandas).

The index (`results/<setup>/studies/<study>/runs.json`, mawt/studies/runsfile.py: its schema and
reader) lists the study's runs and the untuned base model's evaluations. Each run entry names its
variant, seed, baseline (null for the baselines/controls themselves), data split, files, the
benchmark file of its job, and its `axes` (the settings the tables show as columns): nothing about a
run is re-derived here. Every run directory holds run.json (`trainable_parameters`, `train_seconds`,
`final_selection`, `environment`), metrics.jsonl (training curves); its heldout.json has greedy
answers per item, both scores, `environment`, and `selection`: depth usage `depth_usage_<d>` and
`selector_entropy` of the trained model over every held-out item at the answer-predicting
positions; and, for a hard choice in the last layer, `worth`: what the choice is worth,
mawt/evaluation/worth.py; lmeval.json has lm-eval task scores with their standard errors. A run
whose heldout.json has no `selection` falls back to run.json's `final_selection` (the last
training batch), kept in separate `train_batch_*` columns and labelled as such.

The comparisons are `mawt.analysis.comparisons`; the display strings `mawt.analysis.display`;
`mawt.analysis.tables` writes a study's files from all three.

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

from mawt.common import layout
from mawt.evaluation.scoring import SCORES
from mawt.statistics import DEFAULT_MARGIN
from mawt.studies.runsfile import AXES, BASE, base_rows, read_index

# reasoning-model quantities of heldout.json, shown next to the scores
REASONING = {"closed_think_rate": ("closed think", "{:.2f}"), "truncation_rate": ("truncated", "{:.2f}"),
             "mean_output_tokens": ("output tokens", "{:.1f}")}
BASELINE = "plain"  # the study's own plain fine-tuning run (mawt/studies/baselines.py)
TRAIN_BATCH = "train_batch_"  # prefix of selector statistics from run.json's final_selection (fallback)
N_SUFFIX = "__n"  # `<column>__n`: how many of the variant's runs have a value, when not all do


def _read(path) -> dict:
    return json.loads(Path(path).read_text())


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
class StudyResults:
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
    margin: float = DEFAULT_MARGIN  # the study's equivalence margin of exact match (mawt.studies.study)

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
        rows = [self.items[r][metric].astype(float).to_numpy() for r in runs["run_id"]]
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


WORTH = "worth_"  # prefix of heldout.json's `worth` numbers (mawt/evaluation/worth.py): worth_loss_learned, ...


def _worth_columns(held: dict) -> dict:
    """What the depth choice is worth (heldout.json `worth`, hard choices in the last layer only):
    answer loss and exact match of the learned, uniform, best-single-depth and oracle policies."""
    values = _numeric_items(held.get("worth") or {})
    return {f"{WORTH}{k}": v for k, v in values.items() if k != "best_depth"}  # an index: no mean


DIVERGENCE = "divergence_"  # heldout.json's `divergence` (mawt/evaluation/divergence.py): divergence_jsd_bits, ...


def _divergence_columns(held: dict) -> dict:
    """How far the last MAWT layer's depths moved apart (D >= 2): the attention rows' mean pairwise JSD
    and the transforms' relative distances."""
    values = _numeric_items(held.get("divergence") or {})
    return {f"{DIVERGENCE}{k}": v for k, v in values.items() if k in ("jsd_bits", "distance_query", "distance_output")}


def _selection_columns(held: dict, info: dict) -> dict:
    """Held-out selector statistics (heldout.json `selection`), else the last training batch's, relabelled."""
    if "selection" in held and held["selection"] is not None:
        return _numeric_items(held["selection"])
    return {f"{TRAIN_BATCH}{k}": v for k, v in _numeric_items(info.get("final_selection") or {}).items()}


def _base_rows(index: dict) -> tuple[list[dict], dict, dict]:
    """One untuned-base row per data split of the study (mawt.studies.runsfile.base_rows), and one more
    per split where the reasoning model was also evaluated in its own thinking mode."""
    rows, items, environments = [], {}, {}
    for base, name, rid in base_rows(index):
        lm = _lm_eval_columns(_read(base["lmeval"])) if base["lmeval"] else {}
        shown = [(name, rid, base["heldout"], lm)]
        if base["native_heldout"]:  # the reasoning model in its own thinking mode: a reference row
            shown.append((f"{name[:-1]}, native thinking)", f"{rid}-native", base["native_heldout"], {}))
        for name, rid, path, lm in shown:
            held = _read(path)
            rows.append({"variant": name, "seed": np.nan, "run_id": rid, "baseline": None, "data": base["data"],
                         **_held_columns(held), **lm})
            items[rid] = pd.DataFrame(held["items"])
            if held.get("environment"):
                environments[f"{rid} (eval)"] = held["environment"]
    return rows, items, environments


def _held_columns(held: dict) -> dict:
    """The scores, the answer loss and the reasoning quantities of a heldout.json."""
    return {m: held[m] for m in (*SCORES, "heldout_answer_loss", *REASONING)}


def load_results(index_path) -> StudyResults:
    index = read_index(index_path)  # checked: seeds once, one baseline per variant, known splits
    rows, items, environments = _base_rows(index)
    metrics = {}
    baselines = {run["variant"]: run["baseline"] for run in index["runs"]}
    for run in index["runs"]:
        d = Path(run["dir"])
        info, held = _read(d / layout.RUN_JSON), _read(run["heldout"])
        bench = read_benchmark(run["bench"])
        rows.append({
            "variant": run["variant"], "seed": run["seed"], "run_id": run["run_id"],
            "baseline": run["baseline"], "data": run["data"],
            **_held_columns(held),
            **(_lm_eval_columns(_read(run["lmeval"])) if run["lmeval"] else {}),  # null: lm-eval ran for other seeds
            **{k: run["axes"][k] for k in AXES if k in run["axes"]},  # in the tables' order, not the file's
            "trainable_parameters": info["trainable_parameters"], "train_seconds": info["train_seconds"],
            # a batch's job trains `bench_share` runs (mawt/studies/batches.py): this run's share of its time
            "job_seconds": bench.get("seconds", np.nan) / run["bench_share"], "peak_mem_mb": bench.get("max_rss_mb", np.nan),
            **_selection_columns(held, info), **_worth_columns(held), **_divergence_columns(held),
        })
        items[run["run_id"]] = pd.DataFrame(held["items"])
        metrics[run["run_id"]] = read_metrics(d / layout.METRICS)
        if info.get("environment"):
            environments[f"{run['run_id']} (train)"] = info["environment"]
        if held.get("environment"):
            environments[f"{run['run_id']} (eval)"] = held["environment"]
    runs = pd.DataFrame(rows)
    for data, group in runs.groupby("data", dropna=False, sort=False):  # the same items within a split
        if len({tuple(items[r]["challenge"]) for r in group["run_id"]}) > 1:
            raise ValueError(f"{index_path}: runs on data split {data} were evaluated on different held-out items; "
                             "re-run their evaluation")
    return StudyResults(index["study"], index["setup"], index["description"], index["yaml"],
                        runs, items, metrics, index["attention"],
                        {r["run_id"]: r["dir"] for r in index["runs"]}, baselines, environments,
                        float(index["margin"]))
