"""The Snakemake workflow: dry runs, lint, validation errors, a real smoke run, re-runs."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# The workflow's test configuration, shared with `.ci/run`'s lint (the catalog's `.test/` folder)
SMOKE_SETUP = yaml.safe_load((ROOT / ".test" / "smoke.yaml").read_text())
SMOKE_STUDY = yaml.safe_load((ROOT / ".test" / "ablations" / "tiny.yaml").read_text())


def snakemake(workdir: Path, *args: str, setup: str | Path = "micro", ablations: Path | None = None,
              timeout: int = 900, config: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    cmd = ["snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
           "--configfile", str(ROOT / "workflow" / "config.yaml"),
           "--config", f"setup={setup}", f"ablations={ablations or ROOT / 'ablations'}", *config, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


@pytest.fixture
def smoke(tmp_path):
    (tmp_path / "ablations").mkdir()
    (tmp_path / "ablations" / "tiny.yaml").write_text(yaml.safe_dump(SMOKE_STUDY))
    (tmp_path / "smoke.yaml").write_text(yaml.safe_dump(SMOKE_SETUP))
    return tmp_path


def assert_expected_jobs(counts: dict[str, int], setup: str) -> None:
    """The dry run's job counts for a shipped setup (`micro` or `paper`), derived by hand from its studies."""
    # Distinct run configs x seeds (3 for micro; paper.yaml's `seeds`, 11, from its power plan), identical runs of
    # different studies trained once:
    #   shared by every study: plain, gated, GRPO D=4 (token credit, rloo advantage);
    #   depths: D=2, D=8; mixers: softmax, gumbel, mean; policy: exact, token + grpo advantage;
    #   freezing: last:2, mawt only, all and their 3 plain counterparts;
    #   controls: half_steps, shuffled (its grpo variant is the shared GRPO D=4 run), planted and
    #     planted_shuffled (their plain counterpart is freezing's mawt-only plain run);
    #   paper also: placement: layer -2 and its plain counterpart; selector: hidden, both (its stats
    #   variant is the shared GRPO D=4 run)
    #   (micro leaves placement, selector and tasks out of its default studies: mawt/setups/micro.yaml).
    configs = {"micro": 3 + 2 + 3 + 2 + 6 + 4, "paper": 3 + 2 + 3 + 2 + 6 + 4 + 2 + 2}[setup]
    declared = yaml.safe_load((ROOT / "mawt" / "setups" / f"{setup}.yaml").read_text())
    seeds = len(declared["seeds"])  # the setup's own (micro 12, paper 11)
    splits = 1
    native = {"micro": 0, "paper": 1}[setup]  # paper.yaml: native_reference (the base thinking natively)
    per_job = declared.get("seeds_per_job", 1)  # the setup's seeds_per_job (mawt/studies/batches.py)
    batches = configs * -(-seeds // per_job)
    assert counts["run_config"] == counts["run_files"] == seeds * configs
    assert counts["train"] == batches  # a config's seeds, at most seeds_per_job of them, in one job
    # every trained run and the untuned base on each split, evaluated by batch (eval is not in the run id),
    # each with its own file; an eval batch reads its first run's eval config, lm-eval each run's own
    assert counts["eval_files"] == seeds * configs + splits + native
    assert counts["eval_heldout"] == batches + splits + native
    lm_own = {"micro": 0, "paper": 0}[setup]  # lm-eval's runs are each batch's first seed (seed 0) here
    assert counts["eval_config"] == batches + splits + native + lm_own
    # micro.yaml: lm_eval.seeds [0], lm_eval.studies [depths] (plain, gated, D=2, 4, 8); paper: every seed and run
    lm_runs = {"micro": 1 * 5, "paper": seeds * configs}[setup]
    assert counts["lm_eval"] == lm_runs + splits
    assert counts["prepare_data"] == counts["data_config"] == splits
    assert counts["study_table"] == {"micro": 5, "paper": 7}[setup] and counts["report"] == 1
    # the report's heatmaps: the first MAWT run of each study; depths' is D=2, every other study's first MAWT
    # run is the shared GRPO D=4 one
    assert counts["attention_example"] == 2
    assert "pretrain_micro" not in counts  # the micro base is the shipped asset


def test_dry_run_of_the_micro_setup_lists_the_expected_jobs(tmp_path):
    proc = snakemake(tmp_path, "-n", setup="micro")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_expected_jobs(job_counts(proc.stdout), "micro")
    assert not (tmp_path / "results").exists(), "a dry run writes nothing"


def test_every_variant_is_compared_with_plain_training_of_the_same_parameters():
    from mawt.studies.setup import load_setup
    from mawt.studies.study import load_studies, run_config

    setup = load_setup("micro")
    studies = load_studies(setup, ["freezing", "placement", "tasks", "depths"], ROOT / "ablations")
    for study in studies.values():
        assert {"plain", "gated"} <= set(study.variants)
        for variant, baseline in study.baselines.items():
            if baseline is None:
                assert variant.startswith("plain")
                continue
            mine, theirs = run_config(setup, study, variant, 0), run_config(setup, study, baseline, 0)
            assert theirs["mawt"]["depth"] == 1 and theirs["mawt"]["mixer"] == "fixed"
            assert theirs["mawt"].get("gate", "none") == "none"
            for key in ("trainable", "data"):
                assert mine[key] == theirs[key], (study.name, variant, key)
            assert mine["mawt"]["layers"] == theirs["mawt"]["layers"]
            assert mine["train"]["learning_rate"] == theirs["train"]["learning_rate"]
    freezing = studies["freezing"].baselines
    assert freezing["last"] == "plain" and freezing["last2"] == "plain_trainable-last-2"
    assert freezing["mawt_only"] == "plain_trainable-mawt"
    assert studies["placement"].baselines["patch_second_last"] == "plain_layers--2"
    assert freezing["all"] == "plain_learning_rate-0.001_trainable-all"
    assert studies["tasks"].baselines["grpo_later_ends"] == "plain_families-later_ends"
    assert studies["depths"].baselines["gated"] == "plain"
    gated = run_config(setup, studies["depths"], "gated", 0)
    assert gated["mawt"] == {**run_config(setup, studies["depths"], "plain", 0)["mawt"], "gate": "head"}


def test_a_study_cannot_take_a_baseline_name(smoke):
    study = {**SMOKE_STUDY, "variants": {"plain_big": {"train": {"steps": 3}}}}
    (smoke / "ablations" / "tiny.yaml").write_text(yaml.safe_dump(study))
    proc = snakemake(smoke, "-n", setup=smoke / "smoke.yaml", ablations=smoke / "ablations")
    assert proc.returncode != 0 and "['plain_big'] are reserved names" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_lint_is_clean(tmp_path):
    proc = snakemake(tmp_path, "--lint")
    assert proc.returncode == 0 and "Congratulations" in proc.stdout + proc.stderr


def test_slurm_profile_dry_run_of_the_paper_setup(tmp_path):
    """The paper setup as a cluster user runs it: every expected job, the GPU rules sized by the profile."""
    proc = snakemake(tmp_path, "-n", "--profile", str(ROOT / "workflow" / "profiles" / "slurm"), setup="paper")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_expected_jobs(job_counts(proc.stdout), "paper")
    assert not (tmp_path / "results").exists(), "a dry run writes nothing"
    # the trivial rules run locally, not as sbatch jobs; training and evaluation go to the cluster. (A dry
    # run prints every job as "rule X:", local or not, so the Snakefile's `localrules` block is read here.)
    block = (ROOT / "Snakefile").read_text().split("localrules:", 1)[1].split("\n\n", 1)[0]
    local = {name.strip(" ,") for name in block.split() if name.strip(" ,")}
    assert {"run_config", "eval_config", "data_config", "study_index", "study_table", "setup_text", "report",
            "current_report", "all", "pilot", "run_files", "eval_files"} == local
    assert not local & {"train", "eval_heldout", "lm_eval", "prepare_data", "attention_example"}
    # the GPU rules get the paper's size from the profile (a setup has no resources)
    for rule in ("train", "eval_heldout", "lm_eval"):
        resources = proc.stdout.split(f"rule {rule}:", 1)[1].split("resources: ", 1)[1].split("\n", 1)[0]
        assert {"gpu=1", "mem_mb=64000", "runtime=240", "slurm_partition=gpu"} <= set(resources.split(", ")), resources


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"variants": {"x": {"mawt": {"depht": 2}}}}, r"tiny.yaml: key variants.x.mawt: unknown key\(s\) \['depht'\]; allowed are \[.*'depth'"),
        ({"variants": {"x": {"mawt": {"mixer": "top1"}}}}, r"key variants.x: mawt.mixer='top1' is invalid: allowed values are softmax, grpo, gumbel, mean, fixed"),
        ({"variants": {"x": {"mawt": {"depth": 0}}}}, r"key variants.x: mawt.depth=0 is invalid: must be an integer >= 1"),
        ({"seeds": []}, r"key seeds: \[\] should be non-empty"),
        ({"seeds": "0"}, r"key seeds: '0' is not of type 'array'"),
        ({"variants": {"x": {"train": {"steps": "many"}}}}, r"key variants.x: train.steps='many' is invalid: must be an integer >= 1"),
        ({"variants": {"x": {"trainable": "first"}}}, r"key variants.x: trainable='first' is unknown; allowed are 'last', 'last:N'"),
        ({"variants": {"x": {"mawt": {"mixer": "fixed", "depth": 2, "fixed_index": 5}}}}, r"fixed_index=5 is invalid: must be an integer in 0..1"),
        ({"variants": {"../escape": {}}}, r"key variants: '../escape' does not match"),
        ({"variants": {"x": {"train": {"group_size": 1}}}}, r"group_size=1 is invalid for mixer grpo"),
    ],
)
def test_invalid_study_fails_before_any_job(smoke, edit, message):
    study = {**SMOKE_STUDY, **edit}
    (smoke / "ablations" / "tiny.yaml").write_text(yaml.safe_dump(study))
    proc = snakemake(smoke, "--cores", "1", setup=smoke / "smoke.yaml", ablations=smoke / "ablations")
    assert proc.returncode != 0
    assert re.search(message, proc.stderr), proc.stderr[-2000:]
    assert "Invalid ablation configuration" in proc.stderr and "Traceback" not in proc.stderr
    assert not (smoke / "results").exists(), "nothing is written"


@pytest.mark.slow
def test_smoke_study_runs_the_whole_dag_and_reruns_only_what_changed(smoke):
    args = dict(setup=smoke / "smoke.yaml", ablations=smoke / "ablations")
    proc = snakemake(smoke, "--cores", "2", **args)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = smoke / "results" / "smoke"
    runs = [d for d in (out / "runs").iterdir() if not d.name.startswith("base-")]
    assert len(runs) == 8  # the plain and gated baselines + 2 variants, seeds 0 and 1
    for d in runs:
        info = json.loads((d / "run.json").read_text())
        (ev,) = d.glob("eval-*")  # one eval config
        held = json.loads((ev / "heldout.json").read_text())
        assert info["seed"] == info["config"]["train"]["seed"] in (0, 1) and info["config"]["mawt"]["depth"] in (1, 2)
        assert "eval" not in info["config"]  # not part of the training run
        assert info["environment"]["cpu_capability"] and info["environment"]["cpu_model"]
        assert held["n"] == 6 and 0.0 <= held["exact_match"] <= 1.0 and held["eval"]["max_new_tokens"] == 24
        assert (ev / "lmeval.json").exists() == (info["seed"] == 0)  # smoke.yaml: lm_eval.seeds [0]
        if info["seed"] == 0:
            assert {"verbal_heldout", "verbal_choice"} <= set(json.loads((ev / "lmeval.json").read_text())["tasks"])
        assert (d / "model" / "model.safetensors").stat().st_size > 0
        # a run's own outputs are its batch job's files, linked (mawt/studies/batches.py)
        work = out / "work" / d.name
        assert (d / "run.json").samefile(work / "run.json") and (ev / "heldout.json").samefile(work / ev.name / "heldout.json")
    # seeds_per_job 2: each config's two seeds in one train job and one eval job
    manifests = sorted((out / "batches").glob("train-*.json"))
    assert len(manifests) == 4 and all(len(json.loads(m.read_text())["runs"]) == 2 for m in manifests)
    table = (out / "studies" / "tiny" / "table.csv").read_text().splitlines()
    assert table[0].startswith("variant,") and len(table) == 1 + 5  # header, base, plain, gated, 2 variants
    assert [line.split(",")[0] for line in table[1:]] == ["base (untuned)", "plain", "gated", "grpo2", "softmax2"]
    frame = pd.read_csv(out / "studies" / "tiny" / "table.csv").set_index("variant")
    worth = [f"worth_{m}_{p}" for m in ("loss", "em") for p in ("learned", "uniform", "best", "oracle")]
    assert frame.loc["grpo2", worth].notna().all()  # a hard choice in the last layer: what it is worth
    assert frame.loc[["plain", "softmax2"], worth].isna().all().all()
    plots = {p.name for p in (out / "studies" / "tiny" / "plots").iterdir()}
    assert {"comparison.png", "comparison.svg", "training_curves.png", "depth_usage.png", "attention.png"} <= plots
    report = (smoke / "results" / "report.html").read_text()
    assert 'id="study-tiny"' in report and report.count("<img") == len([p for p in plots if p.endswith(".png")])
    assert (out / "all_runs.parquet").exists() and (out / "all_runs.csv").exists()
    bench = smoke / "results" / "benchmarks" / "smoke"
    assert len(list((bench / "prepare_data").glob("*.tsv"))) == 1 and (bench / "pretrain_micro.tsv").exists()
    for rule, jobs in (("train", 4), ("eval_heldout", 5), ("lm_eval", 5)):  # batches; the base's eval alone
        assert len(list((bench / rule).glob("*.tsv"))) == jobs, rule
    assert next((bench / "train").glob("*.tsv")).read_text().startswith("s\th:m:s\tmax_rss")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from full_run import jobs_cpu_seconds  # Snakemake's own CPU share (benchmarks/full_run.py) reads these files

    assert jobs_cpu_seconds(bench) > 0

    own = snakemake(smoke, "--report", str(smoke / "snakemake_report.html"), **args)  # Snakemake's own report
    assert own.returncode == 0 and (smoke / "snakemake_report.html").stat().st_size > 0, own.stderr[-2000:]

    again = snakemake(smoke, "-n", **args)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr

    # resources are the profile's: how jobs run, not what they compute; other ones re-run nothing
    again = snakemake(smoke, "-n", "--set-threads", "train=2", "eval_heldout=2",
                      "--set-resources", "train:mem_mb=2000", "train:runtime=7", **args)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr, again.stdout[-2000:]

    # a MAWT-only knob: the variant's plain counterpart (plain-ized config) stays the same
    study = {**SMOKE_STUDY, "variants": {"grpo2": {}, "softmax2": {"mawt": {"mixer": "softmax", "tau": 0.5}}}}
    (smoke / "ablations" / "tiny.yaml").write_text(yaml.safe_dump(study))
    edited = snakemake(smoke, "-n", **args)
    assert edited.returncode == 0, edited.stderr[-3000:]
    counts = job_counts(edited.stdout)
    # softmax2's two seeds (new config -> new run ids) in one train job and one eval job, their own files
    # (linked), seed 0's lm-eval, the study's index and table; nothing else
    assert counts == {"run_config": 2, "train": 1, "run_files": 2, "eval_config": 1, "eval_heldout": 1,
                      "eval_files": 2, "lm_eval": 1, "study_index": 1, "study_table": 1, "report": 1,
                      "current_report": 1, "all": 1, "total": 15}, counts
    (smoke / "ablations" / "tiny.yaml").write_text(yaml.safe_dump(SMOKE_STUDY))

    # an eval-only edit re-runs evaluation (every run and the base), never training
    setup = {**SMOKE_SETUP, "run": {**SMOKE_SETUP["run"], "eval": {"max_new_tokens": 20}}}
    (smoke / "smoke.yaml").write_text(yaml.safe_dump(setup))
    edited = snakemake(smoke, "-n", **args)
    assert edited.returncode == 0, edited.stderr[-3000:]
    counts = job_counts(edited.stdout)
    assert not {"train", "run_config", "run_files", "prepare_data"} & set(counts), counts
    assert counts["eval_heldout"] == counts["eval_config"] == 5 and counts["lm_eval"] == 5  # 4 batches + the base
    assert counts["eval_files"] == 9

    # another setup after this one's run: its own results and report, scheduled (not "Nothing to be done")
    (smoke / "assets").symlink_to(ROOT / "assets")  # paper_standin's relative paths, as from the repo root
    other = snakemake(smoke, "-n", setup="paper_standin", ablations=smoke / "ablations", config=("studies=[tiny]",))
    assert other.returncode == 0, other.stderr[-3000:]
    counts = job_counts(other.stdout)
    assert counts["build_standin"] == 1 and counts["train"] == 8 and counts["current_report"] == 1  # seeds_per_job 1
    assert (smoke / "results" / "smoke" / "report.html").read_text() == report  # each setup's report stays


def test_the_default_profile_is_found_so_report_html_needs_no_cores(tmp_path):
    proc = snakemake(tmp_path, "-n", "results/report.html")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-2000:]
    assert "Using workflow specific profile" in out and "profiles/default" in out
    counts = job_counts(proc.stdout)
    # micro: 20 configs x 12 seeds, each config's seeds in one batch job (seeds_per_job 12)
    assert counts["report"] == 1 and counts["train"] == 20 and counts["run_files"] == 20 * 12 and counts["lm_eval"] == 5 + 1


def test_snakemakes_own_report_before_any_run_reports_the_workflow(tmp_path):
    """Outputs are flagged for Snakemake's report once made (common.smk: report_once_made): before a
    run, `--report` shows the workflow instead of failing on a flagged file that does not exist yet."""
    proc = snakemake(tmp_path, "--report", str(tmp_path / "own.html"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "own.html").stat().st_size > 0 and not (tmp_path / "results").exists()


STANDIN_STUDY = {"name": "standin", "seeds": [0], "variants": {"grpo2": {"mawt": {"depth": 2, "mixer": "grpo"}}}}


@pytest.mark.slow
def test_paper_path_runs_end_to_end_on_the_stand_in(tmp_path):
    """`--config setup=paper_standin`: the paper setup (bf16, GQA, R1 chat template and thinking, lm-eval
    path) on the 1.5B's attention geometry with 2 layers and random weights, built by the workflow."""
    (tmp_path / "ablations").mkdir()
    (tmp_path / "ablations" / "standin.yaml").write_text(yaml.safe_dump(STANDIN_STUDY))
    (tmp_path / "assets").symlink_to(ROOT / "assets")  # the setup's relative paths, as from the repo root
    # The shipped setup, with the parquet's first 308 of 360 rows: 8 held-out items instead of 60 (the bf16
    # 1536-wide MLP dominates a CPU job: evaluation cost scales with the held-out items). Nothing else differs.
    rows = pd.read_parquet(ROOT / "assets" / "paper_standin" / "puzzles.parquet").iloc[:308]
    rows.to_parquet(tmp_path / "puzzles308.parquet", index=False)
    (tmp_path / "standin308.yaml").write_text(yaml.safe_dump({
        "extends": "paper_standin", "data": {"source": str(tmp_path / "puzzles308.parquet")},
        "plan": {"heldout_items": 8}}))
    proc = snakemake(tmp_path, "--cores", "all", setup=tmp_path / "standin308.yaml", ablations=tmp_path / "ablations",
                     config=("studies=[standin]",))
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = tmp_path / "results" / "paper_standin"
    base = json.loads((out / "base" / "model" / "config.json").read_text())
    assert (base["hidden_size"], base["num_attention_heads"], base["num_key_value_heads"]) == (1536, 12, 2)
    assert base["num_hidden_layers"] == 2 and base["dtype"] == "bfloat16"

    table = pd.read_csv(out / "studies" / "standin" / "table.csv").set_index("variant")
    assert list(table.index) == ["base (untuned)", "base (untuned, native thinking)", "plain", "gated", "grpo2"]
    scores = [f"{m}{s}" for m in ("exact_match", "challenge_metric", "challenge_strict") for s in ("", "_low", "_high")]
    reasoning = ["closed_think_rate", "truncation_rate", "mean_output_tokens", "heldout_answer_loss"]
    lm = [f"lm_eval:verbal_heldout:{m}" for m in ("exact_match", "challenge_metric", "challenge_strict")]
    lm += [f"lm_eval:verbal_choice:{m}" for m in ("acc", "acc_norm")]
    trained = ["trainable_parameters", "train_seconds", "job_seconds", "peak_mem_mb"]
    diffs = [f"{k}_{m}{s}" for m in ("exact_match", "challenge_metric", "challenge_strict")
             for k, s in (("diff", ""), ("diff", "_low"), ("diff", "_high"), ("diff", "_p"), ("diff", "_p_holm"),
                          ("mde", ""))]
    assert set(scores + reasoning + lm + trained + diffs) <= set(table.columns)
    finite = lambda rows, cols: np.isfinite(table.loc[rows, cols].to_numpy(dtype=float)).all()  # noqa: E731
    assert finite(table.index, scores + reasoning)
    assert finite(["base (untuned)", "plain", "gated", "grpo2"], lm)  # lm-eval: not for the native reference
    assert finite(["plain", "gated", "grpo2"], trained)
    # a comparison at the floor (both sides one constant on every item: a random stand-in's 0s) has no p or MDE
    for metric in ("exact_match", "challenge_metric", "challenge_strict"):
        for row in ("gated", "grpo2"):
            cols = [c for c in diffs if f"_{metric}" in c]
            if table.loc[row, f"verdict_{metric}"] == "floor":
                assert table.loc[row, f"diff_{metric}"] == 0 and np.isnan(table.loc[row, f"mde_{metric}"])
            else:
                assert finite([row], cols), (row, metric)
    assert "nan" not in (out / "studies" / "standin" / "table.md").read_text().lower()
    # the reasoning quantities: a random model never closes a native thought within 24 tokens
    assert table.loc["base (untuned, native thinking)", "mean_output_tokens"] <= 24
    assert table.loc["plain", "closed_think_rate"] > table.loc["base (untuned, native thinking)", "closed_think_rate"]

    (run,) = [d for d in (out / "runs").iterdir()  # the one MAWT run (grpo2, seed 0)
              if not d.name.startswith("base-") and json.loads((d / "run.json").read_text())["config"]["mawt"]["depth"] == 2]
    info = json.loads((run / "run.json").read_text())
    assert info["config"]["train"]["dtype"] == "bfloat16" and info["trainable_dtype"] == "float32"
    (ev,) = run.glob("eval-*")
    held = json.loads((ev / "heldout.json").read_text())
    assert held["think_open"] is False and held["eval"]["thinking"] == "empty" and held["n"] == 8  # 308 rows - 300 trained (n_heldout: null, as paper)
    assert held["items"][0]["answer"] and "ID" in held["items"][0]
    assert (tmp_path / "results" / "report.html").stat().st_size > 0


def test_every_shipped_setup_study_and_example_loads():
    from mawt.training.runconfig import load
    from mawt.studies.setup import load_setup
    from mawt.studies.study import load_studies

    setups = sorted(p.stem for p in (ROOT / "mawt" / "setups").glob("*.yaml"))
    assert {"micro", "paper", "paper_standin"} <= set(setups)
    studies = sorted(p.stem for p in (ROOT / "ablations").glob("*.yaml"))
    for name in setups:
        setup = load_setup(name)
        assert set(load_studies(setup, None, ROOT / "ablations")) == set(studies), name
    examples = sorted((ROOT / "examples").glob("*.yaml"))
    assert examples and all(load(p).train.steps >= 1 for p in examples)
