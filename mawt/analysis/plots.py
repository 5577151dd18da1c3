"""Study plots (matplotlib, PNG + SVG): the forest plot of the paired differences,
comparison, depth sweep, training curves, depth usage, and the 5D attention of
one held-out example.

Plots of score levels (comparison, depth sweep) zoom their y axis to the data,
intervals included (`_zoom`): on a 0-1 axis differences of a few points vanish.

Colours: the Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"),
distinguishable with the common colour-vision deficiencies; lines also differ
in marker so they survive greyscale printing.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: files only
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator, StrMethodFormatter  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mawt.common.atomic import atomic_path  # noqa: E402
from mawt.analysis.comparisons import verdict  # noqa: E402
from mawt.analysis.display import fmt_p  # noqa: E402
from mawt.analysis.results import BASE, BASELINE, StudyResults  # noqa: E402

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
STACK = OKABE_ITO[:7] + ["#999999"]  # areas: no black (the entropy line is black)
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LABELS = {"exact_match": "held-out exact match", "challenge_metric": "held-out challenge metric"}
# the verdict words' colours (Okabe-Ito; the report colours the words the same way)
VERDICT_COLOURS = {"better": "#009E73", "worse": "#D55E00", "equivalent": "#0072B2", "inconclusive": "#555555",
                   "floor": "#CC79A7"}

plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "font.size": 10, "axes.grid": True,
                     "grid.alpha": 0.3, "svg.hashsalt": "mawt", "svg.fonttype": "none"})


def _save(fig, out_dir: Path, name: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "svg"):
        path = out_dir / f"{name}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, bbox_inches="tight", metadata={"Date": None} if ext == "svg" else {"Software": None})
        paths.append(path)
    plt.close(fig)
    return paths


def _zoom(ax, values, pad: float = 0.08, min_span: float = 0.05) -> tuple[float, float]:
    """Zoom the y axis to `values` (means and interval ends) with some padding, not 0-1.

    The padding is `pad` of the span each side (at least 0.01); a span under `min_span` is widened to it
    around the data's centre, so that noise is not blown up to the full height. Data inside [0, 1] never
    gets limits beyond [-0.02, 1.02], and no limit goes beyond [-0.05, 1.05]: a score lies in [0, 1], and
    an interval that reaches past it (a t interval from two seeds can) runs off the axis."""
    v = np.asarray([x for x in np.ravel(np.asarray(values, dtype=float)) if np.isfinite(x)])
    if v.size == 0:
        ax.set_ylim(-0.02, 1.02)
        return -0.02, 1.02
    lo, hi = float(v.min()), float(v.max())
    if hi - lo < min_span:
        centre = (lo + hi) / 2
        lo, hi = centre - min_span / 2, centre + min_span / 2
    margin = max(pad * (hi - lo), 0.01)
    lower, upper = lo - margin, hi + margin
    if v.min() >= 0:
        lower = max(lower, -0.02)
    if v.max() <= 1:
        upper = min(upper, 1.02)
    lower, upper = max(lower, -0.05), min(upper, 1.05)
    ax.set_ylim(lower, upper)
    return lower, upper


def _verdict_note(row, metric: str) -> str:
    """The verdict word with the p-value that decided it, e.g. "worse (p=0.012)", "equivalent (TOST p=0.004)"."""
    word = verdict(row, metric)
    if word in ("better", "worse"):
        p = fmt_p(row[f"diff_{metric}_p_holm"])
    elif word == "equivalent":
        p = fmt_p(row[f"diff_{metric}_p_equiv_holm"])
    else:  # inconclusive, or floor (both sides one constant): no p-value decided it
        return "floor (nothing to test)" if word == "floor" else word or ""
    return f"{word} ({'TOST ' if word == 'equivalent' else ''}p{p if p.startswith('<') else '=' + p})"


def forest(study, table: pd.DataFrame, out_dir: Path, metric: str = "exact_match") -> list[Path]:
    """One row per compared variant ("variant vs baseline"): the paired difference with its 95% interval, the zero
    line, the +-margin band of equivalence and the Holm-adjusted verdict at the right, coloured by verdict.

    `study`: a StudyResults or just the study's name. Nothing is drawn when no variant is compared."""
    name = getattr(study, "name", study)
    if f"diff_{metric}" not in table:
        return []
    rows = table[table[f"diff_{metric}"].notna()]
    if rows.empty:
        return []
    margin = float(rows["margin"].dropna().iloc[0]) if "margin" in rows and rows["margin"].notna().any() else np.nan
    n = len(rows)
    fig, ax = plt.subplots(figsize=(7.2, 1.1 + 0.42 * n), layout="constrained")
    if np.isfinite(margin):
        ax.axvspan(-margin, margin, color="0.88", zorder=0, label=f"±{margin:g}: equivalence margin")
    ax.axvline(0.0, color="0.25", lw=1, zorder=1, label="no difference")
    y = np.arange(n)[::-1]
    for yi, (_, row) in zip(y, rows.iterrows(), strict=True):
        colour = VERDICT_COLOURS.get(verdict(row, metric), "0.3")
        mean, low, high = row[f"diff_{metric}"], row[f"diff_{metric}_low"], row[f"diff_{metric}_high"]
        ax.plot([low, high], [yi, yi], color=colour, lw=2.2, solid_capstyle="butt", zorder=2)
        ax.plot([mean], [yi], "o", color=colour, ms=7, zorder=3)
        ax.annotate(_verdict_note(row, metric), (1.02, yi), xycoords=("axes fraction", "data"), va="center",
                    ha="left", color=colour, fontsize=9, fontweight="bold", annotation_clip=False)
    ax.set_yticks(y, [f"{row['variant']} vs {row['baseline']}" for _, row in rows.iterrows()])
    ax.set_ylim(-0.7, n - 0.3)
    ax.grid(axis="y", visible=False)
    ends = np.concatenate([rows[f"diff_{metric}_low"], rows[f"diff_{metric}_high"], [0.0]]
                          + ([[-margin, margin]] if np.isfinite(margin) else []))
    ends = ends[np.isfinite(ends)]
    span = max(float(ends.max() - ends.min()), 0.02)
    # a difference of scores lies in [-1, 1]: an interval reaching past it (few seeds) runs off the axis
    ax.set_xlim(max(ends.min() - 0.06 * span, -1.05), min(ends.max() + 0.06 * span, 1.05))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=7))
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:+.2f}"))
    ax.set_xlabel(f"{LABELS.get(metric, metric)}: variant - baseline (paired, 95% CI)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    fig.suptitle(f"{name}: difference to each variant's baseline, Holm-adjusted verdicts", fontsize=10)
    return _save(fig, out_dir, "forest")


def comparison(study: StudyResults, table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Every variant's two held-out scores with 95% intervals; plain as a reference band."""
    variants = [v for v in table["variant"] if v != BASE]
    rows = table.set_index("variant")
    fig, axes = plt.subplots(1, 2, figsize=(4 + 0.55 * len(variants) * 2, 3.6), layout="constrained")
    for ax, metric in zip(axes, ("exact_match", "challenge_metric"), strict=True):
        shown = []  # what the y axis zooms to: every interval and the plain reference
        if BASELINE in rows.index:
            b = rows.loc[BASELINE]
            ax.axhspan(b[f"{metric}_low"], b[f"{metric}_high"], color="0.85", zorder=0, label="plain 95% CI")
            ax.axhline(b[metric], color="0.4", ls="--", lw=1, label="plain (D=1)")
            shown += [b[f"{metric}_low"], b[f"{metric}_high"]]
        x = np.arange(len(variants))
        mean = rows.loc[variants, metric].to_numpy(dtype=float)
        low = rows.loc[variants, f"{metric}_low"].to_numpy(dtype=float)
        high = rows.loc[variants, f"{metric}_high"].to_numpy(dtype=float)
        shown += [*low, *mean, *high]
        colours = [OKABE_ITO[0] if v != BASELINE else "0.3" for v in variants]
        for i in range(len(variants)):
            ax.errorbar(x[i], mean[i], yerr=[[mean[i] - low[i]], [high[i] - mean[i]]], fmt="o", color=colours[i],
                        capsize=4, ms=6)
            if verdict(rows.loc[variants[i]], metric) in ("better", "worse"):  # next to the mean: always in view
                ax.annotate("*", (x[i], mean[i]), xytext=(5, 0), textcoords="offset points", ha="left",
                            va="center", fontsize=14)
        ax.set_xticks(x, variants, rotation=30, ha="right")
        ax.set_title(LABELS[metric])
        lower, upper = _zoom(ax, shown)
        if BASE in rows.index:  # the untuned base is often far below: a line when in view, else a note
            level = rows.loc[BASE, metric]
            inside = lower <= level <= upper
            ax.axhline(level, color=OKABE_ITO[5], ls=":", lw=1.2,
                       label=f"untuned base {level:.2f}" + ("" if inside else " (off the axis)"))
            ax.set_ylim(lower, upper)
        ax.set_ylabel("fraction correct (mean, 95% CI; zoomed)")
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle(f"{study.name}: held-out accuracy per variant ('*': differs from its baseline, Holm-adjusted)")
    return _save(fig, out_dir, "comparison")


def depth_sweep(study: StudyResults, table: pd.DataFrame, out_dir: Path, metric: str = "exact_match") -> list[Path]:
    """Accuracy vs depth D, one line per mixer, 95% bands (only if D varies);
    the intervals are the study table's."""
    runs = study.runs[study.runs["variant"] != BASE]
    controls = {BASELINE, *(b for b in study.baselines.values() if b)}  # baselines are not points of the sweep
    mawt = runs[~runs["variant"].isin(controls)]
    per_point = mawt.groupby(["mixer", "depth"])["variant"].nunique()
    if mawt.empty or mawt.groupby("mixer")["depth"].nunique().max() < 2 or per_point.max() > 1:
        return []  # no mixer is swept over D (or two variants share a point: the comparison plot shows them)
    fig, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
    rows = table.set_index("variant")
    shown = []
    for k, (mixer, sub) in enumerate(mawt.groupby("mixer", sort=True)):
        points = [(depth, group["variant"].iloc[0]) for depth, group in sub.groupby("depth")]
        if BASELINE in rows.index:  # D=1 is the plain model for every mixer
            points.insert(0, (1, BASELINE))
        points.sort(key=lambda p: p[0])
        d = np.array([p[0] for p in points])
        cis = rows.loc[[v for _, v in points]]
        colour, marker = OKABE_ITO[k % len(OKABE_ITO)], MARKERS[k % len(MARKERS)]
        ax.plot(d, cis[metric].to_numpy(), marker=marker, color=colour, label=mixer)
        ax.fill_between(d, cis[f"{metric}_low"].to_numpy(), cis[f"{metric}_high"].to_numpy(), color=colour,
                        alpha=0.2)
        shown += [*cis[f"{metric}_low"], *cis[metric], *cis[f"{metric}_high"]]
    ax.set_xscale("log", base=2)
    depths = sorted(set(runs["depth"].dropna().astype(int)))
    ax.set_xticks(depths, [str(v) for v in depths])
    ax.set_xlabel("depth D (D=1: plain fine-tuning)")
    ax.set_ylabel(f"{LABELS[metric]} (mean, 95% CI; zoomed)")
    _zoom(ax, shown)
    ax.legend(title="mixer")
    ax.set_title(f"{study.name}: accuracy vs number of depths")
    return _save(fig, out_dir, "depth_sweep")


def _mean_curve(study: StudyResults, variant: str, column: str) -> pd.Series | None:
    ids = study.runs.loc[study.runs["variant"] == variant, "run_id"]
    frames = [study.metrics[r].set_index("step")[column] for r in ids
              if r in study.metrics and column in study.metrics[r]]
    return pd.concat(frames, axis=1).mean(axis=1) if frames else None


def training_curves(study: StudyResults, out_dir: Path) -> list[Path]:
    """Cross-entropy and (GRPO) reward per step, mean over seeds, one line per variant."""
    variants = [v for v in study.variants if v != BASE]
    panels = [("loss_ce", "answer cross-entropy (nats/token)")]
    if any(_mean_curve(study, v, "reward_mean") is not None for v in variants):
        panels.append(("reward_mean", "GRPO reward (-CE of the rollout)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.6), squeeze=False, layout="constrained")
    for ax, (column, label) in zip(axes[0], panels, strict=True):
        for k, variant in enumerate(variants):
            curve = _mean_curve(study, variant, column)
            if curve is not None:
                ax.plot(curve.index, curve.to_numpy(), color=OKABE_ITO[k % 8], lw=1.3, label=variant,
                        ls="--" if variant == BASELINE else "-")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(label)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{study.name}: training curves (mean over seeds)")
    return _save(fig, out_dir, "training_curves")


def depth_usage(study: StudyResults, out_dir: Path) -> list[Path]:
    """Usage of each depth d over training (stacked areas) and selector entropy, GRPO/gumbel variants."""
    runs = study.runs
    variants = [v for v in study.variants
                if v != BASE and runs.loc[runs["variant"] == v, "mixer"].iloc[0] in ("grpo", "gumbel")
                and (runs.loc[runs["variant"] == v, "depth"].iloc[0] or 1) > 1]
    if not variants:
        return []
    fig, axes = plt.subplots(1, len(variants), figsize=(3.4 * len(variants) + 1, 3.4), squeeze=False, sharey=True,
                             layout="constrained")
    for ax, variant in zip(axes[0], variants, strict=True):
        depth = int(runs.loc[runs["variant"] == variant, "depth"].iloc[0])
        curves = [_mean_curve(study, variant, f"depth_usage_{d}") for d in range(depth)]
        if any(c is None for c in curves):
            continue
        steps = curves[0].index.to_numpy()
        ax.stackplot(steps, *[c.to_numpy() for c in curves], colors=[STACK[d % len(STACK)] for d in range(depth)],
                     labels=[f"depth {d}" for d in range(depth)], alpha=0.85)
        ent = _mean_curve(study, variant, "selector_entropy")
        twin = ax.twinx()
        twin.grid(False)
        if ent is not None:
            twin.plot(steps, ent.reindex(curves[0].index).to_numpy(), color="black", lw=1.2, label="entropy")
        twin.axhline(np.log(depth), color="black", ls=":", lw=0.8)
        twin.set_ylim(0, np.log(max(depth, 2)) * 1.05)
        twin.set_ylabel("selector entropy (nats; dotted: log D)")
        ax.set_title(f"{variant} (D={depth})")
        ax.set_xlabel("optimizer step")
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("share of tokens per depth d")
    axes[0][0].legend(loc="lower left", fontsize=7)
    fig.suptitle(f"{study.name}: depth usage over training (mean over seeds)")
    return _save(fig, out_dir, "depth_usage")


def attention_maps(npz_path, out_dir: Path, title: str = "") -> list[Path]:
    """One heatmap per depth d for one head, from `python -m mawt attention`."""
    data = np.load(npz_path, allow_pickle=False)
    att, head = data["attention"].astype(np.float32), int(data["head"])  # (H, Lq, Lk, D)
    tokens = [str(t) for t in data["tokens"]]
    depth = att.shape[-1]
    fig, axes = plt.subplots(1, depth, figsize=(3.0 * depth + 1, 3.4), squeeze=False, layout="constrained")
    image = None
    for d, ax in enumerate(axes[0]):
        image = ax.imshow(att[head, :, :, d], cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(f"depth {d}")
        ax.set_xlabel("key position")
        step = max(1, len(tokens) // 12)
        ax.set_xticks(range(0, len(tokens), step), [tokens[i] for i in range(0, len(tokens), step)],
                      rotation=90, fontsize=6)
        ax.grid(False)
    axes[0][0].set_ylabel("query position")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="attention weight")
    fig.suptitle(title or f"layer {int(data['layer'])}, head {head}: the D attention maps of one held-out example")
    return _save(fig, out_dir, "attention")


def study_plots(study: StudyResults, table: pd.DataFrame, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    paths = forest(study, table, out_dir) + comparison(study, table, out_dir) + depth_sweep(study, table, out_dir)
    paths += training_curves(study, out_dir)
    paths += depth_usage(study, out_dir)
    if study.attention and Path(study.attention).exists():
        paths += attention_maps(study.attention, out_dir)
    return paths
