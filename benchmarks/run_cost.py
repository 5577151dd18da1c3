"""What one run of the default studies costs, at an older commit and at this checkout, side by side.

    python benchmarks/run_cost.py --old 22bb0ed          # ~6 min on 2 cores
    python benchmarks/run_cost.py --old 22bb0ed --seeds 8 --configs grpo4

One run = what the workflow does for it: its training, its held-out evaluation and every job
that leads there (config writers, job start-ups: imports, loading), as the commit's own
Snakefile schedules them. For each commit (the older one checked out in a `git worktree`, this
checkout as it is, uncommitted changes included) and each config, the workflow is run for real
in a fresh folder on the micro setup with one study of that config and --seeds seeds, with the
runs' held-out files as the only targets (no baselines, lm-eval, tables or report); the split
is prepared first, apart. The cost is the CPU time of Snakemake and every process it started
(rusage of the waited-for children: user + system), minus that of a dry run of the same targets
(parsing and the DAG, which a workflow pays once, not per run), divided by the seeds. The
commits alternate per config, so a drift of the machine's speed hits both.

Configs (the default studies' runs): `plain` (D=1, fixed: the baseline), `grpo4` (D=4, GRPO,
token credit: the shared run of depths, mixers, policy, controls, freezing), `grpo8` (D=8).
Writes results/bench/run_cost.md (benchmarks/markdown.py: the command, machine and commit).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

import markdown  # benchmarks/markdown.py

ROOT = markdown.ROOT
CONFIGS = {
    "plain": {"mawt": {"depth": 1, "mixer": "fixed"}},
    "grpo4": {"mawt": {"depth": 4, "mixer": "grpo"}},
    "grpo8": {"mawt": {"depth": 8, "mixer": "grpo"}},
}
COLUMNS = ["config", "seeds", "old CPU-s per run", "new CPU-s per run", "ratio new / old",
           "old wall s", "new wall s"]
TARGET = 0.4  # issue 29: at most 0.4x today's cost per run


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _worktree(commit: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), commit], check=True,
                   capture_output=True, text=True)
    return where


def _setup(tree: Path, seeds: int, folder: Path) -> Path:
    """The tree's own micro setup, with this benchmark's seeds and its base at an absolute path."""
    setup = yaml.safe_load((tree / "mawt" / "setups" / "micro.yaml").read_text())
    setup.update(seeds=list(range(seeds)), studies=["cost"])
    setup["base_model"] = str(tree / "assets" / "micro_base")
    path = folder / "setup.yaml"
    path.write_text(yaml.safe_dump(setup, sort_keys=False))
    return path


def _targets(tree: Path, setup: Path, ablations: Path) -> tuple[list[str], str]:
    """The study's runs' held-out files and the split folder, as the tree's own code names them."""
    code = (
        "import sys, json\n"
        "from mawt.common.layout import Layout, HELDOUT, HELDOUT_SPLIT\n"
        "from mawt.studies.setup import load_setup\n"
        "from mawt.studies.study import load_studies, run_config, run_id, eval_id, data_id\n"
        "s = load_setup(sys.argv[1]); st = load_studies(s, ['cost'], sys.argv[2])['cost']\n"
        "L = Layout(s['name']); out = []\n"
        "for seed in st.seeds:\n"
        "    c = run_config(s, st, 'config', seed, base_model=s['base_model'])\n"
        "    out.append(L.eval_file(run_id(c), eval_id(c['eval']), HELDOUT))\n"
        "print(json.dumps([out, L.split_file(data_id(c['data']), HELDOUT_SPLIT)]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([sys.executable, "-c", code, str(setup), str(ablations)], capture_output=True, text=True,
                          env=env, cwd=tree)
    if proc.returncode:
        raise SystemExit(f"run_cost: could not resolve the runs at {tree}:\n{proc.stderr}")
    targets, split = json.loads(proc.stdout)
    return targets, split


def _snakemake(tree: Path, work: Path, setup: Path, ablations: Path, targets: list[str], *extra: str
               ) -> tuple[float, float]:
    """CPU seconds of Snakemake and everything it started, and wall seconds."""
    cmd = ["snakemake", *targets, "-s", str(tree / "Snakefile"), "-d", str(work), "--cores", "2", "-q", *extra,
           "--configfile", str(tree / "workflow" / "config.yaml"),
           "--config", f"setup={setup}", f"ablations={ablations}"]  # --config last: it takes every word after it
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    before, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - before
    if proc.returncode:
        raise SystemExit(f"run_cost: snakemake failed at {tree}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return cpu, wall


def measure(tree: Path, config: str, seeds: int, scratch: Path) -> tuple[float, float]:
    """(CPU-s per run, wall s) of `seeds` runs of `config` through the workflow of `tree`."""
    folder = Path(tempfile.mkdtemp(prefix=f"{config}-", dir=scratch))
    ablations = folder / "ablations"
    ablations.mkdir()
    study = {"name": "cost", "description": f"run cost: {config}", "defaults": {"trainable": "last"},
             "variants": {"config": CONFIGS[config]}}
    (ablations / "cost.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    setup = _setup(tree, seeds, folder)
    targets, split = _targets(tree, setup, ablations)
    work = folder / "work"
    _snakemake(tree, work, setup, ablations, [split])  # the split: shared by every run, not counted
    parse, _ = _snakemake(tree, work, setup, ablations, targets, "-n")
    cpu, wall = _snakemake(tree, work, setup, ablations, targets)
    missing = [t for t in targets if not (work / t).is_file()]
    if missing:
        raise SystemExit(f"run_cost: {tree}: the workflow did not write {missing}")
    return (cpu - parse) / seeds, wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, help="the older commit (a git revision) to compare with")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("--seeds", type=int, default=3, help="runs per config and commit (default 3)")
    parser.add_argument("--out", default=str(ROOT / "results" / "bench" / "run_cost.md"))
    args = parser.parse_args(argv)
    configs = args.configs.split(",")
    bad = [c for c in configs if c not in CONFIGS]
    if bad or args.seeds < 1:
        parser.error(f"--configs: unknown {bad} (allowed: {', '.join(CONFIGS)})" if bad else "--seeds must be >= 1")
    scratch = Path(tempfile.mkdtemp(prefix="run_cost-"))
    old_tree = _worktree(args.old, scratch / "old")
    rows = []
    try:
        for config in configs:
            old_cpu, old_wall = measure(old_tree, config, args.seeds, scratch)
            new_cpu, new_wall = measure(ROOT, config, args.seeds, scratch)
            rows.append([f"`{config}`", args.seeds, f"{old_cpu:.1f}", f"{new_cpu:.1f}", f"{new_cpu / old_cpu:.2f}",
                         f"{old_wall:.0f}", f"{new_wall:.0f}"])
            print(rows[-1], flush=True)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old_tree)], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
    old_sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.old], capture_output=True,
                             text=True).stdout.strip()
    worst = max(float(r[4]) for r in rows)
    body = (f"Old: commit {old_sha}; new: this checkout (its commit is on the line above). CPU seconds of "
            "Snakemake and every process it started for the runs' held-out files, minus a dry run's, per run "
            "(benchmarks/run_cost.py's docstring).\n\n" + markdown.table(COLUMNS, "lrrrrrr", rows)
            + f"\n\nTarget: ratio <= {TARGET} for every config: "
            + ("met" if worst <= TARGET else f"NOT met (worst {worst:.2f})") + ".")
    markdown.write(args.out, "Cost of one run: old commit vs this checkout", body, markdown.command(__file__))
    print("\n" + body + f"\n\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
