"""Where a setup's results live: every path of `results/<setup>/`, named once.

The workflow's rules, the study tables and the report all take their paths from
here, so the layout is written down in one place. A method called with Snakemake
wildcards (`"{run}"`) gives the rule's pattern; called with values, the file.

    results/<setup>/
      base/model/                       a base the workflow builds (micro, stand-in)
      data/<data id>/                   data.yaml, train.jsonl, heldout.jsonl, manifest.json
      runs/<run id>/                    config.yaml, model/, run.json, metrics.jsonl, attention.npz
        eval-<eval id>/                 eval.yaml, heldout.json, lmeval.json
      runs/base-<data id>/eval-<id>/    the untuned base on one split
      studies/<study>/                  runs.json (index) -> table.csv, table.md, runs.csv, long.csv,
                                        study.json, browser.csv, plots/  (written by `mawt table`)
      setup.yaml, summary.md, report.html, all_runs.csv, all_runs.parquet
    results/logs/<setup>/<rule>/...     one log per job
    results/benchmarks/<setup>/<rule>/  Snakemake benchmark TSVs (time, peak memory)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# A run directory's files (trained runs; `mawt train --out` writes them).
RUN_CONFIG = "config.yaml"
RUN_JSON = "run.json"
METRICS = "metrics.jsonl"
MODEL = "model"
ATTENTION = "attention.npz"
# An evaluation directory's files.
EVAL_CONFIG = "eval.yaml"
HELDOUT = "heldout.json"
LMEVAL = "lmeval.json"
# A data split's files (`mawt prepare-data --out`).
DATA_CONFIG = "data.yaml"
TRAIN_SPLIT = "train.jsonl"
HELDOUT_SPLIT = "heldout.jsonl"
MANIFEST = "manifest.json"
# A study's files: the index the workflow writes, then what `mawt table` writes from it;
# the report reads only the latter.
STUDY_INDEX = "runs.json"
STUDY_FILES = {"table": "table.csv", "markdown": "table.md", "runs": "runs.csv", "long": "long.csv",
               "study": "study.json", "browser": "browser.csv"}
PLOTS = "plots"


def base_run(data: str) -> str:
    """The untuned base model's evaluation on one data split is the run `base-<data id>`."""
    return f"base-{data}"


def is_base_run(run: str) -> bool:
    return run.startswith("base-")


@dataclass(frozen=True)
class Layout:
    """The paths of one setup's results under `root` (default `results`)."""

    setup: str
    root: str = "results"

    @property
    def out(self) -> str:
        return f"{self.root}/{self.setup}"

    @property
    def logs(self) -> str:
        return f"{self.root}/logs/{self.setup}"

    @property
    def bench(self) -> str:
        return f"{self.root}/benchmarks/{self.setup}"

    def log(self, rule: str, job: str | None = None) -> str:
        return f"{self.logs}/{rule}/{job}.log" if job else f"{self.logs}/{rule}.log"

    def benchmark(self, rule: str, job: str | None = None) -> str:
        return f"{self.bench}/{rule}/{job}.tsv" if job else f"{self.bench}/{rule}.tsv"

    # the base model the workflow builds (micro pre-training, the stand-in)
    @property
    def built_base(self) -> str:
        return f"{self.out}/base/{MODEL}"

    # data splits
    def split_dir(self, data: str) -> str:
        return f"{self.out}/data/{data}"

    def split_file(self, data: str, name: str) -> str:
        return f"{self.split_dir(data)}/{name}"

    # runs and their evaluations
    def run_dir(self, run: str) -> str:
        return f"{self.out}/runs/{run}"

    def run_file(self, run: str, name: str) -> str:
        return f"{self.run_dir(run)}/{name}"

    def eval_dir(self, run: str, ev: str) -> str:
        """A run's evaluation with one eval config: the eval config is not part of the run id."""
        return f"{self.run_dir(run)}/eval-{ev}"

    def eval_file(self, run: str, ev: str, name: str) -> str:
        return f"{self.eval_dir(run, ev)}/{name}"

    # batches: several runs in one job (mawt/studies/batches.py); a run's files are made in work/<run>/
    def work_dir(self, run: str) -> str:
        return f"{self.out}/work/{run}"

    def work_eval_dir(self, run: str, ev: str) -> str:
        return f"{self.work_dir(run)}/eval-{ev}"

    def batch_file(self, batch: str) -> str:
        """The manifest a train batch's job writes when every run of it is trained."""
        return f"{self.out}/batches/train-{batch}.json"

    def eval_batch_file(self, batch: str) -> str:
        return f"{self.out}/batches/eval-{batch}.json"

    # studies and the setup's report
    def study_dir(self, study: str) -> str:
        return f"{self.out}/studies/{study}"

    def study_file(self, study: str, name: str) -> str:
        return f"{self.study_dir(study)}/{name}"

    @property
    def setup_text(self) -> str:
        return f"{self.out}/setup.yaml"

    @property
    def summary(self) -> str:
        return f"{self.out}/summary.md"

    @property
    def report(self) -> str:
        return f"{self.out}/report.html"

    @property
    def tidy(self) -> str:
        """All runs of all studies, tidy (`.csv` and `.parquet` are added)."""
        return f"{self.out}/all_runs"


CURRENT_REPORT = "results/report.html"  # a copy of the configured setup's report


def study_outputs(study_dir: str | Path) -> dict[str, Path]:
    """What `mawt table` writes in a study folder, by role (see STUDY_FILES)."""
    return {role: Path(study_dir) / name for role, name in STUDY_FILES.items()}
