"""How many jobs each shipped setup runs: Snakemake's own dry run, not a count by hand.

    python benchmarks/job_counts.py --out docs/results/job_counts.md

For each shipped setup (mawt/setups/*.yaml) with its default studies, runs
`snakemake -n` in an empty folder and prints one table: a row per rule, a column
per setup (Snakemake's "Job stats"). For `paper` it also checks that the power
plan (`python -m mawt plan --setup paper`) counts as many trainings and trained-run
evaluations as the dry run schedules. docs/paper.md quotes them and the README links them;
tests/test_benchmarks.py re-runs the dry runs and compares them with the file.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import markdown  # noqa: E402

SETUPS = ("micro", "paper_standin", "paper")
COLUMNS = ["rule", *SETUPS]


def dry_run_counts(setup: str) -> dict[str, int]:
    """Snakemake's "Job stats" of a dry run of `setup` (its default studies) in an empty folder."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "assets").symlink_to(ROOT / "assets")  # the setups' relative paths, as from the repo root
        cmd = ["snakemake", "-n", "-s", str(ROOT / "Snakefile"), "-d", tmp, "--configfile",
               str(ROOT / "workflow" / "config.yaml"), "--config", f"setup={setup}", f"ablations={ROOT / 'ablations'}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"snakemake -n --config setup={setup} failed:\n{proc.stderr[-2000:]}")
    stats = proc.stdout.split("Job stats:", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, flags=re.M)}


def plan_totals(setup: str) -> tuple[int, int]:
    """(trainings, evaluations) the power plan counts for `setup`'s default studies."""
    from mawt.studies.plan import plan
    from mawt.studies.setup import load_setup
    from mawt.studies.study import load_studies

    s = load_setup(setup)
    frame = plan(s, load_studies(s, s.get("studies"), ROOT / "ablations"))
    return int(frame["new trainings"].sum()), int(frame["new evaluations"].sum())


def render(counts: dict[str, dict[str, int]]) -> str:
    rules = list(dict.fromkeys(r for c in counts.values() for r in c if r != "total")) + ["total"]
    rows = [[f"`{r}`" if r != "total" else "**total**", *(counts[s].get(r, 0) for s in SETUPS)] for r in rules]
    return markdown.table(COLUMNS, "l" + "r" * len(SETUPS), rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "job_counts.md")
    a = ap.parse_args(argv)
    counts = {s: dry_run_counts(s) for s in SETUPS}
    trainings, evaluations = plan_totals("paper")
    paper = counts["paper"]
    if (trainings, evaluations) != (paper["train"], paper["train"]):
        raise SystemExit(f"the power plan counts {trainings} trainings and {evaluations} evaluations, the dry run "
                         f"schedules {paper['train']} trainings")
    text = (render(counts) + "\n\n"
            f"The power plan of `paper` (`python -m mawt plan --setup paper`) counts the same {trainings} trainings "
            f"and {evaluations} evaluations of trained runs; `eval_heldout` adds the untuned base on each split (and "
            "paper's native-thinking reference), `lm_eval` the untuned base.")
    md = markdown.write(a.out, "Jobs per shipped setup (Snakemake's dry run)", text, markdown.command(__file__, argv))
    print(text)
    print(f"\nwrote {markdown.shown(md)}")


if __name__ == "__main__":
    main()
