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
from mawt.studies.baselines import BASELINES
from mawt.layer.config import is_mawt
from mawt.common.layout import Layout, base_run
from mawt.training.preflight import base_shape, check_against
from mawt.studies.setup import StudyError, load_setup, setup_run
from mawt.studies.batches import batch_priority, eval_batch_id, train_batches
from mawt.studies.study import data_id, eval_id, load_studies, resolve_run, run_config, run_id
from mawt.training.runconfig import training_part

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

# The base model's shape (mawt/training/preflight.py): read without building or downloading anything
SHAPE, _why = base_shape(SETUP)


def check_runs_against_base():
    """Every distinct run of every study against the base model's shape (mawt/training/preflight.py), before any
    job: layers in range, trainable last:N, exact credit, the depth's memory. The study's own variants
    first, so a mistake is named where it was written (the baselines derived from it fail the same way).
    The seed changes no check: each variant is checked at its study's first seed."""
    if SHAPE is None:
        print(f"mawt: the checks against the base model's shape are left to the train jobs: {_why}", file=sys.stderr)
        return
    checked = set()
    for study in STUDIES.values():
        for variant in sorted(study.variants, key=lambda v: v.split("_")[0] in BASELINES):
            run = resolve_run(SETUP, study, variant, study.seeds[0], base_model=BASE_MODEL)
            key = run_id(run.to_dict())
            if key in checked:
                continue
            checked.add(key)
            try:
                check_against(run, SHAPE)
            except ValueError as err:
                sys.exit(
                    f"Invalid ablation configuration: {study.path}: key variants.{variant}: {err} "
                    f"(base model: {SHAPE.source})"
                )


check_runs_against_base()

# run id -> resolved training config (no `eval`: it is not part of the run id); eval id -> eval
# config; study -> [(variant, seed, run id, eval id)]; data id -> data config
RUNS = {}
EVALS = {}
STUDY_RUNS = {}
DATA = {}
for _name, _study in STUDIES.items():
    STUDY_RUNS[_name] = []
    for _variant in _study.variants:
        for _seed in _study.seeds:
            _cfg = run_config(SETUP, _study, _variant, _seed, base_model=BASE_MODEL)
            RUNS[run_id(_cfg)] = training_part(_cfg)
            EVALS[eval_id(_cfg["eval"])] = _cfg["eval"]
            DATA[data_id(_cfg["data"])] = _cfg["data"]
            STUDY_RUNS[_name].append((_variant, _seed, run_id(_cfg), eval_id(_cfg["eval"])))
# the untuned base in its native thinking mode, a reference row (setups of reasoning models)
NATIVE = {e: {**cfg, "thinking": "native"} for e, cfg in EVALS.items()} if SETUP.get("native_reference") else {}
EVALS.update({eval_id(cfg): cfg for cfg in NATIVE.values()})


# Batches (mawt/studies/batches.py): the seeds of one config trained in one job, evaluated in one; built on
# first use, once every rule file has added its runs (pilot.smk adds the pilot's)
SEEDS_PER_JOB = SETUP.get("seeds_per_job", 1)
RUN_FILES = [layout.MODEL, layout.RUN_JSON, layout.METRICS]  # what run_files links of a trained run
_BATCHES = {}


def train_batch_index():
    """train batch id -> its run ids."""
    if "train" not in _BATCHES:
        _BATCHES["train"] = train_batches(RUNS, SEEDS_PER_JOB)
    return _BATCHES["train"]


def run_batch_index():
    """run id -> its train batch id."""
    if "run" not in _BATCHES:
        _BATCHES["run"] = {r: b for b, runs in train_batch_index().items() for r in runs}
    return _BATCHES["run"]


def eval_members(run):
    """The runs evaluated with `run` in one job: its train batch's, or the untuned base alone."""
    return [run] if layout.is_base_run(run) else train_batch_index()[run_batch_index()[run]]


def eval_batch_of(run, ev):
    return eval_batch_id(ev, eval_members(run))


def eval_batch_index():
    """eval batch id -> (eval id, run ids): every train batch and every untuned base, under every eval config."""
    if "eval" not in _BATCHES:
        groups = [*train_batch_index().values(), *([base_run(d)] for d in DATA)]
        _BATCHES["eval"] = {eval_batch_id(ev, runs): (ev, runs) for runs in groups for ev in EVALS}
    return _BATCHES["eval"]


def batch_configs(wildcards):
    return [L.run_file(r, layout.RUN_CONFIG) for r in train_batch_index()[wildcards.batch]]


# Above every train batch's: the small config writers run before any training starts. Each takes one of
# --cores while it runs, so at priority 0 they queue behind the trains, and a batch whose configs came
# last started last whatever its own priority (the 03a43e1 run: the longest, 137 s, at 721 s of 892).
CONFIG_PRIORITY = 10**6


def train_priority(wildcards):
    """The longest batches start first (mawt.studies.batches.batch_priority)."""
    return batch_priority([RUNS[r] for r in train_batch_index()[wildcards.batch]])


def batch_train_split(wildcards):
    return L.split_file(run_data(train_batch_index()[wildcards.batch][0]), layout.TRAIN_SPLIT)


def batch_train_args(wildcards):
    """`--config C --out W` per run of the batch (W: its work folder)."""
    runs = train_batch_index()[wildcards.batch]
    return " ".join(
        f"--config {shlex.quote(L.run_file(r, layout.RUN_CONFIG))} --out {shlex.quote(L.work_dir(r))}" for r in runs
    )


def eval_batch_models(wildcards):
    _, runs = eval_batch_index()[wildcards.ebatch]
    if layout.is_base_run(runs[0]):
        return base_model_files()
    return [f"{L.run_file(r, layout.MODEL)}/model.safetensors" for r in runs]


def eval_batch_heldout(wildcards):
    return L.split_file(run_data(eval_batch_index()[wildcards.ebatch][1][0]), layout.HELDOUT_SPLIT)


def eval_batch_config(wildcards):
    ev, runs = eval_batch_index()[wildcards.ebatch]
    return L.eval_file(runs[0], ev, layout.EVAL_CONFIG)


def eval_batch_args(wildcards):
    """`--model M --out W` per run of the eval batch (W: its heldout.json in the run's work folder)."""
    ev, runs = eval_batch_index()[wildcards.ebatch]
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


def run_data(run):
    """The data id of a run (trained or `base-<data id>`)."""
    return run.split("-", 1)[1] if layout.is_base_run(run) else data_id(RUNS[run]["data"])


def run_heldout(wildcards):
    return L.split_file(run_data(wildcards.run), layout.HELDOUT_SPLIT)


def run_train_split(wildcards):
    return L.split_file(run_data(wildcards.run), layout.TRAIN_SPLIT)


def data_yaml(wildcards):
    return yaml.safe_dump(DATA[wildcards.data], sort_keys=True)


def run_yaml(wildcards):
    return yaml.safe_dump(RUNS[wildcards.run], sort_keys=True)


def eval_yaml(wildcards):
    return yaml.safe_dump(EVALS[wildcards.ev], sort_keys=True)


def attention_run(study):
    """The run whose attention maps the report shows: the study's first MAWT variant (D > 1), first seed."""
    for _, _, run, _ in STUDY_RUNS[study]:
        if is_mawt(RUNS[run].get("mawt")):
            return run
    return None


def study_data(study):
    """The study's data ids, the study defaults' split first."""
    return list(dict.fromkeys(run_data(r) for _, _, r, _ in STUDY_RUNS[study]))


def study_eval(study):
    """The eval id of the study's defaults (its plain run's): the untuned base rows use it."""
    return STUDY_RUNS[study][0][3]


LMEVAL_SEEDS = SETUP["lm_eval"].get("seeds")  # None: every seed
LMEVAL_STUDIES = SETUP["lm_eval"].get("studies")  # None: every study
# the runs lm-eval scores: those of the setup's `lm_eval.studies` (a run shared with another study shows
# its scores there too), or of every study
LMEVAL_RUNS = {
    r for name, runs in STUDY_RUNS.items() if LMEVAL_STUDIES is None or name in LMEVAL_STUDIES for _, _, r, _ in runs
}


def has_lmeval(seed, run):
    """lm-eval runs for every seed, or only for the setup's `lm_eval.seeds`, of the runs of its
    `lm_eval.studies` (the tables show each score's n)."""
    return (LMEVAL_SEEDS is None or seed in LMEVAL_SEEDS) and run in LMEVAL_RUNS


def study_index(wildcards):
    """The study's run index (read by mawt/analysis/results.py) as JSON text."""
    name = wildcards.study
    study = STUDIES[name]
    runs = [
        {
            "variant": v,
            "seed": s,
            "run_id": r,
            "dir": L.run_dir(r),
            "bench": L.benchmark("train", run_batch_index()[r]),  # its batch's job: `bench_share` runs
            "bench_share": len(train_batch_index()[run_batch_index()[r]]),
            "baseline": study.baselines.get(v),
            "data": run_data(r),
            "eval_id": e,
            "heldout": L.eval_file(r, e, layout.HELDOUT),
            "lmeval": L.eval_file(r, e, layout.LMEVAL) if has_lmeval(s, r) else None,
        }
        for v, s, r, e in STUDY_RUNS[name]
    ]
    ev = study_eval(name)
    bases = {}
    for d in study_data(name):
        bases[d] = {
            "heldout": L.eval_file(base_run(d), ev, layout.HELDOUT),
            "lmeval": L.eval_file(base_run(d), ev, layout.LMEVAL),
            "families": DATA[d].get("families"),
        }
        if ev in NATIVE:
            bases[d]["native_heldout"] = L.eval_file(base_run(d), eval_id(NATIVE[ev]), layout.HELDOUT)
    att = attention_run(name)
    first = study_data(name)[0]
    return json.dumps(
        {
            "study": study.name,
            "setup": SETUP["name"],
            "description": study.description,
            "margin": study.margin,
            "yaml": study.text,
            "base": bases[first],
            "bases": bases,
            "runs": runs,
            "attention": L.run_file(att, layout.ATTENTION) if att else None,
        },
        indent=2,
        sort_keys=True,
    )


def study_inputs(wildcards):
    name = wildcards.study
    files = sorted({L.run_file(r, layout.RUN_JSON) for _, _, r, _ in STUDY_RUNS[name]})
    files += sorted({L.eval_file(r, e, layout.HELDOUT) for _, _, r, e in STUDY_RUNS[name]})
    files += sorted({L.eval_file(r, e, layout.LMEVAL) for _, s, r, e in STUDY_RUNS[name] if has_lmeval(s, r)})
    att = attention_run(name)
    files += [L.run_file(att, layout.ATTENTION)] if att else []
    ev = study_eval(name)
    for d in study_data(name):
        files += [L.eval_file(base_run(d), ev, layout.HELDOUT), L.eval_file(base_run(d), ev, layout.LMEVAL)]
        if ev in NATIVE:
            files.append(L.eval_file(base_run(d), eval_id(NATIVE[ev]), layout.HELDOUT))
    return files


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
