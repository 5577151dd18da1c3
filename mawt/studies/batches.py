"""Runs that share one job: the seeds of one config trained in one process, then evaluated in one.

A job's fixed cost (Python, torch and transformers imports, loading the base) is paid once per
batch, not once per run: on the micro setup it is most of a plain run's cost (benchmarks/run_cost.py).
A train batch holds the runs whose training configs differ only in the seed, at most
`seeds_per_job` of them (the setup's key; 1 keeps one run per job, as a cluster of GPUs wants);
an eval batch holds the runs of one train batch (or the untuned base) under one eval config.
Each run still has its own files: the batch job writes them under `work/<run>/`, and a light
job per run links them into `runs/<run>/`, its own outputs (workflow/rules/train.smk).

Ids are content hashes of their members' ids: editing a variant or adding a seed gives a new
batch, whose job then trains only what is not already done in `work/` (a run whose run.json
records the same config is kept; mawt/training/batch.py)."""

from __future__ import annotations

import hashlib
import json


def batch_id(members: list[str], kind: str = "train") -> str:
    return hashlib.sha256(json.dumps([kind, members]).encode()).hexdigest()[:12]


def train_batches(runs: dict[str, dict], size: int) -> dict[str, list[str]]:
    """batch id -> run ids, for `runs` (run id -> training config, its `train.seed` set): the runs of
    one config but the seed, by seed, in chunks of at most `size`."""
    if size < 1:
        raise ValueError(f"seeds_per_job={size}: must be at least 1")
    groups: dict[str, list[str]] = {}
    for run, cfg in runs.items():
        rest = {**cfg, "train": {k: v for k, v in cfg["train"].items() if k != "seed"}}
        groups.setdefault(json.dumps(rest, sort_keys=True), []).append(run)
    out = {}
    for members in groups.values():
        members.sort(key=lambda r: (runs[r]["train"]["seed"], r))
        for i in range(0, len(members), size):
            chunk = members[i : i + size]
            out[batch_id(chunk)] = chunk
    return dict(sorted(out.items(), key=lambda kv: kv[1]))


def eval_batch_id(ev: str, members: list[str]) -> str:
    """The eval batch of `members` (a train batch's runs, or the untuned base alone) under eval id `ev`."""
    return batch_id([ev, *members], "eval")


# Relative cost of one training run, for the order in which batches start (no number depends on it).
_TRAINABLE_COST = {"all": 3.0, "last": 1.0, "mawt": 0.6}


def run_cost(cfg: dict) -> float:
    """A rough relative cost of training `cfg` (a resolved run config): what it trains (all > last:N >
    last > mawt), times (1 + D/8) for the depths, times its steps. Fitted by eye to the micro run's
    benchmark files (docs/workflow.md): all D=4 140 s, last:2 D=4 92 s, last D=8 60 s, last D=4 50 s,
    mawt D=2 22 s per 12 seeds; only its order matters."""
    trainable = str(cfg.get("trainable", "last"))
    tail = trainable.split(":", 1)[1] if trainable.startswith("last:") else None
    weight = 1.0 + 0.5 * (int(tail) - 1) if tail and tail.isdigit() else _TRAINABLE_COST.get(trainable, 1.0)
    depth = int((cfg.get("mawt") or {}).get("depth", 1))
    return weight * (1 + depth / 8) * int(cfg["train"].get("steps", 100)) / 100


def batch_priority(runs: list[dict]) -> int:
    """Snakemake `priority:` of a train batch: the longest first (Graham's LPT rule, "Bounds on
    multiprocessing timing anomalies", 1969), so that no long batch starts last and runs alone."""
    return round(10 * sum(run_cost(cfg) for cfg in runs))
