"""The pilot: the variance components measured before the studies' GPU hours are spent.

`mawt plan` projects each study's MDE from variance components of a paired difference. Before any
study has run they are the setup's `plan:` assumptions, and the assumed seed SD decides the seeds
(the paper setup assumes 0.02 for one run; published 1.5B reasoning studies measure 0.05-0.15,
arXiv 2504.07086). The pilot (`snakemake pilot`, workflow/rules/pilot.smk) trains and evaluates one
MAWT variant of a study and its baseline at the study's first N seeds on the full held-out set,
resolved by `mawt.studies.study` exactly as the study resolves them: the same run ids, so the
study later reuses these runs instead of training them twice. `measure` reads their heldout.json
files and computes, per score, the paired difference with `mawt.statistics.paired.paired_difference`
(the function the study tables use, so the plan compares like with like) and the baseline's rate;
`mawt plan --source pilot` reads the result, `results/<setup>/pilot/pilot.json`.

The setup's `pilot:` section names the study, the variant and the seeds (PILOT_DEFAULTS where absent).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mawt.common import atomic
from mawt.common.layout import HELDOUT, Layout
from mawt.evaluation.scoring import SCORES
from mawt.statistics.intervals import components
from mawt.statistics.paired import paired_difference
from mawt.studies.index import check_variant
from mawt.studies.setup import StudyError
from mawt.training.runconfig import RunConfig
from mawt.studies.study import ROOT, StudySpec, data_id, eval_id, load_studies, resolve_run, run_id

# the D=4 GRPO run (token credit), the same run as mixers' `mixer-grpo`: every study shares it
PILOT_DEFAULTS = {"study": "depths", "variant": "depth-4", "seeds": 3}
PILOT_JSON, PILOT_MD = "pilot.json", "pilot.md"
METRIC = "exact_match"  # the score the plan projects (the studies' verdicts are on it)


def pilot_file(layout: Layout, name: str = PILOT_JSON) -> str:
    """results/<setup>/pilot/<name>: next to the studies, not in one (the pilot is no study)."""
    return f"{layout.out}/pilot/{name}"


def config_arg(setup: dict) -> str:
    """What `--config setup=...` takes for this setup: its name if shipped, else its path."""
    from mawt.studies.setup import setup_path

    return setup["name"] if setup_path(setup["name"]) == Path(setup.get("path", "")) else setup["path"]


def pilot_command(setup: dict) -> str:
    return f"snakemake pilot --config setup={config_arg(setup)}"


@dataclass(frozen=True)
class PilotRun:
    """One run of the pilot: which side of the comparison, its study variant and seed, its ids."""

    side: str  # "variant" | "baseline"
    variant: str
    seed: int
    run_id: str
    eval_id: str
    run: RunConfig = field(repr=False, compare=False)  # the resolved run (with `eval`)

    @property
    def config(self) -> dict:
        return self.run.to_dict()

    @property
    def data_id(self) -> str:
        return data_id(self.config["data"])


@dataclass(frozen=True)
class Pilot:
    """The pilot's comparison: a study's variant against its baseline, at the study's first seeds."""

    study: StudySpec
    variant: str
    baseline: str
    seeds: list[int]
    runs: list[PilotRun]

    def describe(self) -> dict:
        return {"study": self.study.name, "variant": self.variant, "baseline": self.baseline, "seeds": self.seeds}


def pilot_settings(setup: dict) -> dict:
    return {**PILOT_DEFAULTS, **(setup.get("pilot") or {})}


def resolve_pilot(setup: dict, studies: dict | None = None, folder=None, base_model: str | None = None,
                  shape=None) -> Pilot:
    """The pilot's runs, resolved by the study's own functions (so their ids are the study's).

    `studies`: studies already loaded (the workflow's); the pilot's study is loaded from `folder`
    otherwise. `shape`: the base model's shape, to check the runs against before any job.
    Bad settings raise StudyError naming the setup file and the `pilot.` key."""
    cfg = pilot_settings(setup)
    where = f"{setup.get('path', setup['name'])}: key pilot"
    name, variant, n = cfg["study"], cfg["variant"], int(cfg["seeds"])
    study = (studies or {}).get(name)
    if study is None:
        folder = Path(folder or ROOT / "ablations")
        if not (folder / f"{name}.yaml").is_file():
            raise StudyError(f"{where}.study: no study file {name}.yaml in {folder}; allowed are "
                             f"{sorted(p.stem for p in folder.glob('*.yaml'))}")
        study = load_studies(setup, [name], folder)[name]  # its own mistakes name its file
    if variant not in study.variants:
        raise StudyError(f"{where}.variant: {variant!r} is not a variant of study {name!r} ({study.path}); "
                         f"allowed are {sorted(v for v, b in study.baselines.items() if b)}")
    baseline = study.baselines.get(variant)
    if not baseline:
        raise StudyError(f"{where}.variant: {variant!r} is a baseline of study {name!r}, compared with nothing; "
                         f"allowed are {sorted(v for v, b in study.baselines.items() if b)}")
    if n < 2 or n > len(study.seeds):
        raise StudyError(f"{where}.seeds: {n}, but the pilot's runs are the first seeds of study {name!r}, which "
                         f"has {len(study.seeds)} ({study.seeds}); allowed are 2 to {len(study.seeds)}")
    seeds = list(study.seeds[:n])
    runs = []
    for side, v in (("variant", variant), ("baseline", baseline)):
        for seed in seeds:
            run = resolve_run(setup, study, v, seed, base_model=base_model)
            if shape is not None and seed == seeds[0]:
                check_variant(study, v, run, shape)
            config = run.to_dict()
            runs.append(PilotRun(side, v, seed, run_id(config), eval_id(config["eval"]), run))
    return Pilot(study, variant, baseline, seeds, runs)


def pilot_heldout(pilot: Pilot | None, error: str | None, layout: Layout) -> list[str]:
    """The pilot's heldout.json files in `pilot.runs` order (the workflow's `pilot` rule's input); the
    pilot's configuration error where it did not resolve (raised only when the pilot is wanted)."""
    if pilot is None:
        raise ValueError(error)
    return [layout.eval_file(r.run_id, r.eval_id, HELDOUT) for r in pilot.runs]


def _clean(value):
    """NaN -> None: pilot.json is strict JSON."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _matrices(pilot: Pilot, heldout: list) -> tuple[dict, list[str]]:
    """{side: {score: (seeds x items)}} in seed order, and the items' challenges; refuses mismatched items."""
    rows: dict = {"variant": {}, "baseline": {}}
    challenges = None
    for run, path in zip(pilot.runs, heldout, strict=True):
        items = json.loads(Path(path).read_text())["items"]
        mine = [i["challenge"] for i in items]
        if challenges is None:
            challenges, first = mine, path
        elif mine != challenges:
            raise ValueError(f"{path}: its held-out items differ from those of {first}; the pilot pairs by item "
                             "(re-run their evaluation)")
        rows[run.side][run.seed] = {m: [float(i[m]) for i in items] for m in SCORES}
    out = {side: {m: np.array([by_seed[s][m] for s in pilot.seeds]) for m in SCORES} for side, by_seed in rows.items()}
    return out, challenges


def measure(pilot: Pilot, heldout: list) -> dict:
    """The pilot's measurement from its runs' heldout.json files (in `pilot.runs` order)."""
    mats, challenges = _matrices(pilot, heldout)
    scores = {}
    for m in SCORES:
        var, base = mats["variant"][m], mats["baseline"][m]
        diff = paired_difference(var, base)
        binary = bool(np.isin(base, (0.0, 1.0)).all())  # the rate the MDE's 0/1 scaling reads (as the tables)
        scores[m] = {
            "variant_mean": float(var.mean()), "baseline_mean": float(base.mean()),
            "base_rate": float(base.mean()) if binary else None,
            "difference": {k: _clean(float(getattr(diff, k))) for k in ("mean", "low", "high", "se", "df", "p")},
            "components": {k: _clean(v) for k, v in diff.components.to_dict().items()},
            # one run's own seed variance (the baseline's), the quantity `plan.seed_sd` assumes
            "baseline_seed_var": components(base).seed,
        }
    return {**pilot.describe(), "metric": METRIC, "items": len(challenges), "scores": scores,
            "runs": [{"side": r.side, "variant": r.variant, "seed": r.seed, "run_id": r.run_id, "eval_id": r.eval_id,
                      "heldout": str(p)} for r, p in zip(pilot.runs, heldout, strict=True)]}


def render(result: dict, setup: dict) -> str:
    """pilot.md: what was compared, and per score the difference and its components."""
    lines = [f"# Pilot: setup {setup['name']!r}", "",
             f"`{result['variant']}` of study `{result['study']}` against its baseline `{result['baseline']}`, "
             f"seeds {', '.join(map(str, result['seeds']))} x {result['items']} held-out items, paired by seed and "
             "item (mawt.statistics.paired, as the study tables). seed SD: of the difference's seed effect, "
             "sqrt(seed var); baseline seed SD: one baseline run's, what the setup's `plan.seed_sd` assumes.", "",
             "| score | baseline | variant | difference [95% CI] | seed var | item var | cell var | seed SD "
             "| baseline seed SD |", "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for m, s in result["scores"].items():
        d, c = s["difference"], s["components"]
        ci = "" if d["low"] is None else f" [{d['low']:+.3f}, {d['high']:+.3f}]"
        lines.append(f"| {m} | {s['baseline_mean']:.3f} | {s['variant_mean']:.3f} | {d['mean']:+.3f}{ci} "
                     f"| {c['var_seed']:.2e} | {c['var_item']:.2e} | {c['var_cell']:.3f} "
                     f"| {math.sqrt(c['var_seed']):.3f} "
                     f"| {math.sqrt(s['baseline_seed_var']):.3f} |")
    lines += ["", f"Next: `python -m mawt plan --setup {config_arg(setup)} --source pilot` (docs/paper.md)."]
    return "\n".join(lines) + "\n"


def write_pilot(pilot: Pilot, setup: dict, heldout: list, out_json, out_md) -> dict:
    """pilot.json and pilot.md, each written whole or not at all."""
    result = {"setup": setup["name"], **measure(pilot, heldout)}
    atomic.write_json(out_json, result)
    atomic.write_text(out_md, render(result, setup))
    return result


def read_pilot(setup: dict, root: str = "results") -> tuple[dict, Path]:
    """The pilot's pilot.json; a ValueError naming the file and the command that makes it when it is missing."""
    path = Path(pilot_file(Layout(setup["name"], root)))
    if not path.is_file():
        raise ValueError(f"no pilot of setup {setup['name']!r}: {path} is missing; run `{pilot_command(setup)}` "
                         "first (or --source auto / assumed)")
    try:
        result = json.loads(path.read_text())
        result["scores"][METRIC]["components"]["var_seed"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a pilot result ({type(err).__name__}: {err}); "
                         f"re-run `{pilot_command(setup)}`") from None
    return result, path
