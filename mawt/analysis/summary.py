"""The report's summary: one row per compared variant against its own baseline, the controls paragraph,
and results/<setup>/summary.md (the same table as Markdown). From the study folders' table.csv only.

The HTML page that shows them: mawt/analysis/report.py.
"""

from __future__ import annotations

import pandas as pd

from mawt.analysis.comparisons import FLOOR, FLOOR_MEANING, design, is_floor, verdict
from mawt.analysis.display import verdict_text, worth_text
from mawt.analysis.results import BASE, WORTH
from mawt.analysis.shared import Shared, note, shared_texts


def _ci(row, metric: str = "exact_match") -> str:
    return f"{row[metric]:.2f} [{row[f'{metric}_low']:.2f}, {row[f'{metric}_high']:.2f}]"


def _params(row) -> str:
    value = row.get("trainable_parameters", float("nan"))
    return "" if pd.isna(value) else f"{value:,.0f}"


def _diff(row, metric: str = "exact_match") -> str:
    return (f"{row[f'diff_{metric}']:+.2f} [{row[f'diff_{metric}_low']:+.2f}, "
            f"{row[f'diff_{metric}_high']:+.2f}]")


def _seeds_needed(row, metric: str = "exact_match") -> str:
    value = row.get(f"seeds_needed_{metric}", float("nan"))
    if is_floor(row, metric):  # no variance measured: more seeds of the same runs would not help
        return ""
    return "more than 100" if pd.isna(value) else f"{int(value)}"


SUMMARY_COLUMNS = ("study", "variant", "baseline", "verdict", "difference [95% CI]", "MDE",
                   "verdict (Holm-adjusted)", "exact match", "baseline exact match",
                   "trainable params (variant / baseline)", "seeds x items", "seeds for MDE = margin")
# what a repeated comparison leaves out (the same runs give the same numbers); the rest is its own study's
RUN_COLUMNS = ("exact match", "baseline exact match", "trainable params (variant / baseline)")


def summary_rows(studies: list[tuple[dict, pd.DataFrame]], shared: Shared | None = None) -> pd.DataFrame:
    """Every compared variant of every study against its own baseline, Holm-adjusted verdicts (exact match).

    The first columns are what a reader looks at first (study, variant, baseline, the verdict word, the paired
    difference with its unadjusted 95% interval, the MDE of the verdict); the long text columns come after.
    A comparison `shared` says an earlier row showed (mawt/analysis/shared.py) has "same runs as <study>/<variant>"
    for its difference and no scores; its verdict, MDE and seeds are its own study's."""
    repeated = shared.comparisons if shared else {}
    rows = []
    for study, table in studies:
        if "diff_exact_match" not in table:
            continue
        by_name = table.set_index("variant")
        study_design = design(table)
        for _, row in table[table["diff_exact_match"].notna()].iterrows():
            baseline = by_name.loc[row["baseline"]]
            mde = row.get("mde_exact_match", float("nan"))
            rows.append({
                "study": study["name"], "variant": row["variant"], "baseline": row["baseline"],
                "verdict": verdict(row) or "", "difference [95% CI]": _diff(row),
                "MDE": "" if pd.isna(mde) else f"{mde:.3f}",
                "verdict (Holm-adjusted)": verdict_text(row),
                "exact match": _ci(row), "baseline exact match": _ci(baseline),
                "trainable params (variant / baseline)": f"{_params(row)} / {_params(baseline) or '0 (untuned)'}",
                "seeds x items": study_design["seeds x items"],
                "seeds for MDE = margin": _seeds_needed(row),
            })
            if (study["name"], row["variant"]) in repeated:
                rows[-1].update({"difference [95% CI]": note(repeated[study["name"], row["variant"]]),
                                 **dict.fromkeys(RUN_COLUMNS, "")})
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))



# ---------------------------------------------------------------- controls

def _is_plain(name) -> bool:
    return isinstance(name, str) and name.startswith("plain")


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _control_kind(row, table: pd.DataFrame) -> str | None:
    """"positive" (known to be worse than its baseline: `half_steps`, or a variant of a plain baseline trained
    with fewer steps), "negative" (`shuffled`: a variant trained on shuffled rewards, or any variant compared with
    another variant than a plain* baseline or the untuned base), else None."""
    base = row.get("baseline")
    if isinstance(row.get("plant"), str) and row["plant"] != "none":
        return "planted"
    if pd.isna(row.get("diff_exact_match", float("nan"))) or not isinstance(base, str):
        return None
    if row["variant"] == "half_steps":
        return "positive"
    if _is_plain(base) and "steps" in table:
        mine = _number(row.get("steps"))
        theirs = _number(table.loc[table["variant"] == base, "steps"].iloc[0]) if (table["variant"] == base).any() \
            else float("nan")
        if mine < theirs:
            return "positive"
    if row["variant"] == "shuffled" or str(row.get("reward_control", "")) == "shuffled":
        return "negative"
    if not _is_plain(base) and base != BASE:
        return "negative"
    return None


def _controls(studies: list[tuple[dict, pd.DataFrame]]) -> tuple[list, list, bool]:
    """The positive and negative controls of every study (study meta, table row), and whether a study named
    `controls` exists."""
    positive, negative, named = [], [], False
    for study, table in studies:
        named = named or study["name"] == "controls"
        for _, row in table.iterrows():
            kind = _control_kind(row, table)
            if kind == "positive":
                positive.append((study, row))
            elif kind == "negative":
                negative.append((study, row))
    return positive, negative, named


PLANTED_LEARNS, PLANTED_SHUFFLED = 0.8, 0.2  # issue 30: the learned policy at least, the shuffled one at most


def planted_recovery(row) -> float:
    """The share of the planted gain over uniform choices that the trained policy recovers, in held-out
    answer loss under the policy itself (mawt/evaluation/worth.py `policy`): (uniform - policy) / (uniform -
    best single depth), from the seeds' means; NaN without the worth numbers."""
    uniform, policy, best = (_number(row.get(f"{WORTH}loss_{p}")) for p in ("uniform", "policy", "best"))
    gain = uniform - best
    return (uniform - policy) / gain if gain > 0 else float("nan")


def _planted_lines(studies: list[tuple[dict, pd.DataFrame]]) -> list[tuple[str, str]]:
    """The planted controls (`mawt.plant`, docs/grpo.md): can GRPO learn a depth choice that is worth
    something by construction, and does a policy trained on shuffled rewards not?"""
    lines = []
    for study, table in studies:
        for _, row in table.iterrows():
            if _control_kind(row, table) != "planted":
                continue
            got, shuffled = planted_recovery(row), str(row.get("reward_control", "")) == "shuffled"
            numbers = (f"{row['variant']} (study {study['name']}, plant {row['plant']}): the trained policy "
                       f"recovers {got:.0%} of the planted gain over uniform choices (held-out answer loss "
                       f"under the policy {_number(row.get(f'{WORTH}loss_policy')):.3f}, uniform "
                       f"{_number(row.get(f'{WORTH}loss_uniform')):.3f}, best single depth "
                       f"{_number(row.get(f'{WORTH}loss_best')):.3f}; seeds' means)")
            if pd.isna(got):
                lines.append(("warning", f"Planted control, {numbers}: no gain to recover, untested."))
            elif shuffled:
                ok = got <= PLANTED_SHUFFLED
                lines.append(("ok" if ok else "warning", f"Planted control on shuffled rewards, {numbers}: "
                              + (f"at most {PLANTED_SHUFFLED:.0%}, as it must: what the learned twin recovers "
                                 "comes from the rewards." if ok else
                                 f"above {PLANTED_SHUFFLED:.0%}: warning, the policy learns without its rewards "
                                 "(a bias of the selector or the credit, not the reward signal).")))
            else:
                ok = got >= PLANTED_LEARNS
                lines.append(("ok" if ok else "warning", f"Planted control, {numbers}: "
                              + (f"at least {PLANTED_LEARNS:.0%}, as it must: GRPO learns a depth choice that is "
                                 "worth something when there is one." if ok else
                                 f"below {PLANTED_LEARNS:.0%}: warning, the learner did not learn a choice worth "
                                 "something by construction; no verdict about learned depth policies should be "
                                 "trusted until it does.")))
    return lines


WARNING = "the harness could not see a known effect at this design"

NEGATIVE_MEANING = {
    "worse": "the learned policy beats a policy trained on shuffled rewards: what it learned matters.",
    "equivalent": "the learned policy is no better than one trained on shuffled rewards (within the margin): what "
                  "it chose is not shown to matter.",
    "better": "the policy trained on shuffled rewards beats the learned one: what the learned policy chose hurts.",
    "inconclusive": "this design cannot tell whether what the policy learned matters (neither a difference nor "
                    "equivalence within the margin).",
}


def _control_line(study: dict, row) -> str:
    mde = row.get("mde_exact_match", float("nan"))
    return (f"{row['variant']} vs {row['baseline']} (study {study['name']}): {verdict(row) or 'not compared'}, "
            f"difference {_diff(row)}, {'no MDE' if pd.isna(mde) else f'MDE {mde:.3f}'}; {verdict_text(row)}")


def controls_text(studies: list[tuple[dict, pd.DataFrame]]) -> list[tuple[str, str]] | None:
    """The controls paragraph as (kind, text) lines, kind in {"ok", "warning", "note"}; None when the setup
    ran no control."""
    positive, negative, named = _controls(studies)
    planted = _planted_lines(studies)
    if not (positive or negative or named or planted):
        return None
    lines = []
    if not positive:
        lines.append(("warning", "No positive control ran (half_steps: plain fine-tuning with half the steps, "
                                 "compared with plain): whether this design can see a known effect is untested."))
    for study, row in positive:
        word = verdict(row)
        text = "Positive control, " + _control_line(study, row) + "."
        if word == "worse":
            lines.append(("ok", text + " It came out worse, as it must: the harness sees a known effect of this "
                                       "size at this design."))
        elif word == FLOOR:  # not a success: nothing was tested
            lines.append(("warning", text + f" It did not come out worse: warning, {WARNING} (both runs are at "
                                            "the floor); no verdict of this setup should be trusted until they "
                                            "leave it."))
        else:
            lines.append(("warning", text + f" It did not come out worse: warning, {WARNING} (half the training "
                                            "steps); no verdict of this setup should be trusted until it can "
                                            "(more seeds or items: see 'seeds for MDE = margin')."))
    if not negative:
        lines.append(("note", "No negative control ran (shuffled: GRPO on shuffled rewards, compared with the "
                              "learned policy)."))
    tables = {study["name"]: table for study, table in studies}
    for study, row in negative:
        word = verdict(row)
        if word == FLOOR:  # not an answer: whether what the policy learned matters is untested
            lines.append(("warning", "Negative control, " + _control_line(study, row) + ". Untested: at the "
                                     "floor, whether what the learned policy chose matters cannot be told."))
            continue
        meaning = NEGATIVE_MEANING.get(word, "") if (row["variant"] == "shuffled"
                                                     or str(row.get("reward_control", "")) == "shuffled") else ""
        lines.append(("note", "Negative control, " + _control_line(study, row) + "." + (f" So {meaning}"
                                                                                         if meaning else "")
                      + _worth_line(tables[study["name"]], row)))
    return lines + planted


def _worth_line(table: pd.DataFrame, row) -> str:
    """What the choice is worth on both sides of a negative control (mawt/evaluation/worth.py), "" without."""
    sides = [row, *[r for _, r in table.iterrows() if r["variant"] == row.get("baseline")]]
    shown = [(r["variant"], worth_text(r, "loss", "{:.3f}"), worth_text(r, "em", "{:.3f}")) for r in sides]
    if len(shown) < 2 or not all(loss for _, loss, _ in shown):
        return ""
    probe = [(r["variant"], _number(r.get(f"{WORTH}loss_probe")), _number(r.get(f"{WORTH}loss_uniform")))
             for r in sides]
    flat = [name for name, loss, uniform in probe if loss == loss and not loss < uniform]  # NaN: no probe
    words = (f" A probe that sees only the selector's input (cross-fitted, mawt/evaluation/probe.py), answer "
             "loss: " + "; ".join(f"{name} {loss:.3f}" for name, loss, _ in probe if loss == loss) + "."
             if any(loss == loss for _, loss, _ in probe) else "")
    if flat:
        words += (f" For {', '.join(flat)} it is no better than uniform choices: the oracle's gap there is not "
                  "predictable from what the selector sees.")
    return (" What the depth choice is worth on the held-out set (answer loss; exact match), learned greedy / "
            "uniform / best single depth / per-position oracle: "
            + "; ".join(f"{name} {loss} ({em})" for name, loss, em in shown) + "." + words)



def _where(studies: list[dict]) -> str:
    """Where the runs ran, from their recorded environments: every distinct value of the machine keys."""
    envs = [env for study in studies for env in study["environments"].values()]
    parts = []
    for key, label in (("cpu_model", "CPU"), ("cpu_capability", "torch CPU capability"), ("gpu", "GPU"),
                       ("git_commit", "commit")):
        values = sorted({str(env.get(key))[:12 if key == "git_commit" else None] for env in envs
                         if env.get(key) is not None})
        if values:
            parts.append(f"{label} {' / '.join(values)}")
    dirty = any(env.get("git_dirty") for env in envs)
    return ", ".join(parts) + (" (uncommitted edits)" if dirty else "")


def summary_markdown(studies: list[tuple[dict, pd.DataFrame]], shared: Shared | None = None) -> str:
    """results/<setup>/summary.md: the controls, the report's summary table, where it ran, how to regenerate it;
    with `shared`, each comparison once and the shared baselines named once (mawt/analysis/shared.py)."""
    setup = studies[0][0]["setup"] if studies else "?"
    frame = summary_rows(studies, shared)
    table = frame.to_markdown(index=False, disable_numparse=True) if not frame.empty else \
        "No study compares a variant with a baseline."
    lines = controls_text(studies)
    controls = ("## Controls\n\n" + "\n".join(f"- {'**WARNING**: ' if kind == 'warning' else ''}{text}"
                                                for kind, text in lines) + "\n\n") if lines else ""
    return (f"# MAWT ablations, {setup} setup: every compared variant against its own baseline\n\n"
            f"Written by `snakemake --config setup={setup}` (rule `report`) from the study folders' table.csv. "
            f"Runs recorded: {_where([s for s, _ in studies])}.\n\n{controls}{table}\n\n"
            + "".join(f"{text}\n\n" for text in shared_texts(shared)) +
            "Held-out exact match, paired over the same seed ids and items; verdicts Holm-adjusted per study "
            "(better/worse: Holm p < 0.05; equivalent: Holm-adjusted TOST within the margin; else inconclusive; "
            f"floor: {FLOOR_MEANING}), intervals unadjusted; MDE: 80% power at two-sided 0.05 / m (m compared "
            "variants of the study, floors not counted).\n")
