"""A run folder belongs to one training config.

`mawt train --out DIR` resumes from DIR's last checkpoint. Without a check, a second
config trained into the same folder would silently resume the first one's checkpoint
and mix both runs' metrics under the second config's name. So the first thing a run
writes into its folder is `.mawt-run.json`: the training config (`RunConfig.training_dict`,
evaluation settings excluded) and its content hash. A later `train --out` into that
folder:

* with the same config (same hash): resumes, as before;
* with another config: is refused before anything in the folder is touched, naming
  the keys that differ; `--restart` (an explicit choice) removes the folder's training
  outputs and starts over;
* a folder with training outputs (checkpoints, model, run.json, metrics) but no record
  is refused too (nothing says which config made them), unless its run.json names the
  same config (a run finished before this record existed).

Only `train` writes a folder of several files that a later call continues; the other
commands (`eval-heldout`, `lm-eval`, `attention`, `table`, `report`) each replace their
output files whole and atomically (`mawt.common.atomic`), so two configs' outputs cannot mix.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from mawt.common import atomic, layout

RECORD = ".mawt-run.json"
# what a training run writes into its folder (a workflow's config.yaml beside them is the input, kept)
OUTPUTS = ("checkpoints", layout.MODEL, layout.RUN_JSON, layout.METRICS, f"{layout.METRICS}.partial", "data",
           RECORD)


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def _flat(d, prefix: str = "") -> dict:
    if not isinstance(d, dict):
        return {prefix: d}
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def differences(theirs: dict, mine: dict, limit: int = 6) -> str:
    """The differing keys, "train.learning_rate: 0.001 in the folder, 0.003 here; ..."."""
    a, b = _flat(theirs), _flat(mine)
    keys = sorted(k for k in set(a) | set(b) if a.get(k, "(absent)") != b.get(k, "(absent)"))
    shown = [f"{k}: {a.get(k, '(absent)')!r} in the folder, {b.get(k, '(absent)')!r} here" for k in keys[:limit]]
    return "; ".join(shown) + (f"; and {len(keys) - limit} more" if len(keys) > limit else "")


def _recorded(out: Path) -> dict | None:
    """The config the folder's outputs belong to: its record, else a finished run's run.json; None: unknown."""
    for name, key in ((RECORD, "config"), (layout.RUN_JSON, "config")):
        path = out / name
        if path.is_file():
            try:
                return json.loads(path.read_text())[key]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ValueError(f"train --out {str(out)!r}: {name} is unreadable, so nothing says which config "
                                 "its outputs belong to; pass --restart to start over") from None
    return None


def check(out: Path, config: dict, restart: bool = False) -> None:
    """Refuse (ValueError, one line) a folder whose training outputs belong to another config (module
    docstring), touching nothing; with `restart`, remove its training outputs instead."""
    out = Path(out)
    # an empty folder is no output (Snakemake creates the folders of a job's outputs before it runs)
    present = [name for name in OUTPUTS
               if (out / name).is_file() or ((out / name).is_dir() and any((out / name).iterdir()))]
    if restart:
        for name in present:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    elif present:
        recorded = _recorded(out)
        if recorded is None:
            raise ValueError(f"train --out {str(out)!r} holds training outputs ({', '.join(present)}) with no "
                             f"record of the config that made them; pass --restart to start over there, or "
                             f"choose another folder")
        if config_hash(recorded) != config_hash(config):
            raise ValueError(f"train --out {str(out)!r} belongs to another config ({differences(recorded, config)}): "
                             f"pass --restart to start over there, or choose another folder")


def record(out: Path, config: dict) -> None:
    """Write the folder's record (the first training output), unless it is there already."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / RECORD).is_file():
        atomic.write_json(out / RECORD, {"config": config, "hash": config_hash(config)})
