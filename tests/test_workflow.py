"""The Snakemake workflow: dry runs, lint, validation errors, a real smoke run, re-runs."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SMOKE_SETUP = {
    "name": "smoke",
    "base_model": "pretrain",
    "pretrain": {"layers": 2, "hidden": 64, "heads": 4, "kv_heads": 2, "intermediate": 128, "rows": 400,
                 "steps": 20, "batch_size": 32, "difficulty": 1},
    "data": {"source": "synthetic", "families": ["shift_two"], "synthetic_rows": 40, "n_train": 24,
             "n_heldout": 6, "difficulty": 1},
    "run": {"trainable": "last", "train": {"steps": 2, "batch_size": 8, "save_steps": 0, "device": "cpu",
                                           "logging_steps": 1}},
    "lm_eval": {"tasks": ["verbal_heldout"], "limit": None},
    "resources": {"threads": 1, "mem_mb": 1000, "runtime": 5, "gpus": 0},
}
SMOKE_STUDY = {
    "name": "tiny",
    "seeds": [0, 1],
    "defaults": {"mawt": {"depth": 2, "mixer": "grpo"}},
    "variants": {"grpo2": {}, "softmax2": {"mawt": {"mixer": "softmax"}}},
}


def snakemake(workdir: Path, *args: str, setup: str | Path = "micro", ablations: Path | None = None,
              timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = ["snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
           "--configfile", str(ROOT / "workflow" / "config.yaml"),
           "--config", f"setup={setup}", f"ablations={ablations or ROOT / 'ablations'}", *args]
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


@pytest.mark.parametrize("setup", ["micro", "paper"])
def test_dry_run_lists_the_expected_jobs(tmp_path, setup):
    proc = snakemake(tmp_path, "-n", setup=setup)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout)
    # Distinct run configs x 3 seeds, identical runs of different studies trained once:
    #   shared by every study: plain, gated, GRPO D=4 (token credit, grpo advantage);
    #   depths: D=2, D=8; mixing: softmax, gumbel, mean; policy: sequence, exact, token + rloo;
    #   paper: freezing adds last:2, mawt only, all, layer -2 and their 4 plain counterparts
    #   (micro leaves freezing and tasks out of its default studies: workflow/setups/micro.yaml).
    configs = {"micro": 3 + 2 + 3 + 3, "paper": 3 + 2 + 3 + 3 + 8}[setup]
    splits = 1
    assert counts["train"] == counts["run_config"] == 3 * configs
    assert counts["eval_heldout"] == splits  # the untuned base on each split (runs evaluate in their train job)
    lm_seeds = {"micro": 1, "paper": 3}[setup]  # micro.yaml: lm_eval.seeds [0]
    assert counts["lm_eval"] == lm_seeds * configs + splits
    assert counts["prepare_data"] == counts["data_config"] == splits
    assert counts["study_table"] == {"micro": 3, "paper": 4}[setup] and counts["report"] == 1
    # the report's heatmaps: the first MAWT run of each study; mixing's and freezing's are one run
    assert counts["attention_example"] == 3
    assert "pretrain_micro" not in counts  # the micro base is the shipped asset
    assert not (tmp_path / "results").exists(), "a dry run writes nothing"


def test_every_variant_is_compared_with_plain_training_of_the_same_parameters():
    from mawt.workflow import load_setup, load_studies, run_config

    setup = load_setup("micro")
    studies = load_studies(setup, ["freezing", "tasks", "depths"], ROOT / "ablations")
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
    assert freezing["mawt_only"] == "plain_trainable-mawt" and freezing["patch_second_last"] == "plain_layers--2"
    assert freezing["all"] == "plain_learning_rate-0.001_trainable-all"
    assert studies["tasks"].baselines["grpo_later_letter"] == "plain_families-later_letter"
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


def test_slurm_profile_dry_run(tmp_path):
    proc = snakemake(tmp_path, "-n", "--profile", str(ROOT / "workflow" / "profiles" / "slurm"), setup="paper")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert job_counts(proc.stdout)["train"] == 3 * (3 + 2 + 3 + 3 + 8)


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"variants": {"x": {"mawt": {"depht": 2}}}}, r"tiny.yaml: key variants.x.mawt: Additional properties are not allowed \('depht' was unexpected\)"),
        ({"variants": {"x": {"mawt": {"mixer": "top1"}}}}, r"key variants.x.mawt.mixer: 'top1' is not one of \['softmax', 'grpo', 'gumbel', 'mean', 'fixed'\]"),
        ({"variants": {"x": {"mawt": {"depth": 0}}}}, r"key variants.x.mawt.depth: 0 is less than the minimum of 1"),
        ({"seeds": []}, r"key seeds: \[\] should be non-empty"),
        ({"seeds": "0"}, r"key seeds: '0' is not of type 'array'"),
        ({"variants": {"x": {"train": {"steps": "many"}}}}, r"key variants.x.train.steps: 'many' is not of type 'integer'"),
        ({"variants": {"x": {"trainable": "first"}}}, r"key variants.x.trainable: 'first' does not match"),
        ({"variants": {"x": {"mawt": {"mixer": "fixed", "depth": 2, "fixed_index": 5}}}}, r"fixed_index=5 is invalid: must be in 0..1"),
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


def test_smoke_study_runs_the_whole_dag_and_reruns_only_what_changed(smoke):
    args = dict(setup=smoke / "smoke.yaml", ablations=smoke / "ablations")
    proc = snakemake(smoke, "--cores", "2", **args)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = smoke / "results" / "smoke"
    runs = [d for d in (out / "runs").iterdir() if not d.name.startswith("base-")]
    assert len(runs) == 8  # (the plain and gated baselines + 2 variants) x 2 seeds
    for d in runs:
        info = json.loads((d / "run.json").read_text())
        held = json.loads((d / "heldout.json").read_text())
        lmeval = json.loads((d / "lmeval.json").read_text())
        assert info["seed"] == info["config"]["train"]["seed"] in (0, 1) and info["config"]["mawt"]["depth"] in (1, 2)
        assert info["environment"]["cpu_capability"] and info["environment"]["cpu_model"]
        assert held["n"] == 6 and 0.0 <= held["exact_match"] <= 1.0
        assert "verbal_heldout" in lmeval["tasks"]
        assert (d / "model" / "model.safetensors").stat().st_size > 0
    table = (out / "studies" / "tiny" / "table.csv").read_text().splitlines()
    assert table[0].startswith("variant,") and len(table) == 1 + 5  # header, base, plain, gated, 2 variants
    assert [line.split(",")[0] for line in table[1:]] == ["base (untuned)", "plain", "gated", "grpo2", "softmax2"]
    plots = {p.name for p in (out / "studies" / "tiny" / "plots").iterdir()}
    assert {"comparison.png", "comparison.svg", "training_curves.png", "slice_usage.png", "attention.png"} <= plots
    report = (smoke / "results" / "report.html").read_text()
    assert 'id="study-tiny"' in report and report.count("<img") == len([p for p in plots if p.endswith(".png")])
    assert (out / "all_runs.parquet").exists() and (out / "all_runs.csv").exists()
    bench = smoke / "results" / "benchmarks" / "smoke"
    assert len(list((bench / "prepare_data").glob("*.tsv"))) == 1 and (bench / "pretrain_micro.tsv").exists()
    for rule, jobs in (("train", 8), ("eval_heldout", 1), ("lm_eval", 9)):
        assert len(list((bench / rule).glob("*.tsv"))) == jobs, rule
    assert (bench / "train" / f"{runs[0].name}.tsv").read_text().startswith("s\th:m:s\tmax_rss")

    own = snakemake(smoke, "--report", str(smoke / "snakemake_report.html"), **args)  # Snakemake's own report
    assert own.returncode == 0 and (smoke / "snakemake_report.html").stat().st_size > 0, own.stderr[-2000:]

    again = snakemake(smoke, "-n", **args)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr

    # a MAWT-only knob: the variant's plain counterpart (plain-ized config) stays the same
    study = {**SMOKE_STUDY, "variants": {"grpo2": {}, "softmax2": {"mawt": {"mixer": "softmax", "tau": 0.5}}}}
    (smoke / "ablations" / "tiny.yaml").write_text(yaml.safe_dump(study))
    edited = snakemake(smoke, "-n", **args)
    assert edited.returncode == 0, edited.stderr[-3000:]
    counts = job_counts(edited.stdout)
    # softmax2's two seeds (new config -> new run id) and the study's index and table; nothing else
    assert counts == {"run_config": 2, "train": 2, "lm_eval": 2, "study_index": 1,
                      "study_table": 1, "report": 1, "all": 1, "total": 10}


def test_the_default_profile_is_found_so_report_html_needs_no_cores(tmp_path):
    proc = snakemake(tmp_path, "-n", "results/report.html")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-2000:]
    assert "Using workflow specific profile" in out and "profiles/default" in out
    counts = job_counts(proc.stdout)
    assert counts["report"] == 1 and counts["train"] == 33 and counts["lm_eval"] == 11 + 1
