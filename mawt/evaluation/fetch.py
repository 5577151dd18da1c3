"""Put everything a setup downloads into the Hugging Face cache, for offline jobs.

    python -m mawt fetch --setup paper      (on a node with network: login node, workstation)
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 snakemake --profile workflow/profiles/slurm --config setup=paper

SLURM compute nodes often have no network; the jobs then read only the cache
(`HF_HOME`, shared between the nodes). What a setup needs from the Hub: its base
model (weights, config, tokenizer), its dataset when `data.source` is a hub id
(exactly the commit `data.revision` pins; fetch prints the commit and the row
count, the sha to pin when the revision is a branch or tag), and the datasets of
its lm-eval tasks that are not this project's own. Local sources (a directory, a
file, `pretrain`, `standin`) need nothing.

Each item is fetched (or, with `check=True`, looked up in the cache only, downloading
nothing: the model's files, the dataset's pinned commit, each lm-eval task's datasets as
lm-eval's task index names them); what
fails is reported in ONE line that names every missing item, e.g. when the node
is offline.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

MODEL_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja"]  # no pickles, no other formats


def needs(setup: dict) -> list[tuple[str, str]]:
    """[(kind, name)] a setup takes from the Hub: ("model", id), ("dataset", id), ("lm-eval task", name)."""
    from mawt.evaluation.lmeval import LMEVAL_DIR

    out = []
    base = setup["base_model"]
    if base not in ("pretrain", "standin") and not Path(base).exists() and not base.startswith((".", "/")):
        out.append(("model", base))
    from mawt.data.sources import is_hub_source

    source = setup["data"].get("source", "synthetic")
    if is_hub_source(source):
        out.append(("dataset", source))
    own = {p.stem for p in Path(LMEVAL_DIR).glob("*.yaml")}
    out += [("lm-eval task", t) for t in setup["lm_eval"]["tasks"] if t not in own]
    return out


def _model(name: str, check: bool) -> None:
    from huggingface_hub import snapshot_download

    snapshot_download(name, allow_patterns=MODEL_FILES, local_files_only=check)


def _dataset(data: dict, check: bool) -> str:
    """Download (or, check=True, find in the cache) the setup's hub dataset at data.revision;
    returns what was found: the commit and, downloaded, the row count of the split."""
    from mawt.data.sources import DataConfig, cached_builds, load_hub, pinned_commit

    cfg = DataConfig(**data)
    if check:  # the caches only, never the network
        commit = pinned_commit(cfg.source, cfg.revision)
        if commit is None:
            raise ValueError(f"revision {cfg.revision!r} is not in the hub cache")
        if not cached_builds(cfg.source, commit):
            raise ValueError(f"commit {commit} is not in the datasets cache")
        return f"commit {commit} (cached)"
    rows, commit = load_hub(cfg)
    pin = "" if commit is None or commit == cfg.revision else f"; pin data.revision: {commit}"
    return f"commit {commit or 'unknown'}: {len(rows)} rows in split {cfg.split!r}{pin}"


def task_datasets(name: str, manager=None) -> list[str]:
    """The Hub datasets an lm-eval task (or every task of a group) reads, from lm-eval's task
    index alone: nothing is built or downloaded."""
    manager = manager or _task_manager()
    entry = manager.task_index.get(name)
    if entry is None:
        raise ValueError(f"no lm-eval task or group named {name!r}")
    cfg = entry.cfg or {}
    if cfg.get("dataset_path"):
        return [cfg["dataset_path"]]
    members = cfg.get("task") or []
    members = members if isinstance(members, list) else [members]
    names = [m if isinstance(m, str) else m.get("task") for m in members]
    return sorted({d for m in names if isinstance(m, str) for d in task_datasets(m, manager)})


@functools.cache
def _task_manager():
    """lm-eval's task index (it reads every task YAML it ships: seconds), built once per process."""
    from lm_eval.tasks import TaskManager

    return TaskManager()


def hub_cached(repo: str) -> bool:
    """Whether the Hugging Face hub cache (HF_HOME) holds a snapshot of dataset `repo`, as a download leaves it."""
    from huggingface_hub import constants

    snapshots = Path(constants.HF_HUB_CACHE) / f"datasets--{repo.replace('/', '--')}" / "snapshots"
    return snapshots.is_dir() and any(snapshots.iterdir())


def _task(name: str, check: bool) -> str:
    from lm_eval.tasks import get_task_dict

    if check:  # the task index and the cache only: never builds the task (that would download)
        repos = task_datasets(name)
        missing = [r for r in repos if not hub_cached(r)]
        if missing:
            raise ValueError(f"its dataset(s) {missing} are not in the hub cache")
        return f": dataset(s) {repos} (cached)"
    get_task_dict([name], _task_manager())  # builds the task: downloads (or, offline, reads) its dataset
    return ""


def _first_sentence(text: str, limit: int = 300) -> str:
    """The reason of an error, whole: its first sentence (a dataset's may name two commits), never cut
    mid-word; a sentence over `limit` characters ends at a word with an ellipsis."""
    line = (text.strip().splitlines() or [""])[0]
    sentence = re.split(r"(?<=[.!?])\s", line, maxsplit=1)[0]
    if len(sentence) <= limit:
        return sentence
    return sentence[:limit].rsplit(" ", 1)[0] + " ..."


def fetch(setup: dict, check: bool = False) -> list[str]:
    """Download (check=False) or look up in the cache (check=True) what the setup needs;
    returns the names done, raises ValueError naming every item that failed."""
    done, missing = [], []
    for kind, name in needs(setup):
        if kind == "dataset":  # the revision is part of what is fetched
            name = f"{name}@{setup['data'].get('revision')}"
        try:
            found = ""
            if kind == "model":
                _model(name, check)
            elif kind == "dataset":
                found = ": " + _dataset(setup["data"], check)
            else:
                found = _task(name, check)
            done.append(f"{kind} {name}{found}")
        except Exception as err:  # offline, gated, unknown id: all reported together below
            if kind == "dataset" and err.__cause__ is not None:  # mawt.data.sources.load_hub's advice wraps the news
                err = err.__cause__
            reason = _first_sentence(str(err))
            missing.append(f"{kind} {name} ({type(err).__name__}: {reason})")
    if missing:
        raise ValueError(f"setup {setup['name']!r}: not in the Hugging Face cache and not downloadable here: "
                         + "; ".join(missing) + ". Run `python -m mawt fetch --setup "
                         f"{setup['name']}` on a node with network (same HF_HOME), then run the jobs offline")
    return done
