"""Runs that several studies share, so that the report shows each once.

A run id is the content hash of a run's training config (mawt/studies/study.py: `run_id`), so
studies that train the same config list the same runs under their own names: `depth-4` in
depths is `mixer-grpo` in mixers, `token` in policy, `last` in freezing; `plain`, `gated` and
the untuned base are in every study. The report knows a variant's runs from its study's
long.csv (`run_id`, `seed`, `data` and the run's held-out exact match, one row each): two
variants are the same runs when these agree run for run. The score is part of the identity
on purpose: a run evaluated under another study's `eval` section keeps its run id but not its
scores, and is not the same. A long.csv without `run_id` (older study folders) shares nothing.

What the report does with it (mawt/analysis/report.py, mawt/analysis/summary.py):
- the summary table shows a comparison once, in the first study of the setup's order; a
  later study's row with the same variant runs *and* the same baseline runs says "same runs
  as <study>/<variant>" where the difference is and leaves the scores out. Its verdict, MDE
  and seeds for MDE = margin stay: they are Holm-adjusted over that study's own compared
  variants, so the same runs can earn another verdict (or MDE) in another study. A row whose
  baseline runs differ is another comparison and keeps its numbers;
- each study's own table keeps every row (its comparisons need them) and marks a compared
  variant whose runs an earlier row showed with the same note in the variant cell;
- the baselines (rows compared with nothing: plain, its plain counterparts, the untuned base)
  are not marked row by row but stated once, at the top of the summary: which are the same
  runs in which studies. Marked, they would carry the same note in every study but the first,
  and they are no row of the summary table anyway. `gated` is compared with plain, so it is
  a comparison like the others: shown once, noted in the later studies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Shared:
    """Which rows of which studies repeat runs an earlier row showed; keys are (study, variant)."""

    runs: dict[tuple[str, str], str] = field(default_factory=dict)  # compared row -> "study/variant" (same runs)
    comparisons: dict[tuple[str, str], str] = field(default_factory=dict)  # same runs and same baseline runs
    baselines: list[str] = field(default_factory=list)  # "plain in depths and mixers": one per shared baseline


def note(where: str) -> str:
    """The mark of a row that repeats the runs of `where` ("study/variant")."""
    return f"same runs as {where}"


def _run_keys(long: pd.DataFrame) -> dict[str, tuple]:
    """variant -> its runs: sorted (run_id, seed, data, held-out exact match), one entry per run."""
    if "run_id" not in long or "metric" not in long:
        return {}
    scores = long[long["metric"] == "exact_match"]
    data = scores["data"] if "data" in scores else pd.Series("", index=scores.index)
    keys: dict[str, list] = {}
    for variant, rid, seed, split, value in zip(scores["variant"], scores["run_id"], scores["seed"], data,
                                                scores["value"], strict=True):
        keys.setdefault(variant, []).append((str(rid), str(seed), str(split), float(value)))
    return {variant: tuple(sorted(runs)) for variant, runs in keys.items()}


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _compared(row) -> bool:
    return not pd.isna(row.get("diff_exact_match", float("nan")))


def shared_runs(studies: list[tuple[dict, pd.DataFrame, pd.DataFrame]]) -> Shared:
    """(study meta, table.csv, long.csv) per study, in the setup's study order -> what repeats what."""
    shared = Shared()
    first_runs: dict[tuple, str] = {}  # runs -> the first row that showed them
    first_pair: dict[tuple, str] = {}  # (variant runs, baseline runs) -> the first summary row
    groups: dict[tuple, list[tuple[str, str, bool]]] = {}  # runs -> every (study, variant, compared) with them
    for study, table, long in studies:
        name, keys = study["name"], _run_keys(long)
        for _, row in table.iterrows():
            variant, key = row["variant"], keys.get(row["variant"])
            if key is None:
                continue
            here = f"{name}/{variant}"
            groups.setdefault(key, []).append((name, variant, _compared(row)))
            if _compared(row):
                if key in first_runs:
                    shared.runs[(name, variant)] = first_runs[key]
                pair = (key, keys.get(row["baseline"]))
                if pair[1] is not None:
                    if pair in first_pair:
                        shared.comparisons[(name, variant)] = first_pair[pair]
                    first_pair.setdefault(pair, here)
            first_runs.setdefault(key, here)
    for rows in groups.values():
        if len({s for s, _, _ in rows}) > 1 and not all(compared for _, _, compared in rows):
            names: dict[str, list[str]] = {}
            for study, variant, _ in rows:
                names.setdefault(variant, []).append(study)
            shared.baselines.append(" = ".join(f"{v} in {_and(list(dict.fromkeys(s)))}" for v, s in names.items()))
    return shared


REPEATS_TEXT = ("A row that repeats a comparison shown above (the same runs, seed for seed, against the same "
                "baseline runs) says 'same runs as <study>/<variant>' instead of repeating its scores; its verdict, "
                "MDE and seeds are still its own study's (Holm-adjusted over that study's compared variants).")


def shared_texts(shared: Shared | None) -> list[str]:
    """What the summary says once about shared runs: which baselines studies share (with the studies), and how
    a repeated comparison reads; [] when nothing is shared."""
    if shared is None:
        return []
    texts = []
    if shared.baselines:
        texts.append("Shared baselines, the same runs in each study named (each study's table keeps them): "
                     + "; ".join(shared.baselines) + ".")
    if shared.comparisons:
        texts.append(REPEATS_TEXT)
    return texts
