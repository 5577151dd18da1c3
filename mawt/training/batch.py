"""Several runs in one process (a workflow batch, mawt/studies/batches.py): each trained exactly as
`train_run` does it alone, one after the other (their evaluation: mawt.evaluation.evaluate.eval_batch).

What one process shares between its runs is only what does not change a number: imported
modules, the interpreter, and the frozen layers' output of each training example (computed alone,
read only by a run whose frozen weights are the same bytes: mawt/training/prefix.py). Every run sets its own seeds (`transformers.set_seed` in
train_run) and loads its own model, so its files are byte-identical to those of the same run
in a process of its own (tests/test_faults.py). A run already trained in its folder with the
same config (its run.json says so, its model and metrics are there) is kept, not trained again:
a batch that gained a seed, or a job resubmitted after a kill, redoes only what is missing (a
run killed half-way resumes from its checkpoint, as alone)."""

from __future__ import annotations

import json
from pathlib import Path

from mawt.common import atomic, layout


def trained(out: Path, config: dict) -> bool:
    """Whether `out` holds a finished run of `config` (its training dict)."""
    summary = Path(out) / layout.RUN_JSON
    if not (summary.is_file() and (Path(out) / layout.METRICS).is_file()
            and (Path(out) / layout.MODEL / "model.safetensors").is_file()):
        return False
    return json.loads(summary.read_text()).get("config") == config


def train_batch(configs: list[Path], outs: list[Path], split_dir: Path | None, manifest: Path | None = None,
                restart: bool = False) -> list[dict]:
    """Train every run (`configs[i]` into `outs[i]`), each config read before any trains. With a
    `manifest` (a workflow batch) a run already trained there is kept, and the manifest is written
    at the end; `restart` (one run only): train_run's, start over in its folder."""
    from mawt.training.prefix import PrefixStore
    from mawt.training.runconfig import load
    from mawt.training.train import train_run

    if len(configs) != len(outs):
        raise ValueError(f"train: {len(configs)} --config but {len(outs)} --out; give one --out per --config")
    if restart and len(configs) > 1:
        raise ValueError("train --restart: one --config only")
    runs = [load(c) for c in configs]  # a bad config is refused before anything trains
    done, prefixes = [], PrefixStore()  # a frozen prefix the seeds share (mawt/training/prefix.py)
    for cfg, out in zip(runs, outs, strict=True):
        kept = manifest is not None and trained(out, cfg.training_dict())
        summary = (json.loads((Path(out) / layout.RUN_JSON).read_text()) if kept
                   else train_run(cfg, Path(out), split_dir, restart=restart, prefixes=prefixes))
        done.append({"out": str(out), "seed": cfg.train.seed, "kept": kept,
                     **{k: summary[k] for k in ("trainable_parameters", "trainable_dtype", "train_loss",
                                                "train_seconds")}})
    if manifest is not None:
        atomic.write_json(manifest, {"runs": [{k: d[k] for k in ("out", "seed")} for d in done]})
    return done
