"""runs.json, one study's run index: the contract between the workflow and the analysis.

The workflow's `study_index` rule writes it from `mawt.studies.index.RunIndex.study_entry`;
`mawt.analysis.results.load_results` reads it through `read_index`. Its schema is
mawt/schemas/runs.schema.yaml. Everything the analysis needs of a run that is not an output of its
jobs is here: its variant, seed, baseline, data split, files and axes (the resolved settings the
tables show as columns), so the analysis neither resolves a run nor reads its config back.

This module imports no stage below `common`: reading an index needs neither the training code nor
the studies' resolution.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jsonschema
import yaml

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "runs.schema.yaml"
# A run's axes, in the order the tables show them (mawt.studies.index.run_axes builds them).
AXES = ("depth", "mixer", "gate", "layers", "trainable", "families", "credit", "advantage", "selector_input",
        "reward_control", "group_size", "learning_rate", "steps", "plant")


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(yaml.safe_load(SCHEMA.read_text()))


def dumps(index: dict) -> str:
    """The file's text: checked against the schema first, so the workflow never writes a broken index."""
    check(index, "runs.json (as built)")
    return json.dumps(index, indent=2, sort_keys=True)


def check(index: dict, where) -> None:
    """The schema, then what it cannot say: each (variant, seed) once, one baseline per variant, a
    baseline that is another variant of the study or one of its untuned-base rows, and each run's split
    among the bases'. A ValueError names `where` and the key."""
    errors = sorted(_validator().iter_errors(index), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        raise ValueError(f"{where}: key {'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}")
    study, runs = index["study"], index["runs"]
    seen, named = {}, {}
    for run in runs:
        key = (run["variant"], run["seed"])
        if key in seen:
            raise ValueError(f"{where}: study {study!r}: variant {run['variant']!r} has seed {run['seed']} twice "
                             f"(runs {seen[key]!r} and {run['run_id']!r})")
        seen[key] = run["run_id"]
        named.setdefault(run["variant"], set()).add(run["baseline"])
    for variant, values in named.items():
        if len(values) > 1:
            raise ValueError(f"{where}: study {study!r}: the runs of variant {variant!r} name different baselines: "
                             f"{sorted(map(repr, values))}")
    variants = [*base_names(index), *named]
    for variant, (value,) in named.items():
        if value == variant:
            raise ValueError(f"{where}: study {study!r}: variant {variant!r} names itself as its baseline")
        if value is not None and value not in variants:
            raise ValueError(f"{where}: study {study!r}: variant {variant!r} names baseline {value!r}, which is not a variant "
                             f"of the study (variants: {variants})")
    splits = {b["data"] for b in index["bases"]}
    stray = sorted({r["data"] for r in runs} - splits)
    if stray:
        raise ValueError(f"{where}: key runs: data splits {stray} have no entry in bases (splits: {sorted(splits)})")


BASE = "base (untuned)"  # the untuned base's row on the study's own split


def base_rows(index: dict) -> list[tuple[dict, str, str]]:
    """(base entry, row name, run id) per data split: the study's own split is `base (untuned)` with run
    id `base`; another's e.g. `base (untuned, later_letter)` with run id `base-<data id>`."""
    out = []
    for i, base in enumerate(index["bases"]):
        tag = "+".join(base["families"] or []) or base["data"]
        out.append((base, BASE, "base") if i == 0 else (base, f"{BASE[:-1]}, {tag})", f"base-{base['data']}"))
    return out


def base_names(index: dict) -> list[str]:
    """Every untuned-base row's name, the native-thinking references included."""
    names = []
    for base, name, _ in base_rows(index):
        names += [name, *([f"{name[:-1]}, native thinking)"] if base["native_heldout"] else [])]
    return names


def read_index(path) -> dict:
    """A study's runs.json, checked (`check`); a ValueError names the file and the key."""
    try:
        index = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a run index ({type(err).__name__}: {err}); the workflow's study_index "
                         "rule writes it") from None
    check(index, path)
    return index
