# Helpers and the resolved study/run tables. All validation happens here, at
# parse time, before any job is scheduled (nothing is written on an error).
import json
import os
import shlex
import sys

import yaml

# Jobs run `python -m mawt ...` from the working directory (-d); the package is
# this checkout's, installed or not (conda envs from environment.yml, SLURM jobs).
_ROOT = os.path.abspath(workflow.basedir)  # the top-level Snakefile's folder
# (braces doubled twice: once for this f-string, once for Snakemake's formatting of the command)
_QROOT = shlex.quote(_ROOT).replace("{", "{{").replace("}", "}}")
shell.prefix(f"set -euo pipefail; export PYTHONPATH={_QROOT}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from mawt import atomic
from mawt.workflow import StudyError, load_setup, load_studies, run_config, run_id

try:
    SETUP = load_setup(config["setup"])
    STUDIES = load_studies(SETUP, config.get("studies") or None, config.get("ablations", "ablations"))
except StudyError as err:
    sys.exit(f"Invalid ablation configuration: {err}")

OUT = f"results/{SETUP['name']}"
LOGS = f"results/logs/{SETUP['name']}"
BENCH = f"results/benchmarks/{SETUP['name']}"
PRETRAIN = SETUP["base_model"] == "pretrain"
BASE_MODEL = f"{OUT}/base/model" if PRETRAIN else SETUP["base_model"]
RES = SETUP["resources"]

# run id -> resolved config; study -> [(variant, seed, run id)]
RUNS = {}
STUDY_RUNS = {}
for _name, _study in STUDIES.items():
    STUDY_RUNS[_name] = []
    for _variant in _study.variants:
        for _seed in _study.seeds:
            _cfg = run_config(SETUP, _study, _variant, _seed, base_model=BASE_MODEL)
            RUNS[run_id(_cfg)] = _cfg
            STUDY_RUNS[_name].append((_variant, _seed, run_id(_cfg)))


def base_model_files(wildcards=None):
    """What a job needs of the base model: the pre-trained micro files, or nothing (hub id)."""
    return [f"{BASE_MODEL}/config.json", f"{BASE_MODEL}/model.safetensors"] if PRETRAIN else []


def run_dir(run):
    return f"{OUT}/runs/{run}"


def run_yaml(wildcards):
    return yaml.safe_dump(RUNS[wildcards.run], sort_keys=True)


def attention_run(study):
    """The run whose attention maps the report shows: the study's first MAWT variant (D > 1), first seed."""
    for _, _, run in STUDY_RUNS[study]:
        if (RUNS[run].get("mawt") or {}).get("depth", 1) > 1:
            return run
    return None


def study_index(wildcards):
    """The study's run index (see mawt/tables.py) as JSON text."""
    study = STUDIES[wildcards.study]
    runs = [{"variant": v, "seed": s, "run_id": r, "dir": run_dir(r), "bench": f"{BENCH}/train/{r}.tsv"}
            for v, s, r in STUDY_RUNS[wildcards.study]]
    base = {"heldout": f"{run_dir('base')}/heldout.json", "lmeval": f"{run_dir('base')}/lmeval.json"}
    att = attention_run(wildcards.study)
    return json.dumps({"study": study.name, "setup": SETUP["name"], "description": study.description,
                       "yaml": study.text, "base": base, "runs": runs,
                       "attention": f"{run_dir(att)}/attention.npz" if att else None}, indent=2, sort_keys=True)


def study_inputs(wildcards):
    runs = {r for _, _, r in STUDY_RUNS[wildcards.study]}
    files = [f"{run_dir(r)}/{name}" for r in sorted(runs) for name in ("run.json", "heldout.json", "lmeval.json")]
    att = attention_run(wildcards.study)
    files += [f"{run_dir(att)}/attention.npz"] if att else []
    return files + [f"{run_dir('base')}/heldout.json", f"{run_dir('base')}/lmeval.json"]


def study_tables():
    return [f"{OUT}/studies/{study}/table.md" for study in STUDIES]


def study_indexes():
    return [f"{OUT}/studies/{study}/runs.json" for study in STUDIES]


def gpu_resources():
    """GPU jobs ask for `gpu` (read by the SLURM executor plugin); CPU setups for none."""
    return {"gpu": RES["gpus"]} if RES.get("gpus") else {}


def eval_model(wildcards):
    if wildcards.run == "base":
        return base_model_files()
    return [f"{run_dir(wildcards.run)}/model/model.safetensors"]


def model_dir(wildcards):
    return BASE_MODEL if wildcards.run == "base" else f"{run_dir(wildcards.run)}/model"
