"""Study tables, plots and the HTML report (from a fixture of run results; no training).

The statistics themselves: tests/test_stats.py."""

import json
import re
import shutil
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

from types import SimpleNamespace

import numpy as np

from mawt.evaluation.evaluate import score_items
import pandas as pd
import pytest
import torch
import yaml
from scipy import stats as sps

from mawt import MAWTConfig, patch_model
from mawt.analysis import plots
from mawt.bases.micro import MicroConfig, build_model, train_tokenizer
from mawt.analysis.report import build_report
from mawt.analysis.summary import WARNING, controls_text
from mawt.evaluation.evaluate import attention_example
from mawt.statistics import DEFAULT_MARGIN
from mawt.statistics.intervals import holm
from mawt.statistics.paired import paired_difference
from mawt.analysis.comparisons import VERDICTS, summarise
from mawt.analysis.display import display_table, fmt_p, verdict_text
from mawt.analysis.results import BASE, load_results
from mawt.analysis.tables import study_table
from mawt.studies.index import run_axes
from mawt.training.runconfig import RunConfig, load

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- a fixture of run results

STUDIES = {  # "depths": no `baseline` given (the fixture compares every variant with plain); "mixers": explicit
    # 3 seeds: with 2, a t interval has about 1 degree of freedom and even 0.9 vs 0.4 is not established
    "depths": {"plain": {"depth": 1, "mixer": "fixed", "seeds": (0, 1, 2)},
               "depth-2": {"depth": 2, "mixer": "grpo", "seeds": (0, 1, 2)},
               "depth-4": {"depth": 4, "mixer": "grpo", "seeds": (0, 1, 2)}},
    "mixers": {"plain": {"depth": 1, "mixer": "fixed", "baseline": None},
               "grpo": {"depth": 4, "mixer": "grpo", "baseline": "plain"},
               "softmax": {"depth": 4, "mixer": "softmax", "baseline": "plain"},
               "gumbel": {"depth": 4, "mixer": "gumbel", "baseline": "plain",
                          # seed 1 was evaluated before heldout.json had selector statistics: run.json's fallback
                          "per_seed": {1: {"heldout_selection": False}}}},
}
SKILL = {"plain": 0.4, "depth-2": 0.45, "depth-4": 0.9, "grpo": 0.9, "softmax": 0.42, "gumbel": 0.5}
N_ITEMS = 30
ENV = {"git_commit": "abc123", "cpu_model": "Fixture CPU 9000", "cpu_capability": "AVX512", "cpu_threads": 2,
       "kernel_env": {}, "versions": {"torch": "2.13.0"}}


def _items(n: int = N_ITEMS) -> list[dict]:
    return [{"challenge": f"Shift each letter of w{i} by two.", "answer": f"a{i}"} for i in range(n)]


def _heldout(p: float, seed: int, items: list[dict], correct=None, selection=None) -> dict:
    """heldout.json: per-item 0/1 scores drawn with probability p (or given by `correct`)."""
    rng = np.random.default_rng(seed)
    if correct is None:
        correct = [bool(rng.random() < p) for _ in items]
    # scored by mawt.evaluation.evaluate's own record builder: the file has exactly the real keys
    out = score_items(items, [item["answer"] if ok else "zzz" for item, ok in zip(items, correct, strict=True)])
    out.update(heldout_answer_loss=2.0 - out["exact_match"], model="fixture")
    if selection is not None:
        out["selection"] = selection
    return out


def _heldout_selection(depth: int) -> dict:
    """Held-out selector statistics, deliberately unlike the training batch's (uniform, entropy log D)."""
    if depth == 1:
        return {}
    return {"depth_usage_0": 0.7, **{f"depth_usage_{d}": 0.3 / (depth - 1) for d in range(1, depth)},
            "selector_entropy": 0.25 * depth}


def _write_run(run_dir: Path, bench: Path, variant: str, depth: int, mixer: str, seed: int, items, *, skill=None,
               correct=None, heldout_selection=True, lmeval=True, env=None, trainable="last", params=None) -> None:
    run_dir.mkdir(parents=True)
    skill = SKILL.get(variant, 0.5) if skill is None else skill
    rng_seed = zlib.crc32(f"{variant}-{seed}".encode()) % 1000
    (run_dir / "heldout.json").write_text(json.dumps(_heldout(
        skill, rng_seed, items, correct, _heldout_selection(depth) if heldout_selection else None)))
    tasks = {"verbal_heldout": {"exact_match": skill, "exact_match_stderr": 0.05}} if lmeval else {}
    (run_dir / "lmeval.json").write_text(json.dumps({"tasks": tasks}))
    usage = {f"depth_usage_{d}": 1 / depth for d in range(depth)}
    final = {**usage, **({"selector_entropy": float(np.log(depth))} if depth > 1 else {})}
    config = {"mawt": {"depth": depth, "mixer": mixer, "layers": [-1]}, "trainable": trainable,
              "train": {"seed": seed, "group_size": 4, "learning_rate": 2e-3, "steps": 30}}
    (run_dir / "run.json").write_text(json.dumps({
        "config": config, "seed": seed, "trainable_parameters": params or 1000 * depth, "train_seconds": 10.0 + depth,
        "final_selection": final, "environment": env or ENV}))
    lines = [{"step": s, "loss_ce": 3.0 / s, **usage, **({"reward_mean": -3.0 / s, "selector_entropy": 1.0}
                                                         if mixer == "grpo" else {})} for s in range(1, 31, 5)]
    (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    bench.parent.mkdir(parents=True, exist_ok=True)
    bench.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                     f"{12.5 + depth:.2f}\t0:00:12\t{500 + 10 * depth:.2f}\t0\t0\t0\t0\t0\t90\t11\n")


DATA = "d0"  # the fixture's one data split


def _write_base(out: Path, items) -> dict:
    base = out / "runs" / "base"
    if not base.exists():
        base.mkdir(parents=True)
        (base / "heldout.json").write_text(json.dumps(_heldout(0.05, 7, items)))
        (base / "lmeval.json").write_text(json.dumps({"tasks": {"verbal_heldout": {
            "exact_match": 0.05, "exact_match_stderr": 0.04}}}))
    return {"data": DATA, "heldout": str(base / "heldout.json"), "lmeval": str(base / "lmeval.json"),
            "families": None, "native_heldout": None}


def _write_study(out: Path, study: str, variants: dict, items=None, attention=None) -> Path:
    """A study's run folders and its runs.json index, in the schema the workflow writes
    (mawt/studies/runsfile.py), each run's axes built by the workflow's own `run_axes` from its config.

    variants: name -> {depth, mixer, seeds (default (0, 1)), baseline (default: plain, for every variant
    but plain, when the study has one), per_seed: {seed: _write_run keyword arguments}, any other
    _write_run keyword argument}.
    """
    items = _items() if items is None else items
    bench = out.parent / "benchmarks" / out.name
    runs = []
    for variant, spec in variants.items():
        spec = dict(spec)
        depth, mixer, seeds = spec.pop("depth", 1), spec.pop("mixer", "fixed"), spec.pop("seeds", (0, 1))
        default = "plain" if variant != "plain" and "plain" in variants else None
        per_seed, baseline = spec.pop("per_seed", {}), spec.pop("baseline", default)
        for seed in seeds:
            run_id = f"{study}-{variant}-{seed}"
            run_dir = out / "runs" / run_id
            _write_run(run_dir, bench / "train" / f"{run_id}.tsv", variant, depth, mixer, seed, items,
                       **{**spec, **per_seed.get(seed, {})})
            config = load(json.loads((run_dir / "run.json").read_text())["config"], RunConfig)
            runs.append({"variant": variant, "seed": seed, "run_id": run_id, "eval_id": "e0", "dir": str(run_dir),
                         "heldout": str(run_dir / "heldout.json"), "lmeval": str(run_dir / "lmeval.json"),
                         "bench": str(bench / "train" / f"{run_id}.tsv"), "bench_share": 1, "baseline": baseline,
                         "data": DATA, "axes": run_axes(config)})
    index = out / "studies" / study / "runs.json"
    index.parent.mkdir(parents=True)
    index.write_text(json.dumps({
        "study": study, "setup": out.name, "description": f"the {study} study <fixture>", "margin": DEFAULT_MARGIN,
        "yaml": yaml.safe_dump({"name": study, "seeds": [0, 1]}), "runs": runs,
        "attention": str(attention) if attention else None, "bases": [_write_base(out, items)]}))
    return index


@pytest.fixture(scope="module")
def attention_npz(tmp_path_factory):
    """A real .npz from `attention_example` on a tiny, randomly initialised MAWT micro model."""
    tmp = tmp_path_factory.mktemp("att")
    tok = train_tokenizer()
    torch.manual_seed(0)
    model = patch_model(build_model(MicroConfig(num_layers=2, hidden=32, heads=4, kv_heads=2, intermediate=64), tok),
                        MAWTConfig(depth=3, mixer="grpo", init_noise=0.5))
    model.save_pretrained(tmp / "model")
    tok.save_pretrained(tmp / "model")
    (tmp / "heldout.jsonl").write_text(json.dumps({"challenge": "Shift each letter of cab by two.", "answer": "edc"})
                                       + "\n")
    info = attention_example(tmp / "model", tmp / "heldout.jsonl", tmp / "attention.npz")
    return tmp / "attention.npz", info


@pytest.fixture(scope="module")
def results(tmp_path_factory, attention_npz):
    """results/<setup>/ as the workflow leaves it, filled with made-up scores (items differ per seed).

    Quirks on purpose: depths' depth-2 seed 1 has no lm-eval score; mixers' gumbel seed 1 has no held-out
    selector statistics (run.json's training-batch ones instead); mixers' softmax seed 1 ran on another CPU
    with other kernels (AVX2).
    """
    root = tmp_path_factory.mktemp("results")
    out = root / "results" / "fix"
    studies = {name: {v: dict(spec) for v, spec in variants.items()} for name, variants in STUDIES.items()}
    studies["depths"]["depth-2"]["per_seed"] = {1: {"lmeval": False}}
    studies["mixers"]["softmax"]["per_seed"] = {1: {"env": {**ENV, "cpu_model": "Other CPU", "cpu_capability": "AVX2"}}}
    indexes = []
    for study, variants in studies.items():
        att = out / "runs" / f"{study}-{list(variants)[1]}-0" / "attention.npz"
        indexes.append(_write_study(out, study, variants, attention=att))
        shutil.copy(attention_npz[0], att)
    bench = root / "results" / "benchmarks" / "fix"
    (bench / "prepare_data.tsv").write_text((bench / "train" / "depths-plain-0.tsv").read_text())
    (root / "setup.yaml").write_text("name: fix\n")
    return root, indexes


def test_attention_example_saves_the_5d_maps_of_one_item(attention_npz):
    path, info = attention_npz
    data = np.load(path)
    att = data["attention"].astype(np.float32)
    assert att.shape == (4, len(data["tokens"]), len(data["tokens"]), 3) and info["shape"][-1] == 3
    assert np.allclose(att.sum(axis=2), 1.0, atol=2e-3)  # every query row of every depth is a distribution
    assert np.abs(np.triu(att[..., 0], k=1)).max() == 0  # causal
    assert int(data["layer"]) == 1 and 0 <= int(data["head"]) < 4 and str(data["answer"]) == "edc"


def test_attention_example_refuses_a_model_without_mawt(tmp_path, cli):
    tok = train_tokenizer()
    build_model(MicroConfig(num_layers=1, hidden=32, heads=4, kv_heads=2, intermediate=64), tok).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    (tmp_path / "h.jsonl").write_text(json.dumps({"challenge": "x", "answer": "y"}) + "\n")
    proc = cli("attention", "--model", tmp_path, "--heldout", tmp_path / "h.jsonl", "--out", tmp_path / "a.npz")
    assert proc.returncode == 2 and "has no MAWT layer" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "a.npz").exists()


def test_study_table_has_intervals_differences_and_costs(results):
    root, indexes = results
    out = root / "tables" / "depths"
    table = study_table(indexes[0], out).set_index("variant")
    assert list(table.index) == ["base (untuned)", "plain", "depth-2", "depth-4"]
    for v in table.index:
        assert table.loc[v, "exact_match_low"] <= table.loc[v, "exact_match"] <= table.loc[v, "exact_match_high"]
    study = load_results(indexes[0])
    for v in ("plain", "depth-4"):
        assert table.loc[v, "exact_match"] == pytest.approx(study.score_matrix(v, "exact_match").mean())
    assert table.loc["depth-4", "diff_exact_match"] == pytest.approx(
        table.loc["depth-4", "exact_match"] - table.loc["plain", "exact_match"])
    # an index without `baseline` fields: every variant against plain, plain itself not compared
    assert list(table["baseline"].fillna("-")) == ["-", "-", "plain", "plain"]
    assert bool(table.loc["plain", "is_baseline"]) and not bool(table.loc["depth-4", "is_baseline"])
    assert pd.isna(table.loc["plain", "diff_exact_match"]) and pd.isna(table.loc["plain", "diff_exact_match_p"])
    # p-values, Holm over the two compared variants, verdicts from the Holm-adjusted p (and TOST), MDE
    for metric in ("exact_match", "challenge_metric"):
        p = table.loc[["depth-2", "depth-4"], f"diff_{metric}_p"].to_numpy()
        assert table.loc[["depth-2", "depth-4"], f"diff_{metric}_p_holm"].to_numpy() == pytest.approx(holm(p))
        for v in ("depth-2", "depth-4"):
            word = table.loc[v, f"verdict_{metric}"]
            assert word in VERDICTS
            assert (word in ("better", "worse")) == (table.loc[v, f"diff_{metric}_p_holm"] < 0.05)
            # the verdict's MDE is at Holm's first-step level 0.05 / 2: larger than one comparison's at 0.05
            assert table.loc[v, f"mde_{metric}"] > table.loc[v, f"mde_{metric}_single"] > 0
    assert table.loc["depth-4", "verdict_exact_match"] == "better"  # 0.9 vs 0.4 on 90 paired item-seeds
    assert table.loc["depth-4", "diff_exact_match_p_holm"] == pytest.approx(
        2 * table.loc["depth-4", "diff_exact_match_p"])  # the smaller of two p-values, x2 (Holm, m=2)
    assert table.loc["depth-2", "verdict_exact_match"] == "inconclusive"
    assert table.loc["depth-4", "peak_mem_mb"] == 540 and table.loc["depth-4", "trainable_parameters"] == 4000
    # selector statistics from heldout.json's `selection`, not from run.json's final_selection
    assert table.loc["depth-4", "selector_entropy"] == pytest.approx(1.0)
    assert table.loc["depth-4", "depth_usage_0"] == pytest.approx(0.7)
    assert not any(c.startswith("train_batch_") for c in table.columns)
    # a side metric that one of two seeds lacks: the mean of the one that has it, with its count
    assert table.loc["depth-2", "lm_eval:verbal_heldout:exact_match"] == 0.45
    assert table.loc["depth-2", "lm_eval:verbal_heldout:exact_match__n"] == 2
    assert pd.isna(table.loc["depth-4", "lm_eval:verbal_heldout:exact_match__n"])
    assert table.loc["depth-2", "lm_eval:verbal_heldout:exact_match_stderr"] == 0.05
    csv = pd.read_csv(out / "table.csv").set_index("variant")
    assert {"diff_exact_match_p", "diff_exact_match_p_holm", "diff_exact_match_p_equiv_holm", "mde_exact_match",
            "mde_challenge_metric", "verdict_exact_match", "seeds_needed_exact_match", "margin",
            "baseline"} <= set(csv.columns)
    assert csv.loc["depth-4", "diff_exact_match_p_holm"] == pytest.approx(
        table.loc["depth-4", "diff_exact_match_p_holm"])
    md = (out / "table.md").read_text()
    assert "| depth-4 " in md and " *" in md and "(baseline)" in md and "0.050" in md
    assert "EM vs baseline [95% CI]" in md and "EM Holm p" in md and "vs plain" not in md
    assert "0.450 ± 0.050 (n=2 of 3)" in md  # depth-2's lm-eval score: seed 1 has none
    assert "3 seeds x 30 items" in md and "Minimum detectable effect" in md and "Holm-adjusted" in md
    assert "unadjusted 95% interval" in md and "not distinguishable" not in md and "bootstrap" not in md
    mde = np.median(table.loc[["depth-2", "depth-4"], "mde_exact_match"])
    assert f"exact match {mde:.3f}" in md
    shown = display_table(table.reset_index()).set_index("variant")
    assert list(shown["trainable params"]) == ["0 (untuned)", "1,000", "2,000", "4,000"]  # every row, baselines too
    assert shown.loc["depth-4", "selector entropy (held-out)"] == "1.000"
    assert shown.loc["depth-4", "depth usage (held-out)"] == "0.70 / 0.10 / 0.10 / 0.10"
    long = pd.read_csv(out / "long.csv")
    assert {"study", "variant", "seed", "depth", "mixer", "metric", "value"} <= set(long.columns)
    assert len(long[(long.metric == "exact_match") & (long.variant == "depth-2")]) == 3  # one row per seed


def test_selector_statistics_fall_back_to_the_training_batch_and_are_labelled(results):
    root, indexes = results
    table = study_table(indexes[1], root / "tables" / "mixers").set_index("variant")
    # gumbel: seed 0 has held-out statistics, seed 1 only run.json's final_selection (the last training batch);
    # the two are kept apart, each shown with its count, never averaged together
    assert table.loc["gumbel", "selector_entropy"] == pytest.approx(1.0)
    assert table.loc["gumbel", "selector_entropy__n"] == 1
    assert table.loc["gumbel", "train_batch_selector_entropy"] == pytest.approx(np.log(4))
    assert table.loc["gumbel", "train_batch_selector_entropy__n"] == 1
    assert pd.isna(table.loc["grpo", "train_batch_selector_entropy"])
    shown = display_table(table.reset_index()).set_index("variant")
    assert shown.loc["gumbel", "selector entropy (held-out)"] == "1.000 (n=1 of 2)"
    assert shown.loc["gumbel", "selector entropy (last training batch)"] == "1.386 (n=1 of 2)"
    assert shown.loc["gumbel", "depth usage (last training batch)"] == "0.25 / 0.25 / 0.25 / 0.25 (n=1 of 2)"
    assert shown.loc["grpo", "selector entropy (held-out)"] == "1.000"
    assert shown.loc["grpo", "selector entropy (last training batch)"] == ""
    md = (root / "tables" / "mixers" / "table.md").read_text()
    assert "selector entropy (last training batch)" in md and "final_selection" in md


def test_variants_are_paired_by_seed_id(tmp_path):
    out = tmp_path / "results" / "s"
    items = _items()
    runs = {seed: [bool(v) for v in np.random.default_rng(seed).integers(0, 2, N_ITEMS)] for seed in (0, 1, 2)}
    # "copy" scores exactly what plain scored, seed for seed, but its runs are listed in another order
    index = _write_study(out, "pairs", {
        "plain": {"seeds": (0, 1, 2), "per_seed": {s: {"correct": c} for s, c in runs.items()}},
        "copy": {"seeds": (2, 0, 1), "per_seed": {s: {"correct": c} for s, c in runs.items()}}}, items)
    table = summarise(load_results(index)).set_index("variant")
    d = table.loc["copy"]
    assert (d["diff_exact_match"], d["diff_exact_match_low"], d["diff_exact_match_high"]) == (0.0, 0.0, 0.0)
    assert d["diff_exact_match_p"] == 1.0 and d["verdict_exact_match"] == "equivalent"  # exactly 0, within any margin


@pytest.mark.parametrize("seeds", [(0, 1, 3), (0, 1)])
def test_different_seed_sets_are_refused_with_a_clear_message(tmp_path, seeds, cli):
    index = _write_study(tmp_path / "results" / "s", "pairs", {
        "plain": {"seeds": (0, 1, 2)}, "depth-4": {"depth": 4, "mixer": "grpo", "seeds": seeds}})
    study = load_results(index)
    with pytest.raises(ValueError) as err:
        summarise(study)
    message = str(err.value)
    assert all(part in message for part in ("'pairs'", "'depth-4'", str(list(seeds)), "'plain'", "[0, 1, 2]"))
    # and through the CLI (the workflow's `table` rule): one line, the same message, no table written
    proc = cli("table", "--index", index, "--out-dir", tmp_path / "t")
    assert proc.returncode == 2 and proc.stderr.startswith("error: study 'pairs'") and "Traceback" not in proc.stderr
    assert not (tmp_path / "t" / "table.csv").exists()


def test_each_variant_is_compared_with_its_own_baseline(tmp_path):
    out = tmp_path / "results" / "s"
    index = _write_study(out, "tails", {
        "plain": {"baseline": None, "skill": 0.4},
        "plain_last2": {"baseline": None, "trainable": "last:2", "params": 2000, "skill": 0.6},
        "grpo": {"depth": 4, "mixer": "grpo", "baseline": "plain", "skill": 0.5},
        "grpo_last2": {"depth": 4, "mixer": "grpo", "baseline": "plain_last2", "trainable": "last:2",
                       "params": 8000, "skill": 0.7},
        "vs_base": {"depth": 2, "mixer": "grpo", "baseline": BASE, "skill": 0.3},
    })
    study = load_results(index)
    table = summarise(study).set_index("variant")
    m = {v: study.score_matrix(v, "exact_match") for v in study.variants}
    assert table.loc["grpo", "diff_exact_match"] == pytest.approx((m["grpo"] - m["plain"]).mean())
    assert table.loc["grpo_last2", "diff_exact_match"] == pytest.approx((m["grpo_last2"] - m["plain_last2"]).mean())
    assert table.loc["grpo_last2", "diff_exact_match"] != pytest.approx((m["grpo_last2"] - m["plain"]).mean())
    # the untuned base (one row, no seed) is broadcast to every seed
    assert table.loc["vs_base", "diff_exact_match"] == pytest.approx((m["vs_base"] - m[BASE]).mean())
    direct = paired_difference(m["grpo_last2"], m["plain_last2"], margin=study.margin)
    assert table.loc["grpo_last2", "diff_exact_match_p"] == pytest.approx(direct.p)
    assert table.loc["grpo_last2", "diff_exact_match_low"] == pytest.approx(direct.low)
    assert table.loc["grpo_last2", "diff_exact_match_p_equiv"] == pytest.approx(direct.p_equivalent)
    # the Holm family is the three compared variants
    compared = ["grpo", "grpo_last2", "vs_base"]
    assert table.loc[compared, "diff_exact_match_p_holm"].to_numpy() == pytest.approx(
        holm(table.loc[compared, "diff_exact_match_p"].to_numpy()))
    assert table.loc[["plain", "plain_last2"], "diff_exact_match"].isna().all()
    shown = display_table(table.reset_index()).set_index("variant")
    # the untuned base is vs_base's baseline here
    assert list(shown["baseline"]) == ["(baseline)", "(baseline)", "(baseline)", "plain", "plain_last2", BASE]
    assert shown.loc["plain_last2", "EM vs baseline [95% CI]"] == "(baseline)"
    assert shown.loc["grpo_last2", "trainable params"] == "8,000" and shown.loc["plain_last2", "trainable"] == "last:2"


def test_a_baseline_that_is_not_in_the_study_or_differs_between_seeds_is_refused(tmp_path):
    index = _write_study(tmp_path / "a", "bad", {"plain": {}, "grpo": {"depth": 4, "baseline": "plain_last2"}})
    with pytest.raises(ValueError, match="'grpo' names baseline 'plain_last2', which is not a variant"):
        load_results(index)
    index = _write_study(tmp_path / "b", "bad", {"plain": {}, "plain_last2": {}, "grpo": {"depth": 4}})
    data = json.loads(index.read_text())
    data["runs"][-1]["baseline"] = "plain_last2"  # seed 1 only
    index.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="runs of variant 'grpo' name different baselines"):
        load_results(index)


def test_only_the_holm_adjusted_p_value_earns_a_star(tmp_path):
    # one seed, 200 items, plain always wrong: the comparison is the t test over items (df 199). "moderate" is
    # right on 4 items: p about 0.045 and its unadjusted 95% interval excludes 0; Holm over 3 compared variants
    # (it is the second smallest) multiplies it by 2: about 0.09, not below 0.05, and it is not within the margin
    # 0.03 either: "inconclusive". "sure" (right on 150) stays "better"; "one" (right on 1) has a large p.
    n = 200
    items = _items(n)
    wrong = [False] * n
    index = _write_study(tmp_path / "results" / "s", "holm", {
        "plain": {"seeds": (0,), "correct": wrong},
        "sure": {"seeds": (0,), "depth": 2, "correct": [True] * 150 + [False] * (n - 150)},
        "moderate": {"seeds": (0,), "depth": 2, "correct": [True] * 4 + [False] * (n - 4)},
        "one": {"seeds": (0,), "depth": 2, "correct": [True] + [False] * (n - 1)}}, items)
    table = summarise(load_results(index)).set_index("variant")
    moderate = table.loc["moderate"]
    d = np.array([1.0] * 4 + [0.0] * (n - 4))
    expected = 2 * sps.t.sf(d.mean() / (d.std(ddof=1) / np.sqrt(n)), n - 1)
    assert moderate["diff_exact_match_p"] == pytest.approx(expected, rel=1e-6) and 0.04 < expected < 0.05
    assert moderate["diff_exact_match_low"] > 0 and moderate["diff_exact_match_p"] < 0.05  # unadjusted: "yes"
    assert moderate["diff_exact_match_p_holm"] == pytest.approx(2 * moderate["diff_exact_match_p"])
    assert moderate["verdict_exact_match"] == "inconclusive"
    assert table.loc["sure", "verdict_exact_match"] == "better"
    assert table.loc["sure", "diff_exact_match_p_holm"] == pytest.approx(3 * table.loc["sure", "diff_exact_match_p"])
    assert table.loc["one", "diff_exact_match_p_holm"] == pytest.approx(table.loc["one", "diff_exact_match_p"])
    shown = display_table(table.reset_index()).set_index("variant")
    assert shown.loc["sure", "EM vs baseline [95% CI]"].endswith(" *")
    assert not shown.loc["moderate", "EM vs baseline [95% CI]"].endswith("*")
    assert shown.loc["moderate", "EM Holm p"] == fmt_p(moderate["diff_exact_match_p_holm"])
    assert shown.loc["sure", "EM Holm p"] == "<0.001"
    assert shown.loc["moderate", "EM verdict"] == "inconclusive" and shown.loc["sure", "EM verdict"] == "better"



# ---------------------------------------------------------------- floors: both sides one and the same constant

FLOOR_STUDY = {  # freezing's micro pair: mawt_only and its plain counterpart both right on no item of any seed
    "plain": {"baseline": None, "seeds": (0, 1, 2)},
    "sure": {"depth": 4, "mixer": "grpo", "baseline": "plain", "seeds": (0, 1, 2), "skill": 0.9},
    "near": {"depth": 2, "mixer": "grpo", "baseline": "plain", "seeds": (0, 1, 2), "skill": 0.5},
}
NEVER = {"correct": [False] * N_ITEMS}


def _with_floor(spec: dict) -> dict:
    return {**spec, "plain_trainable-mawt": {"baseline": None, "seeds": (0, 1, 2), **NEVER},
            "mawt_only": {"depth": 4, "mixer": "grpo", "baseline": "plain_trainable-mawt", "seeds": (0, 1, 2),
                          **NEVER}}


def test_a_constant_pair_is_a_floor_left_out_of_holms_family(tmp_path):
    index = _write_study(tmp_path / "with" / "fix", "freezing", _with_floor(FLOOR_STUDY))
    table = summarise(load_results(index)).set_index("variant")
    floor = table.loc["mawt_only"]
    assert floor["verdict_exact_match"] == "floor" == floor["verdict_challenge_metric"] and floor["floor_exact_match"]
    assert (floor["diff_exact_match"], floor["diff_exact_match_low"], floor["diff_exact_match_high"]) == (0, 0, 0)
    for col in ("diff_exact_match_p", "diff_exact_match_p_holm", "diff_exact_match_p_equiv",
                "diff_exact_match_p_equiv_holm", "mde_exact_match", "mde_exact_match_single",
                "seeds_needed_exact_match", "var_seed_exact_match"):
        assert pd.isna(floor[col]), col  # nothing tested: no p-value, no MDE
    # Holm's m is the two tested comparisons, by hand: the smaller p x 2, the larger max(that, itself)
    p = table.loc[["sure", "near"], "diff_exact_match_p"].to_numpy()
    low, high = sorted(p)
    by_hand = {v: min(1.0, 2 * low) if pv == low else min(1.0, max(2 * low, high))
               for v, pv in zip(("sure", "near"), p, strict=True)}
    for v in ("sure", "near"):
        assert table.loc[v, "diff_exact_match_p_holm"] == pytest.approx(by_hand[v], rel=1e-12)
        assert not table.loc[v, "floor_exact_match"] and table.loc[v, "verdict_exact_match"] != "floor"
    assert 3 * low < 1 and table.loc["sure", "diff_exact_match_p_holm"] != pytest.approx(3 * low)  # not m = 3
    # and the same study without the floor pair: the same Holm p-values, MDEs, seeds needed and verdicts
    alone = summarise(load_results(_write_study(tmp_path / "without" / "fix", "freezing", FLOOR_STUDY)))
    alone = alone.set_index("variant")
    tested = ["sure", "near"]
    for col in ("diff_exact_match_p_holm", "diff_exact_match_p_equiv_holm", "mde_exact_match",
                "seeds_needed_exact_match", "mde_challenge_metric"):
        assert table.loc[tested, col].to_numpy() == pytest.approx(alone.loc[tested, col].to_numpy(), nan_ok=True), col
    assert list(table.loc[tested, "verdict_exact_match"]) == list(alone.loc[tested, "verdict_exact_match"])
    # rendered: table.md, the report's summary table and summary.md name it and say what a floor is
    study_table(index, index.parent, plots=index.parent / "plots")
    html, summary, rows = _summary_report(tmp_path, [index.parent])
    row = rows["freezing", "mawt_only"]
    assert row["verdict"] == "floor" and row["MDE"] == "" and row["seeds for MDE = margin"] == ""
    assert row["verdict (Holm-adjusted)"].startswith("floor: mawt_only and plain_trainable-mawt both score 0.000")
    assert "nothing to test" in row["verdict (Holm-adjusted)"] and "more steps" in row["verdict (Holm-adjusted)"]
    assert '<td class="verdict v-floor">floor</td>' in summary and "<b>floor</b>" in summary
    assert "(1 at the floor)" in summary
    md = (tmp_path / "summary.md").read_text()
    line = next(line for line in md.splitlines() if " mawt_only " in line)
    assert "| floor " in line and "nothing to test" in line and "floors not counted" in md
    table_md = (index.parent / "table.md").read_text()
    assert "1 of them at the floor" in table_md and "0.05 / 2 by Holm's first step" in table_md
    assert "'floor': the variant and its baseline score the same constant" in table_md
    assert "floor (nothing to test)" in (index.parent / "plots" / "forest.svg").read_text()


def test_constant_sides_that_differ_are_a_real_difference_not_a_floor(tmp_path):
    # every seed right on every item against one right on none: deterministic, "better" (SE 0, p 0), not a floor;
    # a variant right on every item against that one (a ceiling: both 1 everywhere) is a floor again
    always = {"correct": [True] * N_ITEMS}
    index = _write_study(tmp_path / "results" / "s", "constants", {
        "zeros": {"baseline": None, "seeds": (0, 1, 2), **NEVER},
        "ones": {"depth": 2, "baseline": "zeros", "seeds": (0, 1, 2), **always},
        "ceiling": {"depth": 4, "baseline": "ones", "seeds": (0, 1, 2), **always},
        "other": {"depth": 3, "baseline": "zeros", "seeds": (0, 1, 2), "skill": 0.3}})
    table = summarise(load_results(index)).set_index("variant")
    ones = table.loc["ones"]
    assert ones["verdict_exact_match"] == "better" and not ones["floor_exact_match"]
    assert ones["diff_exact_match"] == 1.0 and ones["diff_exact_match_p"] == 0.0 == ones["diff_exact_match_p_holm"]
    assert ones["mde_exact_match"] == 0.0 and verdict_text(ones) == "better than zeros (Holm p<0.001)"
    assert table.loc["ceiling", "verdict_exact_match"] == "floor" and table.loc["ceiling", "floor_exact_match"]
    # Holm's m is 2 (ones, other): other's p is the larger, max(2 x 0, its own p)
    assert table.loc["other", "diff_exact_match_p_holm"] == pytest.approx(table.loc["other", "diff_exact_match_p"])


def test_a_control_at_the_floor_is_a_warning_not_a_success(tmp_path):
    index = _write_study(tmp_path / "results" / "s", "controls", {
        "plain": {"baseline": None, **NEVER}, "half_steps": {"baseline": "plain", **NEVER},
        "grpo": {"depth": 4, "mixer": "grpo", "baseline": None, **NEVER},
        "shuffled": {"depth": 4, "mixer": "grpo", "baseline": "grpo", **NEVER}})
    table = summarise(load_results(index))
    table.to_csv(tmp_path / "table.csv", index=False)  # as the report reads it: the flag survives the round trip
    lines = controls_text([({"name": "controls"}, pd.read_csv(tmp_path / "table.csv"))])
    positive = next(text for kind, text in lines if text.startswith("Positive control"))
    negative = next(text for kind, text in lines if text.startswith("Negative control"))
    assert [kind for kind, text in lines if text in (positive, negative)] == ["warning", "warning"]
    assert "half_steps vs plain (study controls): floor" in positive and "no MDE" in positive
    assert WARNING in positive and "both runs are at the floor" in positive and "as it must" not in positive
    assert "shuffled vs grpo (study controls): floor" in negative and "Untested" in negative
    assert "what it learned matters" not in negative and "not shown to matter" not in negative


def _report(root, indexes, tmp_path, cli):
    for index in indexes:  # the `table` rule's command (in this process: the smoke workflow runs it for real)
        proc = cli("table", "--index", index, "--out-dir", index.parent, "--plots", index.parent / "plots")
        assert proc.returncode == 0, proc.stderr[-2000:]
    html = tmp_path / "report.html"
    build_report([index.parent for index in indexes], root / "setup.yaml", root / "results" / "benchmarks" / "fix",
                 html, tmp_path / "all_runs", tmp_path / "summary.md")
    return html


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.tags, self.errors = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in ("img", "meta", "br", "link", "hr"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def _tables(fragment: str) -> list[list[dict]]:
    """Every HTML table in `fragment`, each as a list of {header: cell text}."""
    return [_rows(part) for part in re.split(r"(?=<table[ >])", fragment)[1:]]


def _rows(fragment: str) -> list[dict]:
    """The first HTML table in `fragment` as a list of {header: cell text}."""
    import html as html_lib

    table = re.split(r"<table[^>]*>", fragment, maxsplit=1)[1].split("</table>", 1)[0]
    cells = lambda row, tag: [html_lib.unescape(re.sub(r"<[^>]+>", "", c))  # noqa: E731
                              for c in re.findall(rf"<{tag}[^>]*>(.*?)</{tag}>", row)]
    head = cells(table.split("</thead>", 1)[0], "th")
    return [dict(zip(head, cells(row, "td"), strict=True)) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table)
            if "<td" in row]


@pytest.mark.slow
def test_report_has_every_study_table_and_image_and_no_external_url(results, tmp_path, cli):
    root, indexes = results
    html = _report(root, indexes, tmp_path, cli)
    text = html.read_text()
    parser = _Tags()
    parser.feed(text)
    assert not parser.errors and not parser.stack, "tags are balanced"
    for study in STUDIES:
        assert f'id="study-{study}"' in text
        plots = sorted(p.stem for p in (root / "results" / "fix" / "studies" / study / "plots").glob("*.png"))
        assert {"forest", "comparison", "training_curves", "depth_usage", "attention"} <= set(plots)
        assert all((root / "results" / "fix" / "studies" / study / "plots" / f"{p}.svg").exists() for p in plots)
    assert "depth_sweep" in [p.stem for p in (root / "results" / "fix" / "studies" / "depths" / "plots").glob("*")]
    images = [attrs for tag, attrs in parser.tags if tag == "img"]
    assert len(images) == 4 + 5 + 2 and all(a["src"].startswith("data:image/png;base64,") for a in images)
    assert not re.search(r"(src|href)=\"(?!data:|#)", text) and "http://" not in text and "https://" not in text
    assert "the depths study &lt;fixture&gt;" in text  # escaped
    assert "not distinguishable" not in text and "bootstrap" not in text
    # summary, right after the title: per study a compact verdict table and its forest plot right under it
    assert text.index("<h2") == text.index('<h2 id="summary">') > text.index("<h1")
    summary = text.split('<h2 id="summary">Summary</h2>', 1)[1].split("<h2", 1)[0]
    assert "Holm-adjusted" in summary and "unadjusted" in summary and "inconclusive" in summary
    assert 'id="controls"' not in text  # no control in these studies
    tables = _tables(summary)
    assert len(tables) == 2 and summary.count('<table class="verdicts">') == 2
    rows = {r["variant"]: r for table in tables for r in table}
    assert set(rows) == {"depth-2", "depth-4", "grpo", "softmax", "gumbel"}
    assert list(rows["depth-4"])[:6] == ["study", "variant", "baseline", "verdict", "difference [95% CI]", "MDE"]
    for study in ("depths", "mixers"):
        table = pd.read_csv(root / "results" / "fix" / "studies" / study / "table.csv").set_index("variant")
        for variant, row in table[table["diff_exact_match"].notna()].iterrows():
            shown = rows[variant]
            assert shown["study"] == study and shown["baseline"] == "plain"
            assert shown["verdict"] == row["verdict_exact_match"] in VERDICTS
            assert shown["verdict (Holm-adjusted)"] == verdict_text(row)
            assert shown["MDE"] == f"{row['mde_exact_match']:.3f}" and shown["seeds x items"] == f"{3 if study == 'depths' else 2} seeds x 30 items"
            assert shown["difference [95% CI]"] == (f"{row['diff_exact_match']:+.2f} "
                                                    f"[{row['diff_exact_match_low']:+.2f}, "
                                                    f"{row['diff_exact_match_high']:+.2f}]")
        start = summary.index(f'id="summary-{study}"')
        assert start < summary.index('<table class="verdicts">', start) < summary.index(f'alt="{study}: forest"', start)
    assert rows["depth-4"]["verdict"] == "better" and rows["softmax"]["verdict"] == "inconclusive"
    p = pd.read_csv(root / "results" / "fix" / "studies" / "depths" / "table.csv").set_index("variant").loc[
        "depth-4", "diff_exact_match_p_holm"]
    assert rows["depth-4"]["verdict (Holm-adjusted)"] == f"better than plain (Holm p={fmt_p(p)})"
    assert rows["softmax"]["verdict (Holm-adjusted)"].startswith("inconclusive vs plain: neither different")
    assert rows["depth-4"]["trainable params (variant / baseline)"] == "4,000 / 1,000"
    # the verdict word comes before the difference in every summary table, coloured by its class, and the table
    # is laid out within the page width (fixed layout, long cells wrapped), not behind a horizontal scroll bar
    for head in re.findall(r'<table class="verdicts"><thead>(.*?)</thead>', summary):
        assert head.index("<th>verdict</th>") < head.index("<th>difference [95% CI]</th>")
    assert '<td class="verdict v-better">better</td>' in summary
    assert "table.verdicts{table-layout:fixed;width:100%" in text and "overflow-wrap:break-word" in text
    # each study section states its design and MDE; the table marks '*' by the Holm-adjusted p
    section = text.split('id="study-depths"', 1)[1].split("<h2", 1)[0]
    assert "3 seeds x 30 items" in section and "Minimum detectable effect" in section
    assert "EM vs baseline" in section and "trainable params" in section
    # environment: the CPU keys, and both values where one run differs (another CPU, other kernels)
    env = {(r["key"], r["value"]): r["runs"] for r in _rows(text.split('id="environment"', 1)[1].split("<h2", 1)[0])}
    assert env[("cpu_threads", "2")] == f"all {3 * 3 + 2 * 4}"  # depths: 3 variants x 3 seeds; mixers: 4 x 2
    assert env[("cpu_capability", "AVX2")] == "mixers-softmax-1 (train)"
    assert env[("cpu_model", "Other CPU")] == "mixers-softmax-1 (train)"
    assert ("cpu_capability", "AVX512") in env and ("cpu_model", "Fixture CPU 9000") in env
    assert env[("git_commit", "abc123")].startswith("all") and ("version: torch", "2.13.0") in env
    assert "prepare_data" in text and "Held-out browser" in text
    tidy = pd.read_parquet(tmp_path / "all_runs.parquet")
    assert set(tidy["study"]) == set(STUDIES) and len(tidy) == len(pd.read_csv(tmp_path / "all_runs.csv"))


# ---------------------------------------------------------------- forest plot, zoomed axes, controls

def _compared(variant: str, baseline: str, diff: float, half: float, p_holm: float, p_equiv_holm: float,
              **extra) -> dict:
    """One compared row of table.csv, built directly (what `mawt.analysis.comparisons.summarise` writes)."""
    return {"variant": variant, "baseline": baseline, "is_baseline": False, "seeds": 3, "runs": 3, "items": 40,
            "margin": 0.03, "depth": 1, "mixer": "fixed", "steps": 100, "reward_control": "none",
            "exact_match": 0.6 + diff, "exact_match_low": 0.55 + diff, "exact_match_high": 0.65 + diff,
            "trainable_parameters": 1000,
            "diff_exact_match": diff, "diff_exact_match_low": diff - half, "diff_exact_match_high": diff + half,
            "diff_exact_match_se": half / 2, "diff_exact_match_df": 2.0, "diff_exact_match_p": p_holm,
            "diff_exact_match_p_holm": p_holm, "diff_exact_match_p_equiv": p_equiv_holm,
            "diff_exact_match_p_equiv_holm": p_equiv_holm, "mde_exact_match": 0.08, "mde_exact_match_single": 0.06,
            "seeds_needed_exact_match": 7, **extra}


def _reference(variant: str, **extra) -> dict:
    return {"variant": variant, "baseline": None, "is_baseline": True, "seeds": 3, "runs": 3, "items": 40,
            "margin": 0.03, "depth": 1, "mixer": "fixed", "steps": 100, "reward_control": "none",
            "exact_match": 0.6, "exact_match_low": 0.55, "exact_match_high": 0.65, "trainable_parameters": 1000,
            **extra}


def _controls_table(positive_worse: bool) -> pd.DataFrame:
    """The `controls` study's table: half_steps vs plain (worse or not), shuffled vs grpo (worse), gated."""
    half_steps = (_compared("half_steps", "plain", -0.12, 0.05, 0.002, 1.0, steps=50) if positive_worse
                  else _compared("half_steps", "plain", -0.01, 0.05, 0.71, 0.31, steps=50))
    rows = [_reference("plain"), _compared("gated", "plain", 0.0, 0.02, 1.0, 0.004),
            _reference("grpo", depth=4, mixer="grpo", is_baseline=True), half_steps,
            _compared("shuffled", "grpo", -0.09, 0.04, 0.004, 1.0, depth=4, mixer="grpo",
                      reward_control="shuffled")]
    frame = pd.DataFrame(rows)
    frame["verdict_exact_match"] = [None, "equivalent", None, "worse" if positive_worse else "inconclusive", "worse"]
    return frame


def _study_folder(folder: Path, name: str, table: pd.DataFrame) -> Path:
    """A study folder as `mawt table` leaves it, around a table built directly."""
    folder.mkdir(parents=True)
    table.to_csv(folder / "table.csv", index=False)
    (folder / "study.json").write_text(json.dumps({"name": name, "setup": "fix", "description": f"the {name} study",
                                                   "yaml": f"name: {name}\n", "design": {}, "environments": {}}))
    pd.DataFrame([{"study": name, "setup": "fix", "variant": v, "seed": 0, "metric": "exact_match", "value": 0.5}
                  for v in table["variant"]]).to_csv(folder / "long.csv", index=False)
    pd.DataFrame([{"data": "d", "#": 0, "challenge": "c", "gold": "g", **{v: "g (1/1)" for v in table["variant"]}}]
                 ).to_csv(folder / "browser.csv", index=False)
    plots.forest(name, table, folder / "plots")
    return folder


def test_forest_plot_has_a_row_per_compared_variant_with_its_verdict(tmp_path):
    # (the fixture's studies get theirs from `mawt table --plots`: test_report_has_every_study_table_and_image...)
    paths = plots.forest("controls", _controls_table(positive_worse=False), tmp_path)
    assert [p.name for p in paths] == ["forest.png", "forest.svg"]
    svg = (tmp_path / "forest.svg").read_text()  # svg.fonttype none: the labels are text
    for label in ("gated vs plain", "half_steps vs plain", "shuffled vs grpo", f"equivalent (TOST p={fmt_p(0.004)})",
                  "inconclusive", f"worse (p={fmt_p(0.004)})", "±0.03: equivalence margin"):
        assert label in svg
    assert "grpo vs" not in svg and "plain vs" not in svg  # baselines are not rows
    for colour in (plots.VERDICT_COLOURS["worse"], plots.VERDICT_COLOURS["equivalent"]):
        assert colour.lower() in svg.lower()
    assert plots.forest("x", pd.DataFrame([_reference("plain")]), tmp_path / "none") == []


def test_accuracy_axes_zoom_to_the_data(monkeypatch, tmp_path):
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, out_dir, name: figures.append(fig) or [])
    table = pd.DataFrame([_reference(BASE, exact_match=0.05, exact_match_low=0.02, exact_match_high=0.08,
                                     is_baseline=False),
                          _reference("plain", exact_match=0.84, exact_match_low=0.81, exact_match_high=0.87),
                          _compared("a", "plain", 0.03, 0.02, 0.04, 0.5),
                          _compared("b", "plain", 0.05, 0.02, 0.01, 0.9)])
    for metric in ("challenge_metric",):
        for col in ("", "_low", "_high"):
            table[f"{metric}{col}"] = table[f"exact_match{col}"]
    table.loc[2:, ["exact_match", "exact_match_low", "exact_match_high"]] = [[0.87, 0.85, 0.89], [0.89, 0.86, 0.92]]
    plots.comparison(SimpleNamespace(name="zoom"), table, tmp_path)
    ax = figures[0].axes[0]
    low, high = ax.get_ylim()
    assert 0.7 < low < 0.81 and 0.92 < high <= 1.0  # zoomed to 0.81-0.92, not 0-1
    labels = ax.get_legend_handles_labels()[1]
    assert "untuned base 0.05 (off the axis)" in labels
    ax = plots.plt.figure().add_subplot()
    assert plots._zoom(ax, [0.5, 0.5, 0.5]) == pytest.approx((0.465, 0.535))  # at least 0.05 wide, padded
    assert plots._zoom(ax, [0.0, 1.0]) == pytest.approx((-0.02, 1.02))  # never past the 0-1 range the data has
    assert plots._zoom(ax, [-0.1, 0.4]) == pytest.approx((-0.05, 0.44))  # a t interval past 0 runs off the axis


@pytest.mark.parametrize("positive_worse", [True, False])
def test_report_leads_with_the_controls(tmp_path, positive_worse):
    folder = _study_folder(tmp_path / "studies" / "controls", "controls", _controls_table(positive_worse))
    (tmp_path / "setup.yaml").write_text("name: fix\n")
    (tmp_path / "bench").mkdir()
    html = build_report([folder], tmp_path / "setup.yaml", tmp_path / "bench", tmp_path / "report.html",
                        tmp_path / "all_runs", tmp_path / "summary.md")
    text = html.read_text()
    parser = _Tags()
    parser.feed(text)
    assert not parser.errors and not parser.stack
    summary = text.split('<h2 id="summary">Summary</h2>', 1)[1].split("<h2", 1)[0]
    controls = summary.split('id="controls"', 1)[1].split("</div>", 1)[0]
    assert summary.index('id="controls"') < summary.index("<table")  # before the verdict tables
    assert "Positive control, half_steps vs plain" in controls and "Negative control, shuffled vs grpo" in controls
    assert "what it learned matters" in controls  # shuffled came out worse than the learned policy
    assert "gated" not in controls  # the gated baseline vs plain is no control
    md = (tmp_path / "summary.md").read_text()
    if positive_worse:
        assert "came out worse, as it must" in controls and WARNING not in text and "WARNING" not in md
        assert '<div class="controls" id="controls">' in summary
    else:
        assert f'<span class="warning">⚠ Warning: {WARNING}</span>' in controls
        assert "half_steps vs plain (study controls): inconclusive" in controls
        assert '<div class="controls failed" id="controls">' in summary
        assert "**WARNING**" in md and WARNING in md
    assert '<a href="#controls">control verdicts</a>' in text
    rows = {r["variant"]: r for r in _rows(summary.split('id="summary-controls"', 1)[1])}
    assert rows["half_steps"]["verdict"] == ("worse" if positive_worse else "inconclusive")
    assert rows["shuffled"]["baseline"] == "grpo" and rows["shuffled"]["verdict"] == "worse"
    assert 'alt="controls: forest"' in summary and text.count("<img") == 1


def test_controls_are_found_without_a_controls_study():
    plain = pd.DataFrame([_reference("plain"), _compared("grpo", "plain", 0.05, 0.02, 0.01, 1.0)])
    assert controls_text([({"name": "mixers"}, plain)]) is None  # no control: no paragraph
    shuffled = pd.concat([plain, pd.DataFrame([_compared("rand", "grpo", 0.0, 0.02, 0.9, 0.01,
                                                         reward_control="shuffled")])], ignore_index=True)
    lines = controls_text([({"name": "policy"}, shuffled)])
    assert lines[0][0] == "warning" and "No positive control ran" in lines[0][1]  # untested: said so
    assert lines[1][0] == "note" and "rand vs grpo" in lines[1][1] and "not shown to matter" in lines[1][1]
    assert "worth" not in lines[1][1]  # no worth columns: no worth sentence
    worth = {f"worth_{m}_{p}": v for m, base in (("loss", 0.7), ("em", 0.2))
             for p, v in zip(("learned", "uniform", "best", "oracle"), (base, base + 0.01, base, base - 0.05))}
    with_worth = shuffled.assign(**worth)
    line = controls_text([({"name": "policy"}, with_worth)])[1][1]
    assert ("learned greedy / uniform / best single depth / per-position oracle: rand 0.700 / 0.710 / 0.700 / 0.650 "
            "(0.200 / 0.210 / 0.200 / 0.150); grpo 0.700 / 0.710 / 0.700 / 0.650") in line


# ---------------------------------------------------------------- runs shared by several studies

def _shared_studies(tmp_path: Path, same_eval: bool = True) -> list[Path]:
    """Two study folders written by `mawt table` whose indexes list some of the same runs, as the workflow writes
    them for identical run configs: mixers' plain is depths' plain, its `mixer-grpo` is depths' `depth-4`, and
    `vs-base` is depth-4's runs again but compared with the untuned base; `softmax` is mixers' own.
    same_eval=False: mixer-grpo's runs were evaluated again (other held-out scores, same run ids)."""
    out = tmp_path / "results" / "fix"
    depths = _write_study(out, "depths", {"plain": {"seeds": (0, 1, 2)},
                                          "depth-4": {"depth": 4, "mixer": "grpo", "seeds": (0, 1, 2)}})
    mixers = _write_study(out, "mixers", {"softmax": {"depth": 4, "mixer": "softmax", "seeds": (0, 1, 2)}})
    theirs, mine = json.loads(depths.read_text()), json.loads(mixers.read_text())
    depth4 = [r for r in theirs["runs"] if r["variant"] == "depth-4"]
    grpo = [dict(r, variant="mixer-grpo", baseline="plain") for r in depth4]
    if not same_eval:
        for run in grpo:
            again = Path(run["dir"]) / "eval-other" / "heldout.json"
            again.parent.mkdir()
            again.write_text(json.dumps(_heldout(0.6, int(run["seed"]) + 50, _items())))
            run["heldout"] = str(again)
    mine["runs"] = ([dict(r, baseline=None) for r in theirs["runs"] if r["variant"] == "plain"] + grpo
                    + [dict(r, baseline="plain") for r in mine["runs"]]
                    + [dict(r, variant="vs-base", baseline=BASE) for r in depth4])
    mixers.write_text(json.dumps(mine))
    for index in (depths, mixers):
        study_table(index, index.parent)
    return [depths.parent, mixers.parent]


def _difference(row) -> str:
    return f"{row['diff_exact_match']:+.2f} [{row['diff_exact_match_low']:+.2f}, {row['diff_exact_match_high']:+.2f}]"


def _summary_report(tmp_path: Path, folders: list[Path]) -> tuple[str, str, dict]:
    """The report's HTML summary section, summary.md, and the summary rows by (study, variant)."""
    (tmp_path / "setup.yaml").write_text("name: fix\n")
    (tmp_path / "bench").mkdir()
    before = {f: (f / "table.csv").read_bytes() for f in folders}
    html = build_report(folders, tmp_path / "setup.yaml", tmp_path / "bench", tmp_path / "report.html",
                        tmp_path / "all_runs", tmp_path / "summary.md").read_text()
    assert {f: (f / "table.csv").read_bytes() for f in folders} == before  # the report reads, never writes, them
    summary = html.split('<h2 id="summary">Summary</h2>', 1)[1].split("<h2", 1)[0]
    rows = {(r["study"], r["variant"]): r for table in _tables(summary) for r in table}
    return html, summary, rows


def test_a_run_shared_by_several_studies_is_shown_once_with_a_note(tmp_path):
    folders = _shared_studies(tmp_path)
    html, summary, rows = _summary_report(tmp_path, folders)
    depths, mixers = (pd.read_csv(f / "table.csv").set_index("variant") for f in folders)
    # table.csv keeps every study's own numbers: mixer-grpo is depth-4's runs against the same plain
    assert mixers.loc["mixer-grpo", "diff_exact_match"] == depths.loc["depth-4", "diff_exact_match"]
    assert _difference(mixers.loc["mixer-grpo"]) == _difference(depths.loc["depth-4"])
    # the summary: depth-4 (first in the study order) with its numbers, once; mixer-grpo with the note instead
    first, again = rows["depths", "depth-4"], rows["mixers", "mixer-grpo"]
    assert first["difference [95% CI]"] == _difference(depths.loc["depth-4"]) and first["exact match"]
    assert summary.count(_difference(depths.loc["depth-4"])) == 1
    assert again["difference [95% CI]"] == "same runs as depths/depth-4"
    assert again["exact match"] == again["baseline exact match"] == again["trainable params (variant / baseline)"] == ""
    # the verdict stays mixers' own: Holm-adjusted over mixers' compared variants, not depths'
    assert again["verdict"] == mixers.loc["mixer-grpo", "verdict_exact_match"]
    assert again["verdict (Holm-adjusted)"] == verdict_text(mixers.loc["mixer-grpo"])
    assert again["MDE"] == f"{mixers.loc['mixer-grpo', 'mde_exact_match']:.3f}"
    assert mixers.loc["mixer-grpo", "diff_exact_match_p_holm"] != depths.loc["depth-4", "diff_exact_match_p_holm"]
    # a variant of mixers' own, and the same runs against another baseline (another comparison), keep their numbers
    for variant in ("softmax", "vs-base"):
        assert rows["mixers", variant]["difference [95% CI]"] == _difference(mixers.loc[variant])
        assert "same runs" not in " ".join(rows["mixers", variant].values())
    assert rows["mixers", "vs-base"]["baseline"] == BASE
    # the baselines every study shares are stated once, above the tables
    shared = "plain in depths and mixers"
    assert summary.count(shared) == 1 and "base (untuned) in depths and mixers" in summary
    assert summary.index(shared) < summary.index('<table class="verdicts">')
    # summary.md: the same table and sentence
    md = (tmp_path / "summary.md").read_text()
    grpo_line = next(line for line in md.splitlines() if line.startswith("| mixers") and " mixer-grpo " in line)
    assert "same runs as depths/depth-4" in grpo_line and _difference(depths.loc["depth-4"]) not in grpo_line
    assert md.count(_difference(depths.loc["depth-4"])) == 1 and md.count(shared) == 1
    # each study's own table keeps every row, numbers included, with the note in the variant cell
    sections = {name: _rows(html.split(f'id="study-{name}"', 1)[1].split("<h2", 1)[0]) for name in ("depths", "mixers")}
    own = {r["variant"]: r for r in sections["mixers"]}
    assert set(own) == {BASE, "plain", "mixer-grpo (same runs as depths/depth-4)", "softmax",
                        "vs-base (same runs as depths/depth-4)"}
    depth4 = next(r for r in sections["depths"] if r["variant"] == "depth-4")
    em = "exact match [95% CI]"
    assert own["mixer-grpo (same runs as depths/depth-4)"][em] == depth4[em] != ""
    assert not any("same runs" in r["variant"] for r in sections["depths"])


def test_the_same_run_ids_evaluated_again_are_not_the_same_runs(tmp_path):
    folders = _shared_studies(tmp_path, same_eval=False)
    _, summary, rows = _summary_report(tmp_path, folders)
    mixers = pd.read_csv(folders[1] / "table.csv").set_index("variant")
    assert rows["mixers", "mixer-grpo"]["difference [95% CI]"] == _difference(mixers.loc["mixer-grpo"])
    assert rows["mixers", "mixer-grpo"]["exact match"] != ""
    assert "same runs as depths/depth-4" not in rows["mixers", "mixer-grpo"].values()


def test_studies_with_their_own_runs_keep_every_number(tmp_path):
    out = tmp_path / "results" / "fix"
    folders = []
    for name in ("depths", "mixers"):
        index = _write_study(out / name, name, {"plain": {}, "grpo": {"depth": 4, "mixer": "grpo"}})
        study_table(index, index.parent)
        folders.append(index.parent)
    html, summary, rows = _summary_report(tmp_path, folders)
    assert "same runs as" not in html and "same runs as" not in (tmp_path / "summary.md").read_text()
    # each study has its own plain runs; the untuned base is one evaluation (same id, data and scores) in both
    assert ("Shared baselines, the same runs in each study named (each study&#x27;s table keeps them): "
            "base (untuned) in depths and mixers.</p>") in summary
    assert all(r["exact match"] for r in rows.values()) and len(rows) == 2


CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def _chromium() -> str | None:
    """A Chromium on PATH, or None (tests never install system packages; README: how to get one)."""
    return next((shutil.which(n) for n in CHROMIUM if shutil.which(n)), None)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(results, tmp_path, cli):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium on PATH: install one (Debian/Ubuntu: apt-get install chromium) to render the "
                    "report in a real browser")
    root, indexes = results
    html = _report(root, indexes, tmp_path, cli)
    shot = tmp_path / "shot.png"
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            "--disable-dev-shm-usage", "--window-size=1280,1600"]
    proc = subprocess.run(args + [f"--screenshot={shot}", html.as_uri()], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3].mean(axis=-1) * 255
    assert pixels.shape == (1600, 1280) and pixels.std() > 10, "the page rendered content, not a blank canvas"
    dom = subprocess.run(args + ["--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0 and all(f'id="study-{s}"' in dom.stdout for s in STUDIES)
    assert dom.stdout.count("<img") == 11
    # at 1400 px the summary tables' verdict column is on screen and nothing needs a horizontal scroll bar:
    # a copy of the page with a script that writes the layout into the DOM (the report itself has no script)
    probe = tmp_path / "probe.html"
    probe.write_text(html.read_text().replace("</body>", """<script>
const out = [];
for (const table of document.querySelectorAll('table.verdicts')) {
  const th = [...table.querySelectorAll('th')].find(e => e.textContent === 'verdict');
  const box = table.parentElement;
  out.push([th.getBoundingClientRect().right, table.getBoundingClientRect().right, box.scrollWidth - box.clientWidth]);
}
document.body.setAttribute('data-layout', JSON.stringify({tables: out, page: document.documentElement.scrollWidth}));
</script></body>"""))
    wide = [a if not a.startswith("--window-size") else "--window-size=1400,900" for a in args]
    dom = subprocess.run(wide + ["--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=180)
    import html as html_lib

    layout = json.loads(html_lib.unescape(re.search(r'data-layout="([^"]*)"', dom.stdout).group(1)))
    assert len(layout["tables"]) == 2 and layout["page"] <= 1400
    for verdict_right, table_right, overflow in layout["tables"]:
        assert verdict_right < table_right <= 1400 and overflow == 0
