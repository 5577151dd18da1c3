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

Each item is fetched (or, with `check=True`, looked up in the cache only); what
fails is reported in ONE line that names every missing item, e.g. when the node
is offline.
"""

from __future__ import annotations

from pathlib import Path

MODEL_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja"]  # no pickles, no other formats


def needs(setup: dict) -> list[tuple[str, str]]:
    """[(kind, name)] a setup takes from the Hub: ("model", id), ("dataset", id), ("lm-eval task", name)."""
    from .lmeval import LMEVAL_DIR

    out = []
    base = setup["base_model"]
    if base not in ("pretrain", "standin") and not Path(base).exists() and not base.startswith((".", "/")):
        out.append(("model", base))
    from .data import is_hub_source

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
    from .data import DataConfig, cached_builds, load_hub, pinned_commit

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


def _task(name: str) -> None:
    from lm_eval.tasks import TaskManager, get_task_dict

    get_task_dict([name], TaskManager())  # builds the task: downloads (or, offline, reads) its dataset


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
                _task(name)
            done.append(f"{kind} {name}{found}")
        except Exception as err:  # offline, gated, unknown id: all reported together below
            if kind == "dataset" and err.__cause__ is not None:  # mawt.data.load_hub's advice wraps the news
                err = err.__cause__
            # a dataset's reason may name two commits (pinned, cached): room for both
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:300 if kind == "dataset" else 120]
            missing.append(f"{kind} {name} ({type(err).__name__}: {reason})")
    if missing:
        raise ValueError(f"setup {setup['name']!r}: not in the Hugging Face cache and not downloadable here: "
                         + "; ".join(missing) + ". Run `python -m mawt fetch --setup "
                         f"{setup['name']}` on a node with network (same HF_HOME), then run the jobs offline")
    return done
