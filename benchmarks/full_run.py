"""Time the full default workflow and summarise it: the "Measured" tables of docs/workflow.md.

    python benchmarks/full_run.py --out results/bench/full_run.md            # in a fresh clone
    python benchmarks/full_run.py --env ATEN_CPU_CAPABILITY=default --out results/bench/generic.md
    python benchmarks/full_run.py --summarise-only --out results/bench/full_run.md   # a finished run
    python benchmarks/full_run.py --compare A/results B/results          # same verdicts?

Runs `snakemake --cores all` (plus any --config) in this checkout, measures its
wall time, then writes Markdown: the line naming the command, machine (CPU
model, threads, the kernel variables, torch's CPU capability) and commit
(benchmarks/markdown.py; as the jobs' run.json recorded them), the wall time,
the CPU time of all processes against the jobs' own and Snakemake's own process, the
per-rule job time and peak memory from Snakemake's benchmark files, and
every study's comparisons (score, paired difference to the baseline,
Holm-adjusted verdict, MDE).

`--compare` reads two finished runs' table.csv files and lists, per study and
variant, both verdicts and whether they agree: the check that conclusions do
not depend on the machine or its kernels.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import markdown  # noqa: E402  (benchmarks/markdown.py)
from mawt.common.atomic import write_text  # noqa: E402
from mawt.analysis.comparisons import design, verdict  # noqa: E402
from mawt.analysis.display import divergence_text, fmt_p, probe_text, worth_text  # noqa: E402
from mawt.analysis.summary import planted_recovery  # noqa: E402
from mawt.common.environment import environment  # noqa: E402
from mawt.analysis.results import read_benchmark  # noqa: E402

# the columns of the written tables (docs/workflow.md's copies: tested)
RULE_COLUMNS = ["rule", "jobs", "total_s", "mean_s", "max_s", "peak_rss_mb"]
STUDY_COLUMNS = ["study", "variant", "trainable params", "exact match [95% CI]", "answer loss", "vs baseline", "Holm p",
                 "verdict", "MDE", "selector entropy", "worth loss (learned / uniform / best / oracle)",
                 "worth EM (learned / uniform / best / oracle)", "probe: worth loss / EM", "policy: worth loss",
                 "depth divergence (JSD bits / A / B)", "planted gain recovered"]
PLAN_COLUMNS = ["study", "compared", "measured MDE (median)", "planned from the other studies", "ratio",
                "planned from its own run", "seeds for MDE <= margin"]


def per_rule(bench: Path) -> pd.DataFrame:
    rows = []
    for tsv in sorted(bench.rglob("*.tsv")):
        b = read_benchmark(tsv)
        if b:
            rel = tsv.relative_to(bench)
            parts = rel.parts[1:]  # <setup>/<rule>/<job>.tsv or <setup>/<rule>.tsv
            rows.append({"rule": parts[0] if len(parts) > 1 else rel.stem, **b})
    jobs = pd.DataFrame(rows)
    table = jobs.groupby("rule").agg(jobs=("seconds", "count"), total_s=("seconds", "sum"),
                                     mean_s=("seconds", "mean"), max_s=("seconds", "max"),
                                     peak_rss_mb=("max_rss_mb", "max"))
    return table.sort_values("total_s", ascending=False).round(1).reset_index()[RULE_COLUMNS]


def jobs_cpu_seconds(bench: Path) -> float:
    """CPU seconds of every job's processes, from the `cpu_time` column of Snakemake's benchmark files
    (psutil samples of each job's process tree: the work itself)."""
    return float(sum(pd.read_csv(t, sep="\t")["cpu_time"].iloc[-1] for t in sorted(bench.rglob("*.tsv"))))


def run_measured(cmd: list[str], env: dict | None = None, every: float = 0.2) -> tuple[int, float, float, float]:
    """Run `cmd`: its exit status, wall seconds, the CPU seconds of its whole process tree (getrusage
    of the waited-for children) and of its own process alone (psutil, sampled every `every` seconds
    until it exits: the command's threads, not its child processes)."""
    import psutil  # Snakemake's own dependency

    started, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd, env=env)
    own, watched = 0.0, psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            times = watched.cpu_times()
        except psutil.Error:  # exited between poll and sample
            break
        own = times.user + times.system
        time.sleep(every)
    proc.wait()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return proc.returncode, wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), own


def cpu_line(total: float, jobs: float, own: float) -> str:
    """Where a run's CPU went: the jobs' own work (their benchmark files), Snakemake's own process (DAG,
    scheduling, the `run:` rules it runs in threads), and the rest (a job's start-up before its first
    benchmark sample: the interpreter, torch and transformers imports, the shell)."""
    rest = total - jobs - own
    return (f"CPU: **{total:.0f} s** in all; the jobs {jobs:.0f} s (benchmark files); Snakemake's own process "
            f"{own:.0f} s (**{100 * own / total:.0f}%**: DAG, scheduling, its `run:` rules); the rest {rest:.0f} s "
            f"({100 * rest / total:.0f}%: the jobs' start-up before their first benchmark sample)")


def _ci(row, metric: str, prefix: str = "") -> str:
    return f"{row[prefix + metric]:+.3f}" if prefix else \
        f"{row[metric]:.3f} [{row[metric + '_low']:.3f}, {row[metric + '_high']:.3f}]"


def _number(value, fmt: str, missing: str) -> str:
    return missing if value is None or pd.isna(value) else fmt.format(value)


def study_rows(results: Path) -> pd.DataFrame:
    """Every compared variant of every study: score, difference to its baseline, Holm verdict, MDE."""
    rows = []
    for csv in sorted(results.glob("*/studies/*/table.csv")):
        table = pd.read_csv(csv)
        for _, row in table.iterrows():
            entry = {"study": csv.parent.name, "variant": row["variant"],
                     "trainable params": _number(row.get("trainable_parameters"), "{:,.0f}", "0"),
                     "exact match [95% CI]": _ci(row, "exact_match"), "answer loss": f"{row['heldout_answer_loss']:.3f}",
                     # held-out, at the answer-predicting positions (log D: uniform); MAWT variants with a selector
                     "selector entropy": _number(row.get("selector_entropy"), "{:.3f}", ""),
                     # what the depth choice is worth (mawt/evaluation/worth.py): hard choices in the last layer
                     "worth loss (learned / uniform / best / oracle)": worth_text(row, "loss", "{:.3f}"),
                     "worth EM (learned / uniform / best / oracle)": worth_text(row, "em", "{:.3f}"),
                     # the input-only reference (mawt/evaluation/probe.py) and the trained policy's own
                     # probabilities (worth `policy`); how far the depths moved apart (divergence.py)
                     "probe: worth loss / EM": probe_text(row),
                     "policy: worth loss": _number(row.get("worth_loss_policy"), "{:.3f}", ""),
                     "depth divergence (JSD bits / A / B)": divergence_text(row),
                     # a planted control (mawt.plant, docs/grpo.md): its verdict is this share, not exact match
                     "planted gain recovered": (f"{planted_recovery(row):.0%}" if isinstance(row.get("plant"), str)
                                                and row["plant"] != "none" else "")}
            if isinstance(row.get("baseline"), str):
                entry.update({
                    "vs baseline": f"{row['diff_exact_match']:+.3f} [{row['diff_exact_match_low']:+.3f}, "
                                   f"{row['diff_exact_match_high']:+.3f}] ({row['baseline']})",
                    "Holm p": fmt_p(row["diff_exact_match_p_holm"]),
                    "verdict": verdict(row, "exact_match"),  # a floor has no MDE: ""
                    "MDE": _number(row.get("mde_exact_match"), "{:.3f}", "")})
            rows.append(entry)
    return pd.DataFrame(rows, columns=STUDY_COLUMNS).fillna("")


def plan_check(results: Path, setup_name: str = "micro") -> pd.DataFrame:
    """Each study's measured MDE (median over its comparisons) against `mawt plan`'s prediction from the
    OTHER studies' variance components (a pilot predicting a new study), and from its own."""
    from mawt.studies.plan import plan
    from mawt.studies.setup import load_setup
    from mawt.studies.study import load_studies

    setup = load_setup(setup_name)
    studies = load_studies(setup, setup.get("studies"))
    others = plan(setup, studies, root=str(results), source="others").set_index("study")
    own = plan(setup, studies, root=str(results), source="auto").set_index("study")
    rows = []
    for csv in sorted((results / setup_name / "studies").glob("*/table.csv")):
        d = design(pd.read_csv(csv))
        name = csv.parent.name
        if name not in others.index or "exact_match" not in d["mde"]:
            continue
        measured, predicted = d["mde"]["exact_match"], others.loc[name, "planned MDE"]
        rows.append({"study": name, "compared": d["compared"], "measured MDE (median)": f"{measured:.3f}",
                     "planned from the other studies": f"{predicted:.3f}", "ratio": f"{predicted / measured:.2f}",
                     "planned from its own run": f"{own.loc[name, 'planned MDE']:.3f}",
                     "seeds for MDE <= margin": d["seeds_needed"] or "> 100"})
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def compare(a: Path, b: Path) -> pd.DataFrame:
    rows = []
    for csv in sorted(a.glob("*/studies/*/table.csv")):
        other = b / csv.relative_to(a)
        if not other.exists():
            continue
        left, right = pd.read_csv(csv).set_index("variant"), pd.read_csv(other).set_index("variant")
        for variant, row in left.iterrows():
            if not isinstance(row.get("baseline"), str) or variant not in right.index:
                continue
            mine, theirs = verdict(row, "exact_match"), verdict(right.loc[variant], "exact_match")
            rows.append({"study": csv.parent.name, "variant": variant, "baseline": row["baseline"],
                         "A: diff, verdict": f"{row['diff_exact_match']:+.3f} {mine}",
                         "B: diff, verdict": f"{right.loc[variant, 'diff_exact_match']:+.3f} {theirs}",
                         "same verdict": "yes" if mine == theirs else "NO"})
    return pd.DataFrame(rows, columns=["study", "variant", "baseline", "A: diff, verdict", "B: diff, verdict",
                                       "same verdict"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/bench/full_run.md")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE for the workflow's environment")
    p.add_argument("--config", nargs="*", default=[], help="passed to snakemake --config")
    p.add_argument("--summarise-only", action="store_true", help="summarise the finished run under results/")
    p.add_argument("--compare", nargs=2, metavar=("RESULTS_A", "RESULTS_B"))
    a = p.parse_args(argv)
    if a.compare:
        table = compare(Path(a.compare[0]), Path(a.compare[1]))
        same = table["same verdict"] == "yes"
        floors = int((same & table["A: diff, verdict"].str.endswith(" floor")).sum())  # agree, but nothing tested
        text = (f"# Verdicts: {a.compare[0]} (A) vs {a.compare[1]} (B)\n\n" + table.to_markdown(index=False)
                + f"\n\n{same.sum()} of {len(table)} comparisons agree"
                + (f" ({floors} of them at the floor in both: nothing tested)" if floors else "") + ".\n")
        write_text(Path(a.out), text)
        print(text)
        return 0
    env = {**os.environ, **dict(kv.split("=", 1) for kv in a.env)}
    wall = None
    if not a.summarise_only:
        cmd = ["snakemake", "--cores", "all"] + (["--config", *a.config] if a.config else [])
        returncode, wall, cpu, own = run_measured(cmd, env)
        if returncode:
            print(f"snakemake failed (exit {returncode}) after {wall:.0f} s", file=sys.stderr)
            return returncode
    # the machine as the jobs saw it (a run's metadata: kernel variables apply to the jobs)
    first = next(iter(sorted(Path("results").glob("*/runs/*/run.json"))), None)
    machine = json.loads(first.read_text())["environment"] if first else environment()
    lines = []
    if wall is not None:
        lines += [f"`snakemake --cores all{' --config ' + ' '.join(a.config) if a.config else ''}`: "
                  f"**{wall / 60:.1f} min** wall ({wall:.0f} s)" + (f", with {' '.join(a.env)}" if a.env else ""), "",
                  cpu_line(cpu, jobs_cpu_seconds(Path("results/benchmarks")), own), ""]
    lines += [f"{os.cpu_count()} CPU cores; machine, kernels and commit "
              + (f"as the jobs recorded them ({first})" if first else "as this process sees them (no run.json)"), "",
              "## Jobs (Snakemake benchmark files)", "", per_rule(Path("results/benchmarks")).to_markdown(index=False),
              "", "## Studies (exact match; verdicts Holm-adjusted)", "",
              study_rows(Path("results")).to_markdown(index=False), "",
              "## Power plan vs measurement (`python -m mawt plan --setup micro`)", "",
              plan_check(Path("results")).to_markdown(index=False), ""]
    text = markdown.document("Full workflow run", "\n".join(lines), markdown.command(__file__, argv), env=machine)
    write_text(Path(a.out), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
