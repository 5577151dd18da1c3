"""Ablation studies -> resolved run configs, for the Snakemake workflow.

A study file (ablations/*.yaml) is validated against
mawt/schemas/ablation.schema.yaml (its own keys), then each run it defines is
resolved and checked by `mawt.training.runconfig`'s dataclasses, the one schema of a run
(types, allowed values, unknown keys, cross-field rules). Everything is checked before the workflow schedules any job, and errors
name the file and the key.

Resolution of one run (study S, variant V, seed s), later keys win:

    setup.run  <-  S.defaults  <-  V  <-  {train: {seed: s}}  + setup data / base model

Every study also gets its baselines (mawt/studies/baselines.py): `plain`, `gated` and the
plain counterparts of variants that change what plain fine-tuning would see.
The untuned base model is evaluated once per data split and joins every table.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from mawt.statistics import DEFAULT_MARGIN  # a setup's `margin` overrides it, a study's `margin` both

from mawt.studies.baselines import BASELINES, GATED, baseline_name, plainized
from mawt.studies.setup import StudyError, check_schema, deep_merge, read_mapping, resolve_overrides, schema_validator
from mawt.training.runconfig import RunConfig, training_part

ROOT = Path(__file__).resolve().parents[2]  # a checkout's root (its ablations/ folder)
DEFAULT_SEEDS = (0, 1, 2)  # when neither the study nor the setup names seeds


@dataclass
class StudySpec:
    """A study file, resolved: its variants (baselines added) and what each is compared with."""

    name: str
    path: Path
    seeds: list[int]
    description: str
    variants: dict[str, dict]  # variant -> run overrides (defaults merged in)
    baselines: dict[str, str | None]  # variant -> the variant it is compared with (None: a baseline itself)
    margin: float = DEFAULT_MARGIN  # equivalence margin of the primary metric (absolute, exact match)
    # variant -> its run at the study's first seed on the setup's base model, resolved once (`resolve_run`)
    resolved: dict[str, RunConfig] = field(default_factory=dict, repr=False)

    @property
    def text(self) -> str:
        return self.path.read_text()


def _expand_grid(grid: dict) -> dict[str, dict]:
    """{"mawt.depth": [2, 4]} -> {"depth-2": {"mawt": {"depth": 2}}, "depth-4": ...}"""
    if not grid:
        return {}
    keys = list(grid)
    variants = {}
    for values in itertools.product(*(grid[k] for k in keys)):
        over: dict = {}
        for key, value in zip(keys, values):
            parts = key.split(".")
            node = over
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
        name = "_".join(f"{k.split('.')[-1]}-{v}" for k, v in zip(keys, values)).replace(":", "-")
        variants[name] = over
    return variants


def load_study_spec(path: Path, setup: dict) -> StudySpec:
    path = Path(path)
    data = read_mapping(path)
    check_schema(data, "ablation.schema.yaml", path)
    if path.stem != data["name"]:
        raise StudyError(f"{path}: key name: {data['name']!r} must equal the file name {path.stem!r}")
    grid = _expand_grid(data.get("grid") or {})
    explicit = data.get("variants") or {}
    clash = sorted(set(grid) & set(explicit))
    if clash:
        raise StudyError(f"{path}: variants {clash} are defined both in variants and by the grid")
    defaults = data.get("defaults") or {}
    resolve_overrides(setup, deep_merge(setup.get("run") or {}, defaults), f"{path}: key defaults")
    pattern = schema_validator("ablation.schema.yaml").schema["properties"]["variants"]["propertyNames"]["pattern"]
    unsafe = sorted(n for n in grid if not re.match(pattern, n))
    if unsafe:  # names built from the grid's values: checked like written ones (they become folder names)
        raise StudyError(f"{path}: key grid: the variant names {unsafe} built from its values do not match "
                         f"{pattern!r} (they are used in paths): name these variants under variants:")
    own = {**grid, **explicit}
    taken = sorted(n for n in own if n.split("_")[0] in BASELINES)
    if taken:
        raise StudyError(f"{path}: key variants: {taken} are reserved names (the workflow adds the baselines "
                         f"{', '.join(BASELINES)} and plain_* counterparts itself)")
    if not own:
        raise StudyError(f"{path}: key variants: the study defines no variant besides the baselines")
    compare = data.get("compare") or {}
    unknown = sorted(set(compare) - set(own))
    if unknown:
        raise StudyError(f"{path}: key compare: {unknown} are not variants of this study; allowed are {sorted(own)}")
    for name, target in compare.items():
        if target not in (*own, *BASELINES) or target == name:
            raise StudyError(f"{path}: key compare.{name}: {target!r} is not another variant of this study; "
                             f"allowed are {sorted({*own, *BASELINES} - {name})}")
    variants = {"plain": plainized(defaults), "gated": deep_merge(plainized(defaults), GATED)}
    variants.update({name: deep_merge(defaults, over) for name, over in own.items()})
    seeds = list(data.get("seeds") or setup.get("seeds") or DEFAULT_SEEDS)  # the study's own, else the setup's
    margin = float(data.get("margin", setup.get("margin", DEFAULT_MARGIN)))
    study = StudySpec(data["name"], path, seeds, data.get("description", ""), variants, {}, margin)
    seed = study.seeds[0]
    # every variant resolves before any job: each once, here (`resolve_run` derives its other seeds)
    resolved = {v: resolve_variant(setup, path, v, over, seed) for v, over in variants.items()}
    # plain counterparts: one per distinct plain-ized resolved config
    plain_ids = {run_id(resolved["plain"].to_dict()): "plain"}
    for name, over in own.items():
        if name in compare:  # an explicit comparison (a control: a variant against the policy it controls)
            study.baselines[name] = compare[name]
            continue
        counterpart = plainized(variants[name])
        run = resolve_variant(setup, path, name, counterpart, seed)
        config = run.to_dict()
        rid = run_id(config)
        if rid not in plain_ids:
            plain_ids[rid] = baseline_name(config, resolved["plain"].to_dict())
            variants[plain_ids[rid]], resolved[plain_ids[rid]] = counterpart, run
        study.baselines[name] = plain_ids[rid]
    study.baselines.update({"plain": None, "gated": "plain"})
    study.baselines.update({name: None for name in plain_ids.values()})
    study.variants = {k: variants[k] for k in ("plain", *[n for n in plain_ids.values() if n != "plain"],
                                               "gated", *own)}
    study.resolved = {k: resolved[k] for k in study.variants}
    return study


def load_studies(setup: dict, names: list[str] | None = None, folder: Path | None = None) -> dict[str, StudySpec]:
    folder = Path(folder or ROOT / "ablations")
    paths = sorted(folder.glob("*.yaml"))
    if names:
        missing = sorted(set(names) - {p.stem for p in paths})
        if missing:
            raise StudyError(f"config key studies: no study file for {missing} in {folder}; "
                             f"allowed are {sorted(p.stem for p in paths)}")
        paths = [p for p in paths if p.stem in names]
    if not paths:
        raise StudyError(f"no ablation studies (*.yaml) in {folder}")
    return {p.stem: load_study_spec(p, setup) for p in paths}


def resolve_run(setup: dict, study: StudySpec, variant: str, seed: int, base_model: str | None = None) -> RunConfig:
    """One run of a study: its variant as resolved once by `load_study_spec` (the setup's run defaults and
    the variant's overrides, validated), at `seed` and on `base_model` (default: the setup's). `setup` is
    the one the study was loaded with. Equal to resolving the run afresh (tests/test_run_index.py)."""
    first = study.resolved[variant]
    return replace(first, base_model=base_model or setup["base_model"], train=replace(first.train, seed=int(seed)))


def resolve_variant(setup: dict, path, name: str, overrides: dict, seed: int,
                    base_model: str | None = None) -> RunConfig:
    """A variant's overrides (not yet in a study) over the setup's run defaults, with the seed, validated;
    errors name `path` and `variants.<name>`."""
    over = deep_merge(deep_merge(setup.get("run") or {}, overrides), {"train": {"seed": int(seed)}})
    return resolve_overrides(setup, over, f"{path}: key variants.{name}", base_model)


def run_config(setup: dict, study: StudySpec, variant: str, seed: int, base_model: str | None = None) -> dict:
    """`resolve_run` as a plain dict: what the run's YAML holds and its id hashes."""
    return resolve_run(setup, study, variant, seed, base_model).to_dict()


def _hash(obj, n: int) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:n]


def run_id(config: dict) -> str:
    """Content hash of a resolved run config's training part (`eval` left out: an eval-only
    edit re-runs evaluation, not training). Identical runs of different studies (the
    shared `plain` baseline, say) are trained once; editing a variant gives its runs new
    ids, so only they (and the tables that list them) are rebuilt."""
    return _hash(training_part(config), 12)


def eval_id(eval_config: dict) -> str:
    """Content hash of an `eval` section: a run's evaluation lives in `eval-<id>/`."""
    return _hash(eval_config, 8)


def data_id(data: dict) -> str:
    """Content hash of a resolved data config: runs on the same data share one prepared split."""
    return _hash(data, 8)
