"""The pilot (`snakemake pilot`, mawt/studies/pilot.py) and the plan that reads it (`mawt plan --source pilot`).

The variance components are recomputed here by hand (a two-way ANOVA of the seeds x items matrix of
differences, in plain Python), never by the package's functions, so a wrong formula or a wrong pairing
shows as a mismatch.
"""

import json
import math
import random
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mawt.evaluation.scoring import SCORES
from mawt.common.layout import Layout
from mawt.studies.pilot import PILOT_DEFAULTS, measure, pilot_file, resolve_pilot, write_pilot
from mawt.studies.setup import StudyError, load_setup
from mawt.studies.study import load_studies, run_config, run_id

ROOT = Path(__file__).resolve().parents[1]


def anova(d: list[list[float]]) -> dict:
    """Seed, item and cell variance of a seeds x items matrix (crossed random effects, no replication):
    E[MS_seed] = s_e^2 + N s_u^2, E[MS_item] = s_e^2 + S s_v^2, E[MS_res] = s_e^2, negative estimates at 0."""
    S, N = len(d), len(d[0])
    grand = sum(map(sum, d)) / (S * N)
    rows = [sum(r) / N for r in d]
    cols = [sum(d[s][i] for s in range(S)) / S for i in range(N)]
    ms_seed = N * sum((r - grand) ** 2 for r in rows) / (S - 1)
    ms_item = S * sum((c - grand) ** 2 for c in cols) / (N - 1)
    ms_res = sum((d[s][i] - rows[s] - cols[i] + grand) ** 2 for s in range(S) for i in range(N)) / ((S - 1) * (N - 1))
    return {"seed": max(0.0, (ms_seed - ms_res) / N), "item": max(0.0, (ms_item - ms_res) / S), "cell": ms_res}


def by_hand(runs: list[dict]) -> dict:
    """The pilot's exact-match components and baseline rate from its heldout.json files, by hand."""
    scores = {}
    for run in runs:
        items = json.loads(Path(run["heldout"]).read_text())["items"]
        scores[(run["side"], run["seed"])] = [float(i["exact_match"]) for i in items]
    seeds = sorted({s for _, s in scores})
    diff = [[v - b for v, b in zip(scores[("variant", s)], scores[("baseline", s)])] for s in seeds]
    base = [x for s in seeds for x in scores[("baseline", s)]]
    return {**anova(diff), "rate": sum(base) / len(base)}


def write_heldout(path: Path, values: list[float], challenges: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    items = [{"challenge": c, **{m: v for m in SCORES}} for c, v in zip(challenges, values)]
    path.write_text(json.dumps({"items": items}))


def plan_rows(stdout: str) -> dict[str, dict[str, str]]:
    """The plan's Markdown table: study -> column -> cell."""
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return {row[0]: dict(zip(cells[0], row)) for row in cells[2:]}


@pytest.mark.unit
def test_the_pilots_runs_are_runs_of_the_setups_studies():
    """A pilot run is one its study trains (the same run id), so the study reuses it: paper's pilot is the
    depths study's; paper_standin runs only mixers, whose mixer-grpo and plain are the same runs."""
    for name in ("paper", "paper_standin"):
        setup = load_setup(name)
        studies = load_studies(setup, setup.get("studies"), ROOT / "ablations")
        pilot = resolve_pilot(setup, None, ROOT / "ablations")
        assert pilot.describe() == {"study": "depths", "variant": "depth-4", "baseline": "plain", "seeds": [0, 1, 2]}
        ids = {run_id(run_config(setup, s, v, seed)) for s in studies.values() for v in s.variants for seed in s.seeds}
        assert {r.run_id for r in pilot.runs} <= ids and len(pilot.runs) == 6, name


@pytest.mark.unit
@pytest.mark.parametrize("pilot, message", [
    ({"variant": "depth-3"}, r"key pilot\.variant: 'depth-3' is not a variant of study 'depths'.*allowed are \["),
    ({"variant": "plain"}, r"key pilot\.variant: 'plain' is a baseline of study 'depths', compared with nothing"),
    ({"seeds": 12}, r"key pilot\.seeds: 12, but the pilot's runs are the first seeds of study 'depths', which has 11"),
    ({"study": "nope"}, r"key pilot\.study: no study file nope\.yaml in .*ablations; allowed are \["),
], ids=["unknown variant", "a baseline", "more seeds than the study", "no such study"])
def test_a_bad_pilot_section_is_refused_in_one_line_naming_the_key(tmp_path, pilot, message):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"extends": "paper", "pilot": pilot}))
    with pytest.raises(StudyError, match=message) as err:
        resolve_pilot(load_setup(str(path)), None, ROOT / "ablations")
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.unit
def test_the_schema_states_the_codes_pilot_defaults():
    schema = yaml.safe_load((ROOT / "mawt" / "schemas" / "setup.schema.yaml").read_text())
    props = schema["properties"]["pilot"]["properties"]
    assert {k: v["default"] for k, v in props.items()} == PILOT_DEFAULTS


@pytest.mark.unit
def test_measure_gives_the_two_way_anova_of_the_paired_difference(tmp_path, cli):
    """Made-up heldout.json files with seed, item and cell effects: the pilot's numbers are the hand ANOVA's,
    and the plan reads them; files whose items differ are refused, naming the file."""
    setup = load_setup("paper_standin")
    pilot = resolve_pilot(setup, None, ROOT / "ablations")
    rng = random.Random(3)
    challenges = [f"puzzle {i}" for i in range(7)]
    runs = []
    for r in pilot.runs:
        p = 0.2 + 0.15 * pilot.seeds.index(r.seed) * (r.side == "variant")
        path = tmp_path / r.side / f"{r.seed}.json"
        write_heldout(path, [float(rng.random() < p + 0.05 * i) for i in range(7)], challenges)
        runs.append({"side": r.side, "seed": r.seed, "heldout": str(path)})
    result = measure(pilot, [x["heldout"] for x in runs])
    mine, c = by_hand(runs), result["scores"]["exact_match"]["components"]
    assert mine["seed"] > 0 and mine["item"] > 0 and mine["cell"] > 0  # the case is not degenerate
    assert (c["var_seed"], c["var_item"], c["var_cell"]) == pytest.approx((mine["seed"], mine["item"], mine["cell"]))
    assert result["scores"]["exact_match"]["base_rate"] == pytest.approx(mine["rate"])
    assert (result["items"], result["seeds"], c["seeds"]) == (7, [0, 1, 2], 3)
    # on disk, the plan reads it: --source auto too (no study has finished), never --source assumed
    results = tmp_path / "results"
    write_pilot(pilot, setup, [x["heldout"] for x in runs], pilot_file(Layout("paper_standin", str(results))),
                pilot_file(Layout("paper_standin", str(results)), "pilot.md"))
    for source, origin in (("auto", "the pilot (3 seeds x 7 items)"), ("assumed", "the setup's plan: assumptions")):
        proc = cli("plan", "--setup", "paper_standin", "--source", source, "--results", results,
                   "--ablations", ROOT / "ablations")
        assert proc.returncode == 0, proc.stderr
        assert plan_rows(proc.stdout)["mixers"]["components from"] == origin
        shown = plan_rows(proc.stdout)["mixers"]["seed var"]
        assert shown == (f"{mine['seed']:.2e}" if source == "auto" else "8.00e-04")
    write_heldout(Path(runs[4]["heldout"]), [0.0] * 7, challenges[::-1])
    with pytest.raises(ValueError, match=rf"{runs[4]['heldout']}: its held-out items differ from those of "):
        measure(pilot, [x["heldout"] for x in runs])


@pytest.mark.unit
def test_plan_from_the_pilot_is_refused_in_one_line_when_the_pilot_has_not_run(tmp_path, cli):
    proc = cli("plan", "--setup", "paper_standin", "--source", "pilot", "--results", tmp_path / "results",
               "--ablations", ROOT / "ablations")
    assert proc.returncode == 2 and proc.stdout == ""
    missing = tmp_path / "results" / "paper_standin" / "pilot" / "pilot.json"
    assert proc.stderr.strip().splitlines() == [
        f"error: no pilot of setup 'paper_standin': {missing} is missing; run "
        "`snakemake pilot --config setup=paper_standin` first (or --source auto / assumed)"]
    # without --source pilot the plan says that its components are assumed, and what measures them
    proc = cli("plan", "--setup", "paper", "--results", tmp_path / "results", "--ablations", ROOT / "ablations")
    assert proc.returncode == 0, proc.stderr
    assert {r["components from"] for r in plan_rows(proc.stdout).values()} == {"the setup's plan: assumptions"}
    assert "`snakemake pilot --config setup=paper` measures them (6 trainings and 6 held-out evaluations" \
        in proc.stdout


def snakemake(workdir: Path, *args: str, setup: Path) -> subprocess.CompletedProcess:
    cmd = ["snakemake", *args, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--configfile",
           str(ROOT / "workflow" / "config.yaml"), "--config", f"setup={setup}", f"ablations={ROOT / 'ablations'}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


@pytest.mark.workflow
@pytest.mark.slow
def test_the_pilot_on_the_stand_in_feeds_the_plan(tmp_path, cli):
    """`snakemake pilot` on paper_standin (smallest: a 1-layer stand-in, 1 optimiser step, 5 held-out items,
    8 new tokens; still 3 seeds x 2 runs), then `mawt plan --source pilot`: its table shows what the pilot's
    heldout.json files give by hand. A random stand-in answers nothing right (every difference 0), so the
    files are then given scores with seed, item and cell effects (a model that sometimes answers), the pilot
    re-runs alone, and the plan must follow. The studies' dry run then trains none of the pilot's runs again."""
    (tmp_path / "assets").symlink_to(ROOT / "assets")  # the setup's relative paths, as from the repo root
    rows = pd.read_parquet(ROOT / "assets" / "paper_standin" / "puzzles.parquet").iloc[:305]
    rows.to_parquet(tmp_path / "puzzles305.parquet", index=False)  # 300 trained on, 5 held out
    setup = tmp_path / "standin_pilot.yaml"
    setup.write_text(yaml.safe_dump({
        "extends": "paper_standin", "data": {"source": str(tmp_path / "puzzles305.parquet")},
        "standin": {"num_layers": 1},
        "run": {"train": {"steps": 1, "save_steps": 0, "batch_size": 2}, "eval": {"max_new_tokens": 8}}}))
    proc = snakemake(tmp_path, "pilot", "--cores", "all", setup=setup)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = tmp_path / "results" / "paper_standin" / "pilot"
    result = json.loads((out / "pilot.json").read_text())
    assert [result[k] for k in ("study", "variant", "baseline", "items")] == ["depths", "depth-4", "plain", 5]
    runs = [{**r, "heldout": tmp_path / r["heldout"]} for r in result["runs"]]  # relative to Snakemake's -d
    assert [(r["side"], r["seed"]) for r in runs] == [(s, i) for s in ("variant", "baseline") for i in (0, 1, 2)]
    mine, c = by_hand(runs), result["scores"]["exact_match"]["components"]
    assert (c["var_seed"], c["var_item"], c["var_cell"]) == pytest.approx((mine["seed"], mine["item"], mine["cell"]))

    rng = random.Random(2)  # a draw with all three components > 0 (asserted below)
    for r in runs:
        held = json.loads(r["heldout"].read_text())
        bias = 0.3 * r["seed"] if r["side"] == "variant" else 0.0  # a seed effect in the difference
        for i, item in enumerate(held["items"]):
            item["exact_match"] = float(rng.random() < 0.15 + 0.15 * i + bias)
        r["heldout"].write_text(json.dumps(held))
    again = snakemake(tmp_path, "pilot", "--cores", "1", setup=setup)
    assert again.returncode == 0, again.stderr[-4000:]
    stats = (again.stdout + again.stderr).split("Job stats:", 1)[1].split("\n\n", 1)[0]
    assert dict(re.findall(r"^(\w+)\s+(\d+)$", stats, flags=re.M)) == {"pilot": "1", "total": "1"}  # nothing else
    mine = by_hand(runs)
    assert mine["seed"] > 0 and mine["item"] > 0 and mine["cell"] > 0
    # the studies reuse the pilot's runs: the stand-in's mixers study (6 variants x 3 seeds) trains only 12 more
    studies = snakemake(tmp_path, "-n", setup=setup)
    assert studies.returncode == 0, studies.stderr[-4000:]
    trains = re.findall(r"^\s+output: results/paper_standin/runs/(\w+)/model/model\.safetensors", studies.stdout, re.M)
    assert len(trains) == 12 and not set(trains) & {r["run_id"] for r in runs}

    proc = cli("plan", "--setup", "paper_standin", "--source", "pilot", "--results", tmp_path / "results",
               "--ablations", ROOT / "ablations")
    assert proc.returncode == 0, proc.stderr
    (row,) = plan_rows(proc.stdout).values()  # paper_standin's one study, mixers
    assert row["study"] == "mixers" and row["components from"] == "the pilot (3 seeds x 5 items)"
    assert row["seed SD assumed"] == f"{math.sqrt(2 * 0.02**2):.3f}"  # paper's plan.seed_sd, for a difference
    assert row["seed SD measured"] == f"{math.sqrt(mine['seed']):.3f}"
    assert (row["seed var"], row["item var"], row["cell var"]) == (
        f"{mine['seed']:.2e}", f"{mine['item']:.2e}", f"{mine['cell']:.3f}")
    assert row["held-out items"] == "60" and row["seeds"] == "3"  # projected to the shipped stand-in's design
    assert f"Baseline exact match: {mine['rate']:.3f} used, 0.100 assumed." in proc.stdout
    assert "Measured by the pilot (" in proc.stdout and row["seeds for target MDE"]
