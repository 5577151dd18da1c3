# What Snakemake needs at parse time: the setup and studies validated (nothing is written on an error),
# the run index (mawt/studies/index.py: every run resolved once) and the rules' small input functions.
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
# A failed job shows why in Snakemake's own error output, not only in its log: every rule that runs
# `python -m mawt ... > {log} 2>&1` ends in `|| job_failed {log}`, which prints the log's last lines
# (a user mistake's one `error: ...` line) to stderr and fails with the job's exit status.
_JOB_FAILED = (
    'job_failed() { local rc=$?; echo "job failed (exit $rc); the end of its log $1:" >&2; '
    'tail -n 5 "$1" >&2 || true; return $rc; }; '
)
shell.prefix(
    f"set -euo pipefail; export PYTHONPATH={_QROOT}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
    + _JOB_FAILED.replace("{", "{{").replace("}", "}}")  # Snakemake formats the prefix
)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from mawt.bases.standin import RECIPE as STANDIN_RECIPE
from mawt.common import atomic, layout
from mawt.common.layout import Layout, is_base_run
from mawt.studies import runsfile
from mawt.studies.index import RunIndex
from mawt.studies.setup import StudyError, load_setup, setup_run
from mawt.studies.study import load_studies
from mawt.training.preflight import base_shape

try:
    SETUP = load_setup(config["setup"])
    # --config studies=[...] wins; else the setup's default studies; else every study in the folder
    STUDIES = load_studies(
        SETUP, config.get("studies") or SETUP.get("studies") or None, config.get("ablations", "ablations")
    )
except StudyError as err:
    sys.exit(f"Invalid ablation configuration: {err}")

L = Layout(SETUP["name"])  # every path of results/<setup>/ (mawt/common/layout.py)
BUILT_BASE = SETUP["base_model"] in ("pretrain", "standin")  # built by a rule of base.smk
STANDIN = {**STANDIN_RECIPE, **(SETUP.get("standin") or {})}  # the stand-in's recipe (build_standin)
BASE_MODEL = L.built_base if BUILT_BASE else SETUP["base_model"]
# a local base (the shipped micro asset, a directory): its files are job inputs, so a rebuilt base reruns
LOCAL_BASE = BUILT_BASE or os.path.isfile(os.path.join(BASE_MODEL, "config.json"))
SETUP_RUN = setup_run(SETUP)  # the setup's own run defaults, resolved

# Every run of every study, resolved once (mawt/studies/index.py): the jobs, the batches and each
# study's runs.json come from it. pilot.smk adds the pilot's runs before the batches are formed.
INDEX = RunIndex(SETUP, STUDIES, L, BASE_MODEL)
# The base model's shape (mawt/training/preflight.py): read without building or downloading anything
SHAPE, _why = base_shape(SETUP)
if SHAPE is None:
    print(f"mawt: the checks against the base model's shape are left to the train jobs: {_why}", file=sys.stderr)
else:
    try:
        INDEX.check_against(SHAPE)
    except StudyError as err:
        sys.exit(f"Invalid ablation configuration: {err}")

RUN_FILES = [layout.MODEL, layout.RUN_JSON, layout.METRICS]  # what run_files links of a trained run

# Above every train batch's: the small config writers run before any training starts. Each takes one of
# --cores while it runs, so at priority 0 they queue behind the trains, and a batch whose configs came
# last started last whatever its own priority (the 03a43e1 run: the longest, 137 s, at 721 s of 892).
CONFIG_PRIORITY = 10**6


def train_priority(wildcards):
    """The longest batches start first (mawt.studies.batches.batch_priority)."""
    return INDEX.train_priority(wildcards.batch)


def batch_configs(wildcards):
    return [L.run_file(r, layout.RUN_CONFIG) for r in INDEX.train_batches()[wildcards.batch]]


def batch_train_split(wildcards):
    return L.split_file(INDEX.run_data(INDEX.train_batches()[wildcards.batch][0]), layout.TRAIN_SPLIT)


def batch_train_args(wildcards):
    """`--config C --out W` per run of the batch (W: its work folder)."""
    runs = INDEX.train_batches()[wildcards.batch]
    return " ".join(
        f"--config {shlex.quote(L.run_file(r, layout.RUN_CONFIG))} --out {shlex.quote(L.work_dir(r))}" for r in runs
    )


def eval_batch_models(wildcards):
    _, runs = INDEX.eval_batches()[wildcards.ebatch]
    if is_base_run(runs[0]):
        return base_model_files()
    return [f"{L.run_file(r, layout.MODEL)}/model.safetensors" for r in runs]


def eval_batch_heldout(wildcards):
    return L.split_file(INDEX.run_data(INDEX.eval_batches()[wildcards.ebatch][1][0]), layout.HELDOUT_SPLIT)


def eval_batch_config(wildcards):
    ev, runs = INDEX.eval_batches()[wildcards.ebatch]
    return L.eval_file(runs[0], ev, layout.EVAL_CONFIG)


def eval_batch_args(wildcards):
    """`--model M --out W` per run of the eval batch (W: its heldout.json in the run's work folder)."""
    ev, runs = INDEX.eval_batches()[wildcards.ebatch]
    out = lambda r: f"{L.work_eval_dir(r, ev)}/{layout.HELDOUT}"  # noqa: E731
    return " ".join(f"--model {shlex.quote(model_dir(r))} --out {shlex.quote(out(r))}" for r in runs)


def link_run_files(wildcards):
    """run_files: a trained run's files from its batch's work folder into its own (hard links)."""
    atomic.link_files(L.work_dir(wildcards.run), L.run_dir(wildcards.run), RUN_FILES)


def link_eval_files(wildcards):
    """eval_files: a run's held-out evaluation from its eval batch's work folder into its own."""
    src = L.work_eval_dir(wildcards.run, wildcards.ev)
    atomic.link_files(src, L.eval_dir(wildcards.run, wildcards.ev), [layout.HELDOUT])


def base_model_files(wildcards=None):
    """What a job needs of the base model: its local files, or nothing (hub id)."""
    return [f"{BASE_MODEL}/config.json", f"{BASE_MODEL}/model.safetensors"] if LOCAL_BASE else []


def run_heldout(wildcards):
    return L.split_file(INDEX.run_data(wildcards.run), layout.HELDOUT_SPLIT)


def data_yaml(wildcards):
    return yaml.safe_dump(INDEX.data[wildcards.data], sort_keys=True)


def run_yaml(wildcards):
    return yaml.safe_dump(INDEX.runs[wildcards.run], sort_keys=True)


def eval_yaml(wildcards):
    return yaml.safe_dump(INDEX.evals[wildcards.ev], sort_keys=True)


def study_index(wildcards):
    """The study's run index, runs.json (mawt/studies/runsfile.py), as JSON text."""
    return runsfile.dumps(INDEX.study_entry(wildcards.study))


def study_inputs(wildcards):
    return INDEX.study_inputs(wildcards.study)


def all_study_files():
    """Every study's files as `mawt table` writes them (what the report reads)."""
    return [str(path) for study in STUDIES for path in layout.study_outputs(L.study_dir(study)).values()]


def device():
    """Where evaluation jobs run: where the setup's runs train (`run.train.device`: auto, cpu or cuda).
    How many GPUs, threads, memory and minutes a job gets is the profile's (workflow/profiles/)."""
    return SETUP_RUN.train.device


def eval_model(wildcards):
    if layout.is_base_run(wildcards.run):
        return base_model_files()
    return [f"{L.run_file(wildcards.run, layout.MODEL)}/model.safetensors"]


def model_dir(wildcards):
    """A run's model folder (`wildcards` with a `run`, or the run id itself)."""
    run = wildcards if isinstance(wildcards, str) else wildcards.run
    return BASE_MODEL if layout.is_base_run(run) else L.run_file(run, layout.MODEL)


def report_once_made(path, made, **kwargs):
    """`report(path, **kwargs)` once every file in `made` exists, else the bare path. Snakemake's `--report`
    refuses an output flagged for the report that does not exist yet; so before (or during) a run it
    reports the workflow and what is finished instead of failing. Flags change nothing when running."""
    return report(path, **kwargs) if all(os.path.exists(p) for p in made) else path
