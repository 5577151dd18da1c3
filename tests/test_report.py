"""Statistics, study tables, plots and the HTML report (from a fixture of run results; no training)."""

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from mawt import MAWTConfig, patch_model
from mawt.micro import MicroConfig, build_model, train_tokenizer
from mawt.report import build_report
from mawt.run import attention_example
from mawt.stats import bootstrap_ci, paired_difference_ci
from mawt.tables import load_study, study_table

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- statistics


def test_bootstrap_interval_contains_the_mean_and_narrows_with_more_data():
    rng = np.random.default_rng(0)
    small = rng.binomial(1, 0.6, size=(2, 40))
    large = rng.binomial(1, 0.6, size=(8, 640))
    a, b = bootstrap_ci(small), bootstrap_ci(large)
    assert a.low <= a.mean <= a.high and b.low <= b.mean <= b.high
    assert a.mean == pytest.approx(small.mean()) and b.mean == pytest.approx(large.mean())
    assert (b.high - b.low) < (a.high - a.low) / 3
    assert 0.55 < b.mean < 0.65 and b.low < 0.6 < b.high


def test_bootstrap_hand_checked_values():
    # all-equal scores: no variability, zero-width interval at the value
    assert bootstrap_ci(np.ones((3, 10))) == bootstrap_ci(np.ones((3, 10)))
    ci = bootstrap_ci(np.ones((3, 10)))
    assert (ci.mean, ci.low, ci.high) == (1.0, 1.0, 1.0)
    # one seed, items [1, 0, 1, 1]: mean 0.75; a 4-item resample mean is k/4, so the bounds are on that grid
    ci = bootstrap_ci([[1, 0, 1, 1]])
    assert ci.mean == 0.75 and ci.low in (0.25, 0.5) and ci.high == 1.0
    # seed-level spread is in the interval: seed 0 all wrong, seed 1 all right
    ci = bootstrap_ci([[0] * 50, [1] * 50])
    assert ci.mean == 0.5 and ci.low == 0.0 and ci.high == 1.0
    # deterministic for a given seed
    assert bootstrap_ci([[1, 0, 1, 0, 0]], seed=3) == bootstrap_ci([[1, 0, 1, 0, 0]], seed=3)


def test_paired_difference_of_identical_runs_is_exactly_zero():
    scores = np.random.default_rng(1).binomial(1, 0.5, size=(2, 50))
    d = paired_difference_ci(scores, scores.copy())
    assert (d.mean, d.low, d.high) == (0.0, 0.0, 0.0) and not d.excludes_zero


def test_paired_difference_is_paired_and_checks_shapes():
    rng = np.random.default_rng(2)
    base = rng.binomial(1, 0.5, size=(2, 60))
    better = base.copy()
    better[:, :30] = 1  # strictly better on half the items, never worse
    d = paired_difference_ci(better, base)
    assert d.mean == pytest.approx((better - base).mean()) and d.low > 0 and d.excludes_zero
    # an unpaired view of the same data would be far wider: pairing removes the item variance
    unpaired = bootstrap_ci(better).low - bootstrap_ci(base).high
    assert d.low > unpaired
    # the untuned base (one row) is compared with every seed
    one = paired_difference_ci(base, base[:1])
    assert one.mean == pytest.approx((base - base[:1]).mean())
    with pytest.raises(ValueError, match="same items"):
        paired_difference_ci(base, base[:, :10])
    with pytest.raises(ValueError, match="same seeds"):
        paired_difference_ci(np.zeros((3, 60)), base)


# ---------------------------------------------------------------- a fixture of run results

STUDIES = {
    "depths": {"variants": {"plain": (1, "fixed"), "depth-2": (2, "grpo"), "depth-4": (4, "grpo")}},
    "mixing": {"variants": {"plain": (1, "fixed"), "grpo": (4, "grpo"), "softmax": (4, "softmax"),
                            "gumbel": (4, "gumbel")}},
}
SKILL = {"plain": 0.4, "depth-2": 0.45, "depth-4": 0.9, "grpo": 0.9, "softmax": 0.42, "gumbel": 0.5}
N_ITEMS = 30


def _heldout(p: float, seed: int, items: list[dict]) -> dict:
    rng = np.random.default_rng(seed)
    recs = []
    for item in items:
        ok = bool(rng.random() < p)
        recs.append({**item, "prediction": item["answer"] if ok else "zzz", "exact_match": ok, "challenge_correct": ok})
    em = sum(r["exact_match"] for r in recs) / len(recs)
    return {"n": len(recs), "exact_match": em, "challenge_metric": em, "heldout_answer_loss": 2.0 - p,
            "items": recs, "model": "fixture"}


def _write_run(run_dir: Path, bench: Path, variant: str, depth: int, mixer: str, seed: int, items) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "heldout.json").write_text(json.dumps(_heldout(SKILL[variant], hash((variant, seed)) % 1000, items)))
    (run_dir / "lmeval.json").write_text(json.dumps({"tasks": {"verbal_heldout": {
        "exact_match": SKILL[variant], "exact_match_stderr": 0.05}}}))
    usage = {f"depth_usage_{d}": 1 / depth for d in range(depth)}
    final = {**usage, **({"selector_entropy": float(np.log(depth))} if depth > 1 else {})}
    config = {"mawt": {"depth": depth, "mixer": mixer, "layers": [-1]}, "trainable": "last",
              "train": {"seed": seed, "group_size": 4, "learning_rate": 2e-3, "steps": 30}}
    (run_dir / "run.json").write_text(json.dumps({
        "config": config, "seed": seed, "trainable_parameters": 1000 * depth, "train_seconds": 10.0 + depth,
        "final_selection": final, "environment": {"git_commit": "abc123", "versions": {"torch": "2.13.0"}}}))
    lines = [{"step": s, "loss_ce": 3.0 / s, **usage, **({"reward_mean": -3.0 / s, "selector_entropy": 1.0}
                                                         if mixer == "grpo" else {})} for s in range(1, 31, 5)]
    (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    bench.parent.mkdir(parents=True, exist_ok=True)
    bench.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                     f"{12.5 + depth:.2f}\t0:00:12\t{500 + 10 * depth:.2f}\t0\t0\t0\t0\t0\t90\t11\n")


@pytest.fixture(scope="module")
def attention_npz(tmp_path_factory):
    """A real .npz from `attention_example` on a tiny, randomly initialised MAWT micro model."""
    tmp = tmp_path_factory.mktemp("att")
    tok = train_tokenizer()
    torch.manual_seed(0)
    model = patch_model(build_model(MicroConfig(layers=2, hidden=32, heads=4, kv_heads=2, intermediate=64), tok),
                        MAWTConfig(depth=3, mixer="grpo", init_noise=0.5))
    model.save_pretrained(tmp / "model")
    tok.save_pretrained(tmp / "model")
    (tmp / "heldout.jsonl").write_text(json.dumps({"challenge": "Shift each letter of cab by two.", "answer": "edc"})
                                       + "\n")
    info = attention_example(tmp / "model", tmp / "heldout.jsonl", tmp / "attention.npz")
    return tmp / "attention.npz", info


@pytest.fixture(scope="module")
def results(tmp_path_factory, attention_npz):
    """results/<setup>/ as the workflow leaves it, filled with made-up scores (items differ per seed)."""
    root = tmp_path_factory.mktemp("results")
    out, bench = root / "results" / "fix", root / "results" / "benchmarks" / "fix"
    items = [{"challenge": f"Shift each letter of w{i} by two.", "answer": f"a{i}"} for i in range(N_ITEMS)]
    (out / "runs" / "base").mkdir(parents=True)
    (out / "runs" / "base" / "heldout.json").write_text(json.dumps(_heldout(0.05, 7, items)))
    (out / "runs" / "base" / "lmeval.json").write_text(json.dumps({"tasks": {"verbal_heldout": {
        "exact_match": 0.05, "exact_match_stderr": 0.04}}}))
    indexes = []
    for study, spec in STUDIES.items():
        runs = []
        for variant, (depth, mixer) in spec["variants"].items():
            for seed in (0, 1):
                run_id = f"{study}-{variant}-{seed}"
                _write_run(out / "runs" / run_id, bench / "train" / f"{run_id}.tsv", variant, depth, mixer, seed,
                           items)
                runs.append({"variant": variant, "seed": seed, "run_id": run_id, "dir": str(out / "runs" / run_id),
                             "bench": str(bench / "train" / f"{run_id}.tsv")})
        att = out / "runs" / f"{study}-{list(spec['variants'])[1]}-0" / "attention.npz"
        shutil.copy(attention_npz[0], att)
        index = out / "studies" / study / "runs.json"
        index.parent.mkdir(parents=True)
        index.write_text(json.dumps({
            "study": study, "setup": "fix", "description": f"the {study} study <fixture>",
            "yaml": yaml.safe_dump({"name": study, "seeds": [0, 1]}), "runs": runs, "attention": str(att),
            "base": {"heldout": str(out / "runs" / "base" / "heldout.json"),
                     "lmeval": str(out / "runs" / "base" / "lmeval.json")}}))
        indexes.append(index)
    (bench / "prepare_data.tsv").write_text((bench / "train" / "depths-plain-0.tsv").read_text())
    (root / "setup.yaml").write_text("name: fix\n")
    return root, indexes


def test_attention_example_saves_the_5d_maps_of_one_item(attention_npz):
    path, info = attention_npz
    data = np.load(path)
    att = data["attention"].astype(np.float32)
    assert att.shape == (4, len(data["tokens"]), len(data["tokens"]), 3) and info["shape"][-1] == 3
    assert np.allclose(att.sum(axis=2), 1.0, atol=2e-3)  # every query row of every slice is a distribution
    assert np.abs(np.triu(att[..., 0], k=1)).max() == 0  # causal
    assert int(data["layer"]) == 1 and 0 <= int(data["head"]) < 4 and str(data["answer"]) == "edc"


def test_attention_example_refuses_a_model_without_mawt(tmp_path):
    tok = train_tokenizer()
    build_model(MicroConfig(layers=1, hidden=32, heads=4, kv_heads=2, intermediate=64), tok).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    (tmp_path / "h.jsonl").write_text(json.dumps({"challenge": "x", "answer": "y"}) + "\n")
    proc = subprocess.run([sys.executable, "-m", "mawt", "attention", "--model", str(tmp_path), "--heldout",
                           str(tmp_path / "h.jsonl"), "--out", str(tmp_path / "a.npz")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "has no MAWT layer" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "a.npz").exists()


def test_study_table_has_intervals_differences_and_costs(results):
    root, indexes = results
    out = root / "tables" / "depths"
    table = study_table(indexes[0], out, n_boot=500).set_index("variant")
    assert list(table.index) == ["base (untuned)", "plain", "depth-2", "depth-4"]
    for v in table.index:
        assert table.loc[v, "exact_match_low"] <= table.loc[v, "exact_match"] <= table.loc[v, "exact_match_high"]
    study = load_study(indexes[0])
    for v in ("plain", "depth-4"):
        assert table.loc[v, "exact_match"] == pytest.approx(study.score_matrix(v, "exact_match").mean())
    assert table.loc["depth-4", "diff_exact_match"] == pytest.approx(
        table.loc["depth-4", "exact_match"] - table.loc["plain", "exact_match"])
    assert bool(table.loc["depth-4", "diff_exact_match_significant"])  # 0.9 vs 0.4 on 60 paired item-seeds
    assert pd.isna(table.loc["plain", "diff_exact_match"])
    assert table.loc["depth-4", "peak_mem_mb"] == 540 and table.loc["depth-4", "trainable_parameters"] == 4000
    assert table.loc["depth-4", "selector_entropy"] == pytest.approx(np.log(4))
    assert table.loc["depth-2", "lm_eval:verbal_heldout:exact_match_stderr"] == 0.05
    md = (out / "table.md").read_text()
    assert "| depth-4 " in md and " *" in md and "(baseline)" in md and "0.050" in md
    long = pd.read_csv(out / "long.csv")
    assert {"study", "variant", "seed", "depth", "mixer", "metric", "value"} <= set(long.columns)
    assert len(long[(long.metric == "exact_match") & (long.variant == "depth-2")]) == 2


def _report(root, indexes, tmp_path):
    for index in indexes:
        proc = subprocess.run([sys.executable, "-m", "mawt", "table", "--index", str(index), "--out-dir",
                               str(index.parent), "--plots", str(index.parent / "plots")],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    html = tmp_path / "report.html"
    build_report(indexes, root / "setup.yaml", root / "results" / "benchmarks" / "fix", html, tmp_path / "all_runs")
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


def test_report_has_every_study_table_and_image_and_no_external_url(results, tmp_path):
    root, indexes = results
    html = _report(root, indexes, tmp_path)
    text = html.read_text()
    parser = _Tags()
    parser.feed(text)
    assert not parser.errors and not parser.stack, "tags are balanced"
    for study in STUDIES:
        assert f'id="study-{study}"' in text
        plots = sorted(p.stem for p in (root / "results" / "fix" / "studies" / study / "plots").glob("*.png"))
        assert {"comparison", "training_curves", "slice_usage", "attention"} <= set(plots)
        assert all((root / "results" / "fix" / "studies" / study / "plots" / f"{p}.svg").exists() for p in plots)
    assert "depth_sweep" in [p.stem for p in (root / "results" / "fix" / "studies" / "depths" / "plots").glob("*")]
    images = [attrs for tag, attrs in parser.tags if tag == "img"]
    assert len(images) == 4 + 5 and all(a["src"].startswith("data:image/png;base64,") for a in images)
    assert not re.search(r"(src|href)=\"(?!data:|#)", text) and "http://" not in text and "https://" not in text
    assert "the depths study &lt;fixture&gt;" in text  # escaped
    # summary: the best variant of each study against plain, with its interval and verdict
    summary = text.split("<h2>Summary</h2>", 1)[1].split("<h2", 1)[0]
    assert "depth-4" in summary and "better than plain" in summary and "grpo" in summary
    # environment and jobs
    assert "abc123" in text and "prepare_data" in text and "Held-out browser" in text
    tidy = pd.read_parquet(tmp_path / "all_runs.parquet")
    assert set(tidy["study"]) == set(STUDIES) and len(tidy) == len(pd.read_csv(tmp_path / "all_runs.csv"))


def _chromium() -> str | None:
    """Debian's chromium; installed with apt-get when missing (root, Debian/Ubuntu), else None."""
    names = ("chromium", "chromium-browser", "google-chrome")
    found = next((shutil.which(n) for n in names if shutil.which(n)), None)
    if found or not shutil.which("apt-get") or os.geteuid() != 0:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]):
        try:
            subprocess.run(cmd, capture_output=True, timeout=900, env=env, check=False)
        except subprocess.TimeoutExpired:
            return None
    return next((shutil.which(n) for n in names if shutil.which(n)), None)


def test_report_renders_in_headless_chromium(results, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium and it cannot be installed here (needs root + apt-get + the Debian mirror)")
    root, indexes = results
    html = _report(root, indexes, tmp_path)
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
    assert dom.stdout.count("<img") == 9
