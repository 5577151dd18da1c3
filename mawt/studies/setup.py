"""Setups: mawt/setups/<name>.yaml (package data) or a path, with `extends`; the file checks shared
with studies (the JSON schemas in mawt/schemas/, the one YAML reader) and how run overrides resolve
into a validated RunConfig (mawt.training.runconfig, the one schema of a run).

A setup names the base model, the data, the run defaults every study starts from, the lm-eval
tasks and the studies a bare `snakemake` runs. Errors name the file and the key (`StudyError`).
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import jsonschema
import yaml

from mawt.common import yamlfile
from mawt.training.runconfig import RunConfig, load

PACKAGE = Path(__file__).resolve().parents[1]


SCHEMAS = PACKAGE / "schemas"  # package data: an installed mawt finds them


SETUPS = PACKAGE / "setups"


class StudyError(ValueError):
    """A user mistake in a setup or study file (message names file and key)."""


@functools.cache  # read once per process: every setup and study file is checked against it
def schema_validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(yaml.safe_load((SCHEMAS / name).read_text()))


def _explain(error: jsonschema.ValidationError) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        return f"key {key}: {error.message}; allowed are {allowed}"
    hint = f" ({schema['description']})" if "description" in schema else ""
    return f"key {key}: {error.message}{hint}"


def read_mapping(path: Path) -> dict:
    try:
        data = yamlfile.load(path, "file")
    except yamlfile.YamlError as err:
        raise StudyError(str(err).replace(f"file {str(path)!r}", str(path), 1)) from None
    if not isinstance(data, dict):
        raise StudyError(f"{path}: expected a mapping at the top level")
    return data


def check_schema(data: dict, schema: str, path: Path) -> None:
    errors = sorted(schema_validator(schema).iter_errors(data), key=lambda e: list(e.absolute_path))
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


def setup_path(name: str) -> Path:
    """A setup is a name under mawt/setups/ (package data) or a path to a YAML file."""
    if name.endswith((".yaml", ".yml")):
        return Path(name)
    return SETUPS / f"{name}.yaml"


def _setup_data(name: str, chain: tuple = ()) -> tuple[dict, list[str]]:
    """A setup file's mapping with its `extends` parent merged under it (the child's keys win,
    mappings merge, lists replace), and the files it was read from, child first."""
    path = setup_path(name)
    if not path.is_file():
        choices = sorted(p.stem for p in SETUPS.glob("*.yaml"))
        where = f"{chain[-1]}: key extends" if chain else "config key setup"
        raise StudyError(f"{where}={name!r}: no file {path}; allowed are {choices} or a path to a YAML file")
    if str(path) in chain:
        raise StudyError(f"{path}: key extends: a cycle ({' -> '.join(chain)} -> {path})")
    data = read_mapping(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data, [str(path)]
    if not isinstance(parent, str):
        raise StudyError(f"{path}: key extends: expected a setup name or a path, got {parent!r}")
    base, files = _setup_data(parent, (*chain, str(path)))
    return deep_merge(base, data), [str(path), *files]


def load_setup(name: str) -> dict:
    """A validated setup (mawt/setups/<name>.yaml or a path). A setup may say
    `extends: <other setup>` and give only what differs (paper_standin.yaml does)."""
    data, files = _setup_data(name)
    path = Path(files[0])
    if "resources" in data:
        raise StudyError(f"{path}: key resources: threads, memory, runtime and GPUs are set per rule in a profile "
                         "(workflow/profiles/default, workflow/profiles/slurm) or with --set-threads / "
                         "--set-resources, not in a setup; where runs compute is run.train.device")
    check_schema(data, "setup.schema.yaml", path)
    data["path"] = str(path)
    data["files"] = files
    setup_run(data)  # the run defaults checked before any study is read
    return data


def setup_run(setup: dict) -> RunConfig:
    """The setup's own run defaults resolved (every study's variants start from them)."""
    return resolve_overrides(setup, setup.get("run") or {}, f"{setup.get('path', setup['name'])}: key run")


RUN_KEYS = ("mawt", "trainable", "train", "eval", "data")  # what a setup's run or a study may set


def resolve_overrides(setup: dict, over: dict, where: str, base_model: str | None = None) -> RunConfig:
    """Run overrides over the setup's data and base model, checked by RunConfig's dataclasses
    (the one schema of a run); errors name `where` (file and key)."""
    if not isinstance(over, dict):
        raise StudyError(f"{where}: expected a mapping of run settings, got {type(over).__name__}")
    unknown = sorted(set(over) - set(RUN_KEYS))
    if unknown:
        raise StudyError(f"{where}: unknown key(s) {unknown}; allowed are {list(RUN_KEYS)}")
    over = {**over, "data": deep_merge(setup["data"], over.get("data") or {}),  # a study may vary the data too
            "base_model": base_model or setup["base_model"]}
    try:
        return load(over, RunConfig, where)
    except ValueError as err:
        raise StudyError(str(err)) from None
