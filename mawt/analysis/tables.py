"""`mawt table`: one study's files, from the workflow's run index.

    runs.csv    one row per run (`mawt.analysis.results`)
    table.csv   one row per variant: scores, paired comparisons, side metrics (`mawt.analysis.comparisons`)
    table.md    the display table (`mawt.analysis.display`), the design and the notes
    long.csv    the tidy form: one row per (run, metric)
    study.json  the study's name, setup, description, YAML, design and every run's environment
    browser.csv every held-out item with each variant's answer (first seed) and correct seeds / seeds
    plots/      `mawt.analysis.plots`

The report (`mawt.analysis.report`) reads only these files: nothing is computed twice.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mawt.common.atomic import atomic_path
from mawt.analysis.comparisons import design, long_table, summarise
from mawt.analysis.display import NOTE, design_text, display_table
from mawt.common.layout import study_outputs
from mawt.analysis.results import StudyResults, load_results


def write_table(frame_or_text, path: Path) -> None:
    """Write through a temporary file so a crash never leaves a half-written table."""
    with atomic_path(path) as tmp:
        if isinstance(frame_or_text, str):
            tmp.write_text(frame_or_text)
        elif path.suffix == ".parquet":
            frame_or_text.to_parquet(tmp, index=False)
        else:
            frame_or_text.to_csv(tmp, index=False)


def browser(study: StudyResults) -> pd.DataFrame:
    """Held-out items x variants, one block per data split: the first seed's answer and
    "(correct seeds/seeds)" by the challenge metric."""
    blocks = []
    for data, runs in study.runs.groupby("data", dropna=False, sort=False):
        first = study.items[runs["run_id"].iloc[0]]
        frame = pd.DataFrame({"data": data, "#": range(len(first)), "challenge": first["challenge"],
                              "gold": first["answer"]})
        for variant in dict.fromkeys(runs["variant"]):
            ids = list(runs.loc[runs["variant"] == variant].sort_values("seed", na_position="first")["run_id"])
            correct = sum((study.items[r]["challenge_metric"] == 1).astype(int) for r in ids)
            answers = study.items[ids[0]]["prediction"]
            frame[variant] = [f"{a!s} ({c}/{len(ids)})" for a, c in zip(answers, correct, strict=True)]
        blocks.append(frame)
    return pd.concat(blocks, ignore_index=True)


def study_table(index_path: Path, out_dir: Path,
                plots: Path | None = None) -> pd.DataFrame:
    """Write every file of the study folder (see the module docstring); returns table.csv's frame."""
    study = load_results(index_path)
    table = summarise(study)
    files = study_outputs(out_dir)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_table(study.runs, files["runs"])
    write_table(table, files["table"])
    write_table(long_table(study), files["long"])
    write_table(browser(study), files["browser"])
    meta = {"name": study.name, "setup": study.setup, "description": study.description, "yaml": study.yaml,
            "design": design(table), "environments": study.environments}
    write_table(json.dumps(meta, indent=2, sort_keys=True) + "\n", files["study"])
    md = (f"# Study `{study.name}` ({study.setup} setup)\n\n"
          + (f"{study.description}\n\n" if study.description else "")
          + display_table(table).to_markdown(index=False, disable_numparse=True) + f"\n\n{design_text(table)}\n\n{NOTE}\n")
    write_table(md, files["markdown"])
    if plots is not None:
        from mawt.analysis.plots import study_plots

        study_plots(study, table, Path(plots))
    return table
