"""The run index: every run of the chosen studies, resolved once, and what each job and study reads of it.

The workflow builds one `RunIndex` at parse time (workflow/rules/common.smk) and asks it everything:
which runs, evaluations and data splits exist, how they batch into jobs (mawt/studies/batches.py),
and each study's runs.json (`study_entry`, the contract in mawt/studies/runsfile.py). It is plain
Python, so it is tested without Snakemake (tests/test_run_index.py). How a run flows from its YAML
to table.csv: docs/dataflow.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from mawt.common import layout as files
from mawt.common.layout import Layout, base_run, is_base_run
from mawt.layer.config import LEARNED_MIXERS, is_mawt
from mawt.studies.baselines import BASELINES
from mawt.studies.batches import batch_priority, eval_batch_id, train_batches
from mawt.studies.runsfile import AXES
from mawt.studies.setup import StudyError
from mawt.studies.study import StudySpec, data_id, eval_id, resolve_run, run_id
from mawt.training.preflight import check_against
from mawt.training.runconfig import RunConfig, training_part


def run_axes(run: RunConfig) -> dict:
    """The settings a study varies, as the tables show them: the layer's, what trains, the data's
    families, and the GRPO knobs only where the GRPO objective trains (plain, softmax, ... ignore them)."""
    m = run.mawt  # None: unpatched
    axes = {"depth": m and m.depth, "mixer": m and m.mixer, "gate": m and m.gate, "layers": str(m and m.layers),
            "trainable": run.trainable, "families": "+".join(run.data.families or []),
            "group_size": run.train.group_size, "learning_rate": run.train.learning_rate, "steps": run.train.steps}
    if run.uses_grpo:
        axes.update(credit=run.train.credit, advantage=run.train.advantage, reward_control=run.train.reward_control)
    if m is not None and m.is_mawt and m.mixer in LEARNED_MIXERS:  # what a learned selector observes
        axes["selector_input"] = m.selector_input
    if m is not None and m.plant != "none":  # a planted control (docs/grpo.md)
        axes["plant"] = m.plant
    return {k: axes[k] for k in AXES if k in axes}


def check_variant(study: StudySpec, variant: str, run: RunConfig, shape) -> None:
    """One run of a variant against the base model's shape (mawt/training/preflight.py); a broken rule
    is a StudyError naming the study file and the variant."""
    try:
        check_against(run, shape)
    except ValueError as err:
        raise StudyError(f"{study.path}: key variants.{variant}: {err} (base model: {shape.source})") from None


@dataclass(frozen=True)
class StudyRun:
    """One run of a study: its variant and seed, and the ids of its training and evaluation."""

    variant: str
    seed: int
    run_id: str
    eval_id: str


class RunIndex:
    """Every run of `studies`, each resolved once (`mawt.studies.study.resolve_run`), on `base_model`."""

    def __init__(self, setup: dict, studies: dict[str, StudySpec], paths: Layout, base_model: str):
        self.setup, self.studies, self.paths, self.base_model = setup, studies, paths, base_model
        self.configs: dict[str, RunConfig] = {}  # run id -> the resolved run (with `eval`)
        self.runs: dict[str, dict] = {}  # run id -> its training config (what config.yaml holds)
        self.evals: dict[str, dict] = {}  # eval id -> eval config
        self.data: dict[str, dict] = {}  # data id -> data config
        self.study_runs: dict[str, list[StudyRun]] = {}
        self.native: dict[str, dict] = {}  # eval id -> the untuned base's native-thinking eval config
        self.seeds_per_job = int(setup.get("seeds_per_job", 1))
        self._batches: dict = {}
        for name, study in studies.items():
            self.study_runs[name] = [self._study_run(study, v, s) for v in study.variants for s in study.seeds]
        lm = setup["lm_eval"]  # the runs lm-eval scores: those of `lm_eval.studies`, or of every study
        self._lmeval_seeds = lm.get("seeds")
        self._lmeval_runs = {r.run_id for name, runs in self.study_runs.items()
                             if lm.get("studies") is None or name in lm["studies"] for r in runs}
        if setup.get("native_reference"):  # the untuned reasoning model in its own thinking mode: a reference row
            self.native = {e: {**cfg, "thinking": "native"} for e, cfg in self.evals.items()}
            self.evals.update({eval_id(cfg): cfg for cfg in self.native.values()})

    def _study_run(self, study: StudySpec, variant: str, seed: int) -> StudyRun:
        rid, ev = self.add(resolve_run(self.setup, study, variant, seed, base_model=self.base_model))
        return StudyRun(variant, seed, rid, ev)

    def add(self, run: RunConfig) -> tuple[str, str]:
        """A run (a study's, or the pilot's) -> its run id and eval id; one resolved twice is kept once."""
        if self._batches:
            raise RuntimeError("a run was added after the batches were formed")
        config = run.to_dict()
        rid, ev = run_id(config), eval_id(config["eval"])
        self.configs.setdefault(rid, run)
        self.runs.setdefault(rid, training_part(config))
        self.evals.setdefault(ev, config["eval"])
        self.data.setdefault(data_id(config["data"]), config["data"])
        return rid, ev

    def check_against(self, shape) -> None:
        """Every distinct run against the base model's shape (mawt/training/preflight.py), before any job.
        A study's own variants first, so a mistake is named where it was written (the baselines derived
        from it fail the same way); each variant at its study's first seed (the seed changes no check)."""
        checked = set()
        for name, study in self.studies.items():
            first = {r.variant: r.run_id for r in self.study_runs[name] if r.seed == study.seeds[0]}
            for variant in sorted(study.variants, key=lambda v: v.split("_")[0] in BASELINES):
                rid = first[variant]
                if rid in checked:
                    continue
                checked.add(rid)
                check_variant(study, variant, self.configs[rid], shape)

    # ------------------------------------------------------------------ batches (mawt/studies/batches.py)

    def train_batches(self) -> dict[str, list[str]]:
        """train batch id -> its run ids; formed on first use, once every run is added."""
        if "train" not in self._batches:
            self._batches["train"] = train_batches(self.runs, self.seeds_per_job)
            self._batches["run"] = {r: b for b, runs in self._batches["train"].items() for r in runs}
        return self._batches["train"]

    def batch_of(self, run: str) -> str:
        """run id -> its train batch id."""
        self.train_batches()
        return self._batches["run"][run]

    def eval_members(self, run: str) -> list[str]:
        """The runs evaluated with `run` in one job: its train batch's, or the untuned base alone."""
        return [run] if is_base_run(run) else self.train_batches()[self.batch_of(run)]

    def eval_batches(self) -> dict[str, tuple[str, list[str]]]:
        """eval batch id -> (eval id, run ids): every train batch and every untuned base, under every eval config."""
        if "eval" not in self._batches:
            groups = [*self.train_batches().values(), *([base_run(d)] for d in self.data)]
            self._batches["eval"] = {eval_batch_id(ev, runs): (ev, runs) for runs in groups for ev in self.evals}
        return self._batches["eval"]

    def eval_batch_of(self, run: str, ev: str) -> str:
        """The eval batch that evaluates `run` under eval id `ev`."""
        return eval_batch_id(ev, self.eval_members(run))

    def train_priority(self, batch: str) -> int:
        return batch_priority([self.runs[r] for r in self.train_batches()[batch]])

    # ------------------------------------------------------------------ what a study reads

    def run_data(self, run: str) -> str:
        """The data id of a run (trained, or `base-<data id>`)."""
        return run.split("-", 1)[1] if is_base_run(run) else data_id(self.runs[run]["data"])

    def attention_run(self, study: str) -> str | None:
        """The run whose attention maps the report shows: the study's first MAWT variant (D > 1), first seed."""
        return next((r.run_id for r in self.study_runs[study] if is_mawt(self.runs[r.run_id].get("mawt"))), None)

    def study_data(self, study: str) -> list[str]:
        """The study's data ids, the study defaults' split first."""
        return list(dict.fromkeys(self.run_data(r.run_id) for r in self.study_runs[study]))

    def study_eval(self, study: str) -> str:
        """The eval id of the study's defaults (its plain run's): the untuned base rows use it."""
        return self.study_runs[study][0].eval_id

    def has_lmeval(self, run: StudyRun) -> bool:
        """lm-eval runs for every seed, or only for the setup's `lm_eval.seeds`, of the runs of its
        `lm_eval.studies` (a run shared with another study shows its scores there too)."""
        return (self._lmeval_seeds is None or run.seed in self._lmeval_seeds) and run.run_id in self._lmeval_runs

    def _bases(self, study: str) -> list[dict]:
        ev, out = self.study_eval(study), []
        for d in self.study_data(study):
            run = base_run(d)
            native = self.paths.eval_file(run, eval_id(self.native[ev]), files.HELDOUT) if ev in self.native else None
            out.append({"data": d, "heldout": self.paths.eval_file(run, ev, files.HELDOUT),
                        "lmeval": self.paths.eval_file(run, ev, files.LMEVAL),
                        "families": self.data[d].get("families"), "native_heldout": native})
        return out

    def study_entry(self, study: str) -> dict:
        """The study's runs.json (mawt/studies/runsfile.py)."""
        spec, p = self.studies[study], self.paths
        runs = [{"variant": r.variant, "seed": r.seed, "run_id": r.run_id, "eval_id": r.eval_id,
                 "dir": p.run_dir(r.run_id), "heldout": p.eval_file(r.run_id, r.eval_id, files.HELDOUT),
                 "lmeval": p.eval_file(r.run_id, r.eval_id, files.LMEVAL) if self.has_lmeval(r) else None,
                 "bench": p.benchmark("train", self.batch_of(r.run_id)),  # its batch's job: `bench_share` runs
                 "bench_share": len(self.train_batches()[self.batch_of(r.run_id)]),
                 "baseline": spec.baselines[r.variant], "data": self.run_data(r.run_id),
                 "axes": run_axes(self.configs[r.run_id])} for r in self.study_runs[study]]
        att = self.attention_run(study)
        return {"study": spec.name, "setup": self.setup["name"], "description": spec.description,
                "margin": spec.margin, "yaml": spec.text, "bases": self._bases(study), "runs": runs,
                "attention": p.run_file(att, files.ATTENTION) if att else None}

    def study_inputs(self, study: str) -> list[str]:
        """Every file the study's runs.json names: what `mawt table` reads."""
        entry = self.study_entry(study)
        out = sorted({self.paths.run_file(r["run_id"], files.RUN_JSON) for r in entry["runs"]})
        out += sorted({r["heldout"] for r in entry["runs"]}) + sorted({r["lmeval"] for r in entry["runs"] if r["lmeval"]})
        out += [entry["attention"]] if entry["attention"] else []
        for base in entry["bases"]:
            out += [base["heldout"], base["lmeval"], *([base["native_heldout"]] if base["native_heldout"] else [])]
        return out
