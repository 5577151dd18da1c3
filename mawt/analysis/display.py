"""The human-readable study table: what table.md and the report show (strings).

Numbers come from `mawt.analysis.comparisons`' summary (table.csv); this module only
formats them: intervals, paired differences with Holm verdicts, side metrics
with their "(n=k of S)" counts, selector statistics.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mawt.analysis.comparisons import FLOOR, FLOOR_MEANING, design, verdict
from mawt.analysis.results import BASE, DIVERGENCE, N_SUFFIX, REASONING, TRAIN_BATCH, WORTH
from mawt.evaluation.scoring import SCORES
from mawt.statistics.intervals import ALPHA

LABELS = {"exact_match": "exact match", "challenge_metric": "challenge metric", "challenge_strict": "challenge strict"}
SHORT = {"exact_match": "EM", "challenge_metric": "CM", "challenge_strict": "CS"}


def verdict_text(row, metric: str = "exact_match") -> str:
    """E.g. "better than plain (Holm p=0.012)", "equivalent to plain within ±0.03 (Holm TOST p=0.004)",
    "floor: ... both score 0.000 ..."; "" when the row is not compared."""
    word = verdict(row, metric)
    if word is None:
        return ""
    base = row["baseline"]
    if word == FLOOR:
        name = row["variant"] if "variant" in row else getattr(row, "name", "the variant")  # also a .loc row
        if isinstance(row.get("plant"), str) and row["plant"] != "none":  # by design: read its planted share
            return (f"floor: {name} and {base} both score {row[metric]:.3f}, by design: a planted control is judged "
                    "by the share of the planted gain its policy recovers (the controls box), not by this score")
        return f"floor: {name} and {base} both score {row[metric]:.3f}; {FLOOR_MEANING}"
    if word in ("better", "worse"):
        return f"{word} than {base} (Holm p{_eq(fmt_p(row[f'diff_{metric}_p_holm']))})"
    margin = row.get("margin", np.nan)
    if word == "equivalent":
        return (f"equivalent to {base} within ±{margin:g} "
                f"(Holm TOST p{_eq(fmt_p(row[f'diff_{metric}_p_equiv_holm']))})")
    return (f"inconclusive vs {base}: neither different (Holm p{_eq(fmt_p(row[f'diff_{metric}_p_holm']))}) "
            f"nor within ±{margin:g} (Holm TOST p{_eq(fmt_p(row.get(f'diff_{metric}_p_equiv_holm', np.nan)))})")


def _eq(text: str) -> str:
    return text if text.startswith("<") else "=" + text


def fmt_p(p, alpha: float = ALPHA) -> str:
    """A p-value rounded so that it never shows on the other side of `alpha` (0.0499 is not "0.05")."""
    if pd.isna(p):
        return ""
    if p < 0.001:
        return "<0.001"
    for digits in ((2, 3, 4, 5, 6) if p >= 0.1 else (3, 4, 5, 6)):
        text = f"{p:.{digits}f}"
        if (float(text) < alpha) == (p < alpha):
            return text
    return f"{p:.3g}"


def design_text(table: pd.DataFrame) -> str:
    d = design(table)
    if not d["compared"]:
        return f"No variant of this study is compared with a baseline ({d['items']} held-out items)."
    floor = f" {d['floor']} of them at the floor in exact match: {FLOOR_MEANING}." if d["floor"] else ""
    head = (f"Design: {d['seeds x items']}, {d['compared']} compared variant(s), equivalence margin "
            f"±{d['margin']:g}.{floor}")
    if not d["tested"]:
        return head + " No comparison is left to test."
    mde = ", ".join(f"{LABELS[m]} {v:.3f}" for m, v in d["mde"].items())
    need = (f"about {d['seeds_needed']} seeds would bring it to the margin ±{d['margin']:g}"
            if d["seeds_needed"] else f"more than 100 seeds would be needed to bring it to the margin ±{d['margin']:g}")
    return (f"{head} Minimum detectable effect of the verdicts shown (80% power for a difference of "
            f"this size, two-sided 0.05 / {d['tested']} by Holm's first step; median over the tested "
            f"variants): {mde}; {need} (exact match, from the measured variance components). Differences "
            "smaller than the MDE are often 'inconclusive'.")


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _interval(row, metric: str, digits: int = 2) -> str:
    if pd.isna(row.get(metric)):
        return ""
    return f"{row[metric]:.{digits}f} [{row[f'{metric}_low']:.{digits}f}, {row[f'{metric}_high']:.{digits}f}]"


def _flag(value) -> bool:
    """A boolean cell, also after a CSV round trip (True, np.True_, "True"; NaN is False)."""
    return not pd.isna(value) and str(value) == "True"


def _difference(row, metric: str) -> str:
    if pd.isna(row.get(f"diff_{metric}", np.nan)):
        return "(baseline)" if _flag(row.get("is_baseline")) else ""
    mark = {"better": " *", "worse": " *", "equivalent": " ≈"}.get(verdict(row, metric), "")
    return (f"{row[f'diff_{metric}']:+.2f} [{row[f'diff_{metric}_low']:+.2f}, "
            f"{row[f'diff_{metric}_high']:+.2f}]{mark}")


def _side(row, col: str, fmt: str, stderr: str | None = None) -> str:
    """A side metric (± its standard error column), with "(n=k of S)" when only k of the variant's S runs have it."""
    if pd.isna(row.get(col, np.nan)):
        return ""
    err = row.get(stderr, np.nan) if stderr else np.nan
    n = row.get(f"{col}{N_SUFFIX}", np.nan)
    return (fmt.format(row[col]) + ("" if pd.isna(err) else " ± " + fmt.format(err))
            + ("" if pd.isna(n) else f" (n={int(n)} of {int(row['runs'])})"))


def _usage_columns(table: pd.DataFrame, prefix: str) -> list[str]:
    cols = [c for c in table.columns if c.startswith(prefix + "depth_usage_") and not c.endswith(N_SUFFIX)]
    return sorted(cols, key=lambda c: int(c.rsplit("_", 1)[1]))


def _usage(row, cols: list[str]) -> str:
    present = [c for c in cols if not pd.isna(row.get(c, np.nan))]
    if not present:
        return ""
    counts = {int(row[f"{c}{N_SUFFIX}"]) for c in present if not pd.isna(row.get(f"{c}{N_SUFFIX}", np.nan))}
    note = f" (n={min(counts)} of {int(row['runs'])})" if counts else ""
    return " / ".join(f"{row[c]:.2f}" for c in present) + note


def _baseline_cell(row) -> str:
    if not pd.isna(row.get("baseline", np.nan)) and row.get("baseline"):
        return str(row["baseline"])
    return "(baseline)" if _flag(row.get("is_baseline")) else ""


def _varies(table: pd.DataFrame, column: str) -> bool:
    """More than one value among the trained variants: worth a column of its own."""
    return column in table and table[column].dropna().astype(str).replace("", np.nan).dropna().nunique() > 1


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The human-readable table (strings): what the Markdown file and the report show."""
    selector = [(prefix, label) for prefix, label in (("", "held-out"), (TRAIN_BATCH, "last training batch"))
                if f"{prefix}selector_entropy" in table or _usage_columns(table, prefix)]
    shown = []
    for _, row in table.iterrows():
        params = ("0 (untuned)" if str(row["variant"]).startswith(BASE[:-1])
                  and pd.isna(row.get("trainable_parameters", np.nan))
                  else _side(row, "trainable_parameters", "{:,.0f}"))
        entry = {
            "variant": row["variant"],
            "baseline": _baseline_cell(row),
            "depth": "" if pd.isna(row.get("depth")) else int(row["depth"]),
            "mixer": _text(row.get("mixer")) + (" + gate" if _text(row.get("gate")) == "head" else ""),
            "trainable": _text(row.get("trainable")),
            **({"data": _text(row.get("families"))} if _varies(table, "families") else {}),
            **({"credit": _text(row.get("credit")), "advantage": _text(row.get("advantage"))}
               if _varies(table, "credit") or _varies(table, "advantage") else {}),
            **({"selector_input": _text(row.get("selector_input"))} if _varies(table, "selector_input") else {}),
            "trainable params": params,
            "seeds": row["seeds"],
        }
        if "reward_control" in table and _varies(table, "reward_control"):
            entry["rewards"] = _text(row.get("reward_control"))
        for metric in SCORES:
            entry[f"{LABELS[metric]} [95% CI]"] = _interval(row, metric)
            entry[f"{SHORT[metric]} vs baseline [95% CI]"] = _difference(row, metric)
            entry[f"{SHORT[metric]} Holm p"] = fmt_p(row.get(f"diff_{metric}_p_holm", np.nan))
            entry[f"{SHORT[metric]} verdict"] = verdict(row, metric) or ""
        for col, (label, fmt) in REASONING.items():
            entry[label] = _side(row, col, fmt)
        entry["answer loss"] = _side(row, "heldout_answer_loss", "{:.3f}")
        for col in table.columns:
            if col.startswith("lm_eval:") and not col.endswith(("_stderr", N_SUFFIX)):
                entry[col.removeprefix("lm_eval:")] = _side(row, col, "{:.3f}", stderr=f"{col}_stderr")
        for col, label, fmt in (("train_seconds", "train s", "{:.1f}"), ("peak_mem_mb", "peak MB", "{:.0f}")):
            entry[label] = _side(row, col, fmt)
        for prefix, label in selector:
            entry[f"selector entropy ({label})"] = _side(row, f"{prefix}selector_entropy", "{:.3f}")
            entry[f"depth usage ({label})"] = _usage(row, _usage_columns(table, prefix))
        for what, fmt in (("loss", "{:.3f}"), ("em", "{:.3f}")):
            if f"{WORTH}{what}_learned" in table:
                entry[WORTH_LABELS[what]] = worth_text(row, what, fmt)
        if f"{WORTH}loss_probe" in table:
            entry[PROBE_LABEL] = probe_text(row)
        if f"{DIVERGENCE}jsd_bits" in table:
            entry[DIVERGENCE_LABEL] = divergence_text(row)
        shown.append(entry)
    return pd.DataFrame(shown)


WORTH_POLICIES = ("learned", "uniform", "best", "oracle")
WORTH_LABELS = {"loss": "choice worth: answer loss (learned / uniform / best depth / oracle)",
                "em": "choice worth: exact match (learned / uniform / best depth / oracle)"}


PROBE_LABEL = "probe (input-only, cross-fitted): answer loss / exact match"


def probe_text(row) -> str:
    """The probe's worth (mawt/evaluation/probe.py), with a word when it is no better than uniform."""
    loss, em, uniform = (row.get(f"{WORTH}{k}", np.nan) for k in ("loss_probe", "em_probe", "loss_uniform"))
    if pd.isna(loss) or pd.isna(em):
        return ""
    return f"{loss:.3f} / {em:.3f}" + (" (no better than uniform)" if not loss < uniform else "")


DIVERGENCE_PARTS = ("jsd_bits", "distance_query", "distance_output")
DIVERGENCE_LABEL = "depth divergence (attention JSD, bits / transform distance A / B)"


def divergence_text(row) -> str:
    """How far the depths moved apart (mawt/evaluation/divergence.py), "" without."""
    cols = [f"{DIVERGENCE}{p}" for p in DIVERGENCE_PARTS]
    if any(pd.isna(row.get(c, np.nan)) for c in cols):
        return ""
    return " / ".join(f"{row[c]:.3f}" for c in cols)


def worth_text(row, what: str, fmt: str) -> str:
    """"learned / uniform / best depth / oracle" of one worth measure (mawt/evaluation/worth.py), "" without."""
    cols = [f"{WORTH}{what}_{p}" for p in WORTH_POLICIES]
    if any(pd.isna(row.get(c, np.nan)) for c in cols):
        return ""
    n = row.get(f"{cols[0]}{N_SUFFIX}", np.nan)
    return " / ".join(fmt.format(row[c]) for c in cols) + ("" if pd.isna(n) else f" (n={int(n)} of {int(row['runs'])})")


NOTE = ("Scores: mean over seeds and held-out items with a 95% t interval from the variance components of the "
        "seeds x items design (mawt/statistics/intervals.py: seeds and items both random; Satterthwaite degrees of freedom, so "
        "few seeds give wide intervals). 'vs baseline': the paired difference to the variant's own baseline "
        "(column 'baseline': plain fine-tuning, the plain run with the same trainable layers, or the variant a "
        "control is compared with) over the same seed ids and items, with its unadjusted 95% interval. 'Holm p': "
        "the two-sided t-test p-value, Holm-adjusted over the study's compared variants, one family per metric. "
        "Verdict: 'better'/'worse' (Holm p < 0.05, marked '*'), else 'equivalent' when two one-sided tests "
        "place the difference within ±margin (Holm-adjusted, marked '≈'), else 'inconclusive'. 'floor': the "
        "variant and its baseline score the same constant on every seed and item (0 everywhere, say): nothing to "
        "test, so no p-value and no MDE, and it is not counted in Holm's m (move the variant off the floor: more "
        "steps, a higher learning rate). p-values are "
        "rounded so that none shows on the other side of 0.05. Minimum detectable effect (MDE, table.csv "
        "mde_*): the difference the verdict shown detects with 80% power (noncentral t at 0.05 / m, m compared "
        "variants); mde_*_single: the same for one comparison at 0.05. lm-eval: score ± lm-eval's standard "
        "error. Side metrics (lm-eval, answer loss, costs, selector) are means over the runs that have them; "
        "'(n=k of S)' marks a value that only k of the variant's S runs have. peak MB: the largest max RSS of "
        "the variant's training jobs (Snakemake benchmark). Selector entropy and depth usage '(held-out)': the "
        "trained model over every held-out item at the answer-predicting positions (eval mode: GRPO and gumbel "
        "pick the argmax depth); '(last training batch)': run.json's final_selection, for runs whose "
        "heldout.json has no held-out selector statistics. Entropy is a diagnostic: a policy can be sure "
        "and useless. 'choice worth' (hard choices in the last layer, mawt/evaluation/worth.py) is the evidence: the "
        "held-out answer loss and exact match at the answer positions of the learned policy's greedy choice, "
        "of uniform random choices, of the best single depth (chosen on the held-out set) and of the "
        "per-position oracle (every depth enumerated); a learned policy that is not below uniform in loss "
        "learned nothing useful, and one at the best single depth learned a constant.")
