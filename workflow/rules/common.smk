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
from mawt.workflow import StudyError, data_id, load_setup, load_studies, run_config, run_id

try:
    SETUP = load_setup(config["setup"])
    # --config studies=[...] wins; else the setup's default studies; else every study in the folder
    STUDIES = load_studies(SETUP, config.get("studies") or SETUP.get("studies") or None,
                           config.get("ablations", "ablations"))
except StudyError as err:
    sys.exit(f"Invalid ablation configuration: {err}")

OUT = f"results/{SETUP['name']}"
LOGS = f"results/logs/{SETUP['name']}"
BENCH = f"results/benchmarks/{SETUP['name']}"
PRETRAIN = SETUP["base_model"] == "pretrain"
BASE_MODEL = f"{OUT}/base/model" if PRETRAIN else SETUP["base_model"]
# a local base (the shipped micro asset, a directory): its files are job inputs, so a rebuilt base reruns
LOCAL_BASE = PRETRAIN or os.path.isfile(os.path.join(BASE_MODEL, "config.json"))
RES = SETUP["resources"]

# run id -> resolved config; study -> [(variant, seed, run id)]; data id -> data config
RUNS = {}
STUDY_RUNS = {}
DATA = {}
for _name, _study in STUDIES.items():
    STUDY_RUNS[_name] = []
    for _variant in _study.variants:
        for _seed in _study.seeds:
            _cfg = run_config(SETUP, _study, _variant, _seed, base_model=BASE_MODEL)
            RUNS[run_id(_cfg)] = _cfg
            DATA[data_id(_cfg["data"])] = _cfg["data"]
            STUDY_RUNS[_name].append((_variant, _seed, run_id(_cfg)))


def base_model_files(wildcards=None):
    """What a job needs of the base model: its local files, or nothing (hub id)."""
    return [f"{BASE_MODEL}/config.json", f"{BASE_MODEL}/model.safetensors"] if LOCAL_BASE else []


def run_dir(run):
    return f"{OUT}/runs/{run}"


def base_run(data):
    """The untuned base model's evaluation on one data split is the run `base-<data id>`."""
    return f"base-{data}"


def run_data(run):
    """The data id of a run (trained or `base-<data id>`)."""
    return run.split("-", 1)[1] if run.startswith("base-") else data_id(RUNS[run]["data"])


def split_dir(data):
    return f"{OUT}/data/{data}"


def run_heldout(wildcards):
    return f"{split_dir(run_data(wildcards.run))}/heldout.jsonl"


def run_train_split(wildcards):
    return f"{split_dir(run_data(wildcards.run))}/train.jsonl"


def data_yaml(wildcards):
    return yaml.safe_dump(DATA[wildcards.data], sort_keys=True)


def run_yaml(wildcards):
    return yaml.safe_dump(RUNS[wildcards.run], sort_keys=True)


def attention_run(study):
    """The run whose attention maps the report shows: the study's first MAWT variant (D > 1), first seed."""
    for _, _, run in STUDY_RUNS[study]:
        if (RUNS[run].get("mawt") or {}).get("depth", 1) > 1:
            return run
    return None


def study_data(study):
    """The study's data ids, the study defaults' split first."""
    return list(dict.fromkeys(run_data(r) for _, _, r in STUDY_RUNS[study]))


LMEVAL_SEEDS = SETUP["lm_eval"].get("seeds")  # None: every seed


def has_lmeval(seed):
    """lm-eval runs for every seed, or only for the setup's `lm_eval.seeds` (the tables show the n)."""
    return LMEVAL_SEEDS is None or seed in LMEVAL_SEEDS


def study_index(wildcards):
    """The study's run index (see mawt/tables.py) as JSON text."""
    study = STUDIES[wildcards.study]
    runs = [{"variant": v, "seed": s, "run_id": r, "dir": run_dir(r), "bench": f"{BENCH}/train/{r}.tsv",
             "baseline": study.baselines.get(v), "data": run_data(r),
             "lmeval": f"{run_dir(r)}/lmeval.json" if has_lmeval(s) else None}
            for v, s, r in STUDY_RUNS[wildcards.study]]
    bases = {d: {"heldout": f"{run_dir(base_run(d))}/heldout.json", "lmeval": f"{run_dir(base_run(d))}/lmeval.json",
                 "families": DATA[d].get("families")} for d in study_data(wildcards.study)}
    att = attention_run(wildcards.study)
    return json.dumps({"study": study.name, "setup": SETUP["name"], "description": study.description,
                       "yaml": study.text, "base": bases[study_data(wildcards.study)[0]], "bases": bases,
                       "runs": runs, "attention": f"{run_dir(att)}/attention.npz" if att else None},
                      indent=2, sort_keys=True)


def study_inputs(wildcards):
    runs = {r for _, _, r in STUDY_RUNS[wildcards.study]}
    files = [f"{run_dir(r)}/{name}" for r in sorted(runs) for name in ("run.json", "heldout.json")]
    files += sorted({f"{run_dir(r)}/lmeval.json" for _, s, r in STUDY_RUNS[wildcards.study] if has_lmeval(s)})
    att = attention_run(wildcards.study)
    files += [f"{run_dir(att)}/attention.npz"] if att else []
    for d in study_data(wildcards.study):
        files += [f"{run_dir(base_run(d))}/heldout.json", f"{run_dir(base_run(d))}/lmeval.json"]
    return files


def study_tables():
    return [f"{OUT}/studies/{study}/table.md" for study in STUDIES]


def study_indexes():
    return [f"{OUT}/studies/{study}/runs.json" for study in STUDIES]


def gpu_resources():
    """GPU jobs ask for `gpu` (read by the SLURM executor plugin); CPU setups for none."""
    return {"gpu": RES["gpus"]} if RES.get("gpus") else {}


def eval_model(wildcards):
    if wildcards.run.startswith("base-"):
        return base_model_files()
    return [f"{run_dir(wildcards.run)}/model/model.safetensors"]


def model_dir(wildcards):
    return BASE_MODEL if wildcards.run.startswith("base-") else f"{run_dir(wildcards.run)}/model"
