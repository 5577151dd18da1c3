"""Ablation studies -> resolved run configs, for the Snakemake workflow.

A study file (ablations/*.yaml) is validated against
workflow/schemas/ablation.schema.yaml (types, allowed values, unknown keys), then
each run it defines is resolved and checked by `mawt.runconfig` (cross-field
rules). Everything is checked before the workflow schedules any job, and errors
name the file and the key.

Resolution of one run (study S, variant V, seed s), later keys win:

    setup.run  <-  S.defaults  <-  V  <-  {train: {seed: s}}  + setup data / base model

Every study also gets the baseline `plain` (D=1 + fixed: fine-tuning the same
trainable layers without MAWT depth) unless it defines a variant of that name;
the untuned base model is evaluated once per setup and joins every table.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from .runconfig import RunConfig, _build, yaml_problem

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "workflow" / "schemas"
PLAIN = {"mawt": {"depth": 1, "mixer": "fixed"}}


class StudyError(ValueError):
    """A user mistake in a setup or study file (message names file and key)."""


def _inline_refs(node, run_schema: dict):
    if isinstance(node, dict):
        if node.get("$ref") == "run.schema.yaml":
            return {**run_schema, **{k: v for k, v in node.items() if k != "$ref"}}
        return {k: _inline_refs(v, run_schema) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, run_schema) for v in node]
    return node


def _validator(name: str) -> jsonschema.Draft7Validator:
    run_schema = yaml.safe_load((SCHEMAS / "run.schema.yaml").read_text())
    run_schema.pop("$schema", None)
    return jsonschema.Draft7Validator(_inline_refs(yaml.safe_load((SCHEMAS / name).read_text()), run_schema))


def _explain(error: jsonschema.ValidationError) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        return f"key {key}: {error.message}; allowed keys are {allowed}"
    hint = f" ({schema['description']})" if "description" in schema else ""
    return f"key {key}: {error.message}{hint}"


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise StudyError(f"{path}: no such file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise StudyError(f"{path}: not valid YAML: {yaml_problem(err)}") from None
    if not isinstance(data, dict):
        raise StudyError(f"{path}: expected a mapping at the top level")
    return data


def _check(data: dict, schema: str, path: Path) -> None:
    errors = sorted(_validator(schema).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        raise StudyError(f"{path}: " + "; ".join(_explain(e) for e in errors[:5]))


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass
class Study:
    name: str
    path: Path
    seeds: list[int]
    description: str
    variants: dict[str, dict]  # variant -> run overrides (defaults merged in)

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


def load_study(path: Path, setup: dict) -> Study:
    path = Path(path)
    data = _read_yaml(path)
    _check(data, "ablation.schema.yaml", path)
    if path.stem != data["name"]:
        raise StudyError(f"{path}: key name: {data['name']!r} must equal the file name {path.stem!r}")
    grid = _expand_grid(data.get("grid") or {})
    explicit = data.get("variants") or {}
    clash = sorted(set(grid) & set(explicit))
    if clash:
        raise StudyError(f"{path}: variants {clash} are defined both in variants and by the grid")
    defaults = data.get("defaults") or {}
    variants = {"plain": deep_merge(defaults, PLAIN)}
    for name, over in {**grid, **explicit}.items():
        variants[name] = deep_merge(defaults, over)
    if len(variants) < 2:
        raise StudyError(f"{path}: key variants: the study defines no variant besides the baseline")
    study = Study(data["name"], path, list(data["seeds"]), data.get("description", ""), variants)
    for variant in variants:  # every run must resolve (cross-field checks) before any job
        run_config(setup, study, variant, study.seeds[0])
    return study


def setup_path(name: str) -> Path:
    """A setup is a name under workflow/setups/ or a path to a YAML file."""
    if name.endswith((".yaml", ".yml")):
        return Path(name)
    return ROOT / "workflow" / "setups" / f"{name}.yaml"


def load_setup(name: str) -> dict:
    path = setup_path(name)
    if not path.is_file():
        choices = sorted(p.stem for p in (ROOT / "workflow" / "setups").glob("*.yaml"))
        raise StudyError(f"config key setup={name!r}: no file {path}; allowed are {choices} or a path to a YAML file")
    data = _read_yaml(path)
    _check(data, "setup.schema.yaml", path)
    data["path"] = str(path)
    return data


def load_studies(setup: dict, names: list[str] | None = None, folder: Path | None = None) -> dict[str, Study]:
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
    return {p.stem: load_study(p, setup) for p in paths}


def run_config(setup: dict, study: Study, variant: str, seed: int, base_model: str | None = None) -> dict:
    """The resolved, validated run config (a plain dict, as written to the run's YAML)."""
    over = deep_merge(setup.get("run") or {}, study.variants[variant])
    over = deep_merge(over, {"train": {"seed": int(seed)}})
    over["data"] = copy.deepcopy(setup["data"])
    over["base_model"] = base_model or setup["base_model"]
    where = f"{study.path} (variant {variant})"
    unknown = sorted(set(over) - {"mawt", "trainable", "train", "eval", "data", "base_model"})
    if unknown:
        raise StudyError(f"{where}: unknown key(s) {unknown}")
    try:
        cfg: RunConfig = _build(RunConfig, over, where)
    except ValueError as err:
        raise StudyError(str(err)) from None
    return cfg.to_dict()



def run_id(config: dict) -> str:
    """Content hash of a resolved run config: identical runs of different studies
    (the shared `plain` baseline, say) are trained once; editing a variant gives
    its runs new ids, so only they (and the tables that list them) are rebuilt."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
