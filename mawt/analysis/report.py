"""results/<setup>/report.html: one self-contained page (images embedded, no external URL).

It reads only what `mawt table` wrote in each study folder (table.csv, long.csv,
study.json, browser.csv, plots/; see mawt/analysis/tables.py), never the runs themselves.

Summary, first: the controls, when the setup ran any (the positive control,
`half_steps` vs plain, must come out "worse", or a warning says that the harness
could not see a known effect at this design; the negative control, `shuffled`
vs the learned policy, says whether what the policy learned matters), then per
study a compact verdict table (study, variant, baseline, the verdict word,
the paired difference with its unadjusted 95% interval and the MDE of the
verdict first; the longer columns after, wrapped so that the table fits the
page) with the study's forest plot right under it -> one section per study
(its YAML, design and MDE, the table, the plots, a held-out browser) ->
environment (every run's versions, git commit,
CPU model and capability, threads, GPU; one row per key, every distinct value
with the runs that had it) -> per-job time and memory from Snakemake's
benchmark files. Also writes the tidy table of every run of every study
(all_runs.csv and all_runs.parquet).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import pandas as pd

from mawt.common.atomic import write_text
from mawt.analysis.comparisons import design, verdict
from mawt.analysis.display import NOTE, design_text, display_table, verdict_text, worth_text
from mawt.common.layout import PLOTS, study_outputs
from mawt.analysis.plots import VERDICT_COLOURS
from mawt.analysis.results import BASE, read_benchmark
from mawt.analysis.tables import write_table

PLOT_ORDER = ("comparison", "depth_sweep", "training_curves", "depth_usage", "attention")
CAPTIONS = {
    "forest": "Paired difference in held-out exact match of each compared variant to its own baseline (point) with "
              "its unadjusted 95% t interval (bar); vertical line: no difference; shaded band: the study's "
              "equivalence margin; right: the Holm-adjusted verdict (better/worse: Holm p < 0.05; equivalent: "
              "Holm-adjusted TOST p < 0.05, the difference lies within the margin; else inconclusive).",
    "comparison": "Held-out scores per variant, mean and 95% t interval over seeds and items (y axis zoomed to "
                  "the data); grey band: the plain baseline's interval; '*': the paired difference to the "
                  "variant's own baseline is significant after Holm adjustment over the study's compared "
                  "variants (p < 0.05).",
    "depth_sweep": "Held-out exact match vs depth D, one line per mixer, 95% bands (y axis zoomed to the data); "
                   "D=1 is plain fine-tuning.",
    "training_curves": "Answer cross-entropy (and GRPO reward) per optimizer step, mean over seeds.",
    "depth_usage": "Share of tokens assigned to each depth d during training (stacked) and the selector's "
                   "entropy (black; dotted: log D, the uniform policy).",
    "attention": "The 5D attention of one held-out example (prompt + gold answer): one map per depth d for "
                 "the head whose depths differ most, first MAWT layer of the study's first MAWT variant, seed 0.",
}
# the summary table's column widths (%, SUMMARY_COLUMNS' order): the verdict within the first third of the page
SUMMARY_WIDTHS = (5.5, 8, 7, 10, 11.5, 5, 15, 9.5, 9.5, 8, 5.5, 5.5)
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;
color:#1a1a1a;line-height:1.45}
h1{border-bottom:3px solid #0072B2}h2{border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;font-size:13px;margin:.6em 0}th,td{border:1px solid #ddd;padding:3px 7px;
text-align:right;white-space:nowrap}th{background:#f2f5f8}td:first-child,th:first-child{text-align:left}
tr.baseline td{background:#f7f7f7}td.sig{font-weight:600;color:#0072B2}.ok{color:#009E73}.bad{color:#D55E00}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:13px;color:#555}
pre{background:#f6f8fa;padding:.7em;overflow-x:auto;font-size:12px}.note{font-size:13px;color:#555}
details{margin:.6em 0}summary{cursor:pointer;font-weight:600}.scroll{overflow-x:auto}
table.verdicts{table-layout:fixed;width:100%;max-width:100%}
table.verdicts th,table.verdicts td{white-space:normal;word-break:normal;overflow-wrap:break-word;
vertical-align:top;text-align:left}
td.verdict{font-weight:700}""" + "".join(f"td.v-{word}{{color:{colour}}}" for word, colour in VERDICT_COLOURS.items()) \
    + "".join(f"table.verdicts th:nth-child({i}){{width:{w}%}}" for i, w in enumerate(SUMMARY_WIDTHS, start=1)) + """
.controls{border:1px solid #ccc;border-left:6px solid #0072B2;background:#f7fafc;padding:.4em 1em;margin:1em 0}
.controls.failed{border-left-color:#D55E00;background:#fff4ee}
.warning{color:#D55E00;font-weight:700;font-size:1.1em}h3{margin-bottom:.2em}
"""


def _e(value) -> str:
    return html.escape("" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value))


def _html_table(frame: pd.DataFrame, row_class=None, cell_class=None, table_class: str = "") -> str:
    def attr(cls: str) -> str:
        return f' class="{_e(cls)}"' if cls else ""

    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    body = []
    for i, (_, row) in enumerate(frame.iterrows()):
        cls = row_class(i, row) if row_class else ""
        cells = "".join(f"<td{attr(cell_class(c, row[c]) if cell_class else '')}>{_e(row[c])}</td>"
                        for c in frame.columns)
        body.append(f"<tr{attr(cls)}>{cells}</tr>")
    return (f'<div class="scroll"><table{attr(table_class)}><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


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
    return "more than 100" if pd.isna(value) else f"{int(value)}"


SUMMARY_COLUMNS = ("study", "variant", "baseline", "verdict", "difference [95% CI]", "MDE",
                   "verdict (Holm-adjusted)", "exact match", "baseline exact match",
                   "trainable params (variant / baseline)", "seeds x items", "seeds for MDE = margin")


def _summary_rows(studies: list[tuple[dict, pd.DataFrame]]) -> pd.DataFrame:
    """Every compared variant of every study against its own baseline, Holm-adjusted verdicts (exact match).

    The first columns are what a reader looks at first (study, variant, baseline, the verdict word, the paired
    difference with its unadjusted 95% interval, the MDE of the verdict); the long text columns come after."""
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
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _verdict_table(frame: pd.DataFrame) -> str:
    """The compact summary table: fixed layout within the page width, long cells wrapped, the verdict coloured."""
    return _html_table(frame, table_class="verdicts",
                       cell_class=lambda c, v: f"verdict v-{v}" if c == "verdict" and v else "")


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
    return (f"{row['variant']} vs {row['baseline']} (study {study['name']}): {verdict(row) or 'not compared'}, "
            f"difference {_diff(row)}, MDE {row.get('mde_exact_match', float('nan')):.3f}; {verdict_text(row)}")


def controls_text(studies: list[tuple[dict, pd.DataFrame]]) -> list[tuple[str, str]] | None:
    """The controls paragraph as (kind, text) lines, kind in {"ok", "warning", "note"}; None when the setup
    ran no control."""
    positive, negative, named = _controls(studies)
    if not (positive or negative or named):
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
        meaning = NEGATIVE_MEANING.get(word, "") if (row["variant"] == "shuffled"
                                                     or str(row.get("reward_control", "")) == "shuffled") else ""
        lines.append(("note", "Negative control, " + _control_line(study, row) + "." + (f" So {meaning}"
                                                                                         if meaning else "")
                      + _worth_line(tables[study["name"]], row)))
    return lines


def _worth_line(table: pd.DataFrame, row) -> str:
    """What the choice is worth on both sides of a negative control (mawt/evaluation/worth.py), "" without."""
    sides = [row, *[r for _, r in table.iterrows() if r["variant"] == row.get("baseline")]]
    shown = [(r["variant"], worth_text(r, "loss", "{:.3f}"), worth_text(r, "em", "{:.3f}")) for r in sides]
    if len(shown) < 2 or not all(loss for _, loss, _ in shown):
        return ""
    return (" What the depth choice is worth on the held-out set (answer loss; exact match), learned greedy / "
            "uniform / best single depth / per-position oracle: "
            + "; ".join(f"{name} {loss} ({em})" for name, loss, em in shown) + ".")


def _controls_html(studies: list[tuple[dict, pd.DataFrame]]) -> str:
    lines = controls_text(studies)
    if lines is None:
        return ""
    failed = any(kind == "warning" for kind, _ in lines)
    parts = []
    for kind, text in lines:
        if kind == "warning" and WARNING in text:
            head, tail = text.split(f"warning, {WARNING}", 1)
            parts.append(f'<p>{_e(head)}<span class="warning">⚠ Warning: {_e(WARNING)}</span>{_e(tail)}</p>')
        elif kind == "warning":
            parts.append(f'<p class="warning">⚠ {_e(text)}</p>')
        else:
            parts.append(f"<p>{'✓ ' if kind == 'ok' else ''}{_e(text)}</p>")
    return (f'<div class="controls{" failed" if failed else ""}" id="controls"><h3>Controls</h3>'
            + "".join(parts) + "</div>")


def _summary_section(loaded: list[tuple[dict, pd.DataFrame, dict, Path]]) -> str:
    """Controls first, then per study: its verdict table and its forest plot right under it."""
    pairs = [(s, t) for s, t, _, _ in loaded]
    parts = ["<h2 id=\"summary\">Summary</h2><p>Every compared variant of each study against its own baseline "
             "(plain fine-tuning, D=1, with the same trainable layers, or the variant a control is compared with), "
             "held-out exact match, paired over the same seed ids and held-out items. Verdicts are Holm-adjusted "
             "over each study's compared variants (Holm 1979): <b>better</b>/<b>worse</b> where the adjusted p "
             "&lt; 0.05; else <b>equivalent</b> where two one-sided tests (Holm-adjusted) place the difference "
             "within the study's ±margin; else <b>inconclusive</b>. The 95% intervals are unadjusted. MDE: the "
             "smallest true difference the verdict shown detects with 80% power (two-sided 0.05 / m, m compared "
             "variants); 'inconclusive' says nothing about smaller effects. 'seeds for MDE = margin': the seeds "
             "that would bring the MDE down to the margin at the same items.</p>",
             _controls_html(pairs)]
    shown = _summary_rows(pairs)
    if shown.empty:
        parts.append("<p>No study compares a variant with a baseline.</p>")
    for study, table, _, plots in loaded:
        rows = shown[shown["study"] == study["name"]]
        if rows.empty:
            continue
        d = design(table)
        name = study["name"]
        parts.append(f'<h3 id="summary-{_e(name)}"><a href="#study-{_e(name)}">{_e(name)}</a></h3>'
                     f'<p class="note">{_e(d["seeds x items"])}, {d["compared"]} compared variant(s), equivalence '
                     f'margin ±{d["margin"]:g}.</p>')
        parts.append(_verdict_table(rows))
        png = plots / "forest.png"
        if png.exists():
            parts.append(f"<figure>{_image(png, f'{name}: forest')}<figcaption>{_e(CAPTIONS['forest'])} "
                         f"(SVG: {_e(str(plots / 'forest.svg'))})</figcaption></figure>")
    return "\n".join(parts)


def _browser(frame: pd.DataFrame) -> str:
    """browser.csv: every held-out item, each variant's answer (first seed), correct seeds / seeds;
    one table per data split."""
    return "".join(_split_browser(group.drop(columns="data").dropna(axis=1, how="all"))
                   for _, group in frame.groupby("data", dropna=False, sort=False))


def _split_browser(frame: pd.DataFrame) -> str:
    def cell_class(col, value):
        if col in ("#", "challenge", "gold"):
            return ""
        got, total = value.rsplit("(", 1)[1].rstrip(")").split("/")
        return "ok" if got == total else ("bad" if got == "0" else "")

    return ("<details><summary>Held-out browser: every item, each variant's answer (first seed) and how many "
            "seeds got it right (challenge metric)</summary>" + _html_table(frame, cell_class=cell_class)
            + "</details>")


def _study_cell_class(column: str, value) -> str:
    if "vs baseline" in column and str(value).endswith("*"):
        return "sig"
    return f"verdict v-{value}" if column.endswith(" verdict") and value else ""


def _study_section(study: dict, table: pd.DataFrame, files: dict[str, Path], plots: Path) -> str:
    shown = display_table(table)
    name = study["name"]
    parts = [f'<h2 id="study-{_e(name)}">Study: {_e(name)}</h2>', f"<p>{_e(study['description'])}</p>",
             "<details><summary>Study YAML</summary><pre>" + _e(study["yaml"]) + "</pre></details>",
             f"<p>{_e(design_text(table))}</p>",
             _html_table(shown, row_class=lambda i, r: "baseline" if r["baseline"] in ("", "(baseline)") else "",
                         cell_class=_study_cell_class),
             f'<p class="note">{_e(NOTE)}</p>']
    for plot in PLOT_ORDER:
        png = plots / f"{plot}.png"
        if png.exists():
            parts.append(f"<figure>{_image(png, f'{name}: {plot}')}<figcaption>{_e(CAPTIONS[plot])} "
                         f"(SVG: {_e(str(plots / (plot + '.svg')))})</figcaption></figure>")
    browser = pd.read_csv(files["browser"], keep_default_na=False, dtype=str)
    parts.append(_browser(browser.replace("", float("nan"))))
    return "\n".join(parts)


def _jobs(bench_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for tsv in sorted(Path(bench_dir).rglob("*.tsv")):
        b = read_benchmark(tsv)
        if b:
            rel = tsv.relative_to(bench_dir)
            rule = rel.parts[0] if len(rel.parts) > 1 else rel.stem
            rows.append({"rule": rule, "job": rel.stem, "seconds": b["seconds"], "max_rss_mb": b["max_rss_mb"]})
    jobs = pd.DataFrame(rows, columns=["rule", "job", "seconds", "max_rss_mb"])
    per_rule = jobs.groupby("rule", sort=False).agg(jobs=("job", "count"), total_s=("seconds", "sum"),
                                                   mean_s=("seconds", "mean"), max_s=("seconds", "max"),
                                                   peak_rss_mb=("max_rss_mb", "max")).reset_index()
    return per_rule.round(1), jobs.round(1)


ENV_KEYS = ("cpu_model", "cpu_capability", "cpu_threads")  # shown even when no run recorded them


def _flatten(env: dict) -> dict:
    out = {k: v for k, v in env.items() if k != "versions"}
    out.update({f"version: {k}": v for k, v in (env.get("versions") or {}).items()})
    return {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in out.items()}


def _environment(studies: list[dict], setup_text: str) -> str:
    """One row per key; when runs differ (another machine, other kernels), every value with its runs."""
    envs = {}
    for study in studies:
        envs.update({source: _flatten(env) for source, env in study["environments"].items()})
    keys = list(dict.fromkeys([k for env in envs.values() for k in env] + list(ENV_KEYS)))
    rows = []
    for key in keys:
        seen: dict[str, list[str]] = {}
        for source, env in envs.items():
            value = env.get(key)
            seen.setdefault("(not recorded)" if value is None else str(value), []).append(source)
        if len(seen) <= 1:
            rows.append({"key": key, "value": next(iter(seen), "(not recorded)"), "runs": f"all {len(envs)}"})
            continue
        for value, sources in seen.items():
            shown = ", ".join(sources[:4]) + (f", ... ({len(sources)} in all)" if len(sources) > 4 else "")
            rows.append({"key": key, "value": value, "runs": shown})
    frame = pd.DataFrame(rows, columns=["key", "value", "runs"])
    return ("<h2 id=\"environment\">Environment</h2><p>From every run's metadata (run.json: training; "
            "heldout.json: evaluation). A key whose value differs between runs lists each value with the runs that "
            "had it.</p>" + _html_table(frame) + "<details><summary>Setup YAML</summary><pre>" + _e(setup_text)
            + "</pre></details>")


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


def summary_markdown(studies: list[tuple[dict, pd.DataFrame]]) -> str:
    """results/<setup>/summary.md: the controls, the report's summary table, where it ran, how to regenerate it."""
    setup = studies[0][0]["setup"] if studies else "?"
    frame = _summary_rows(studies)
    table = frame.to_markdown(index=False, disable_numparse=True) if not frame.empty else \
        "No study compares a variant with a baseline."
    lines = controls_text(studies)
    controls = ("## Controls\n\n" + "\n".join(f"- {'**WARNING**: ' if kind == 'warning' else ''}{text}"
                                                for kind, text in lines) + "\n\n") if lines else ""
    return (f"# MAWT ablations, {setup} setup: every compared variant against its own baseline\n\n"
            f"Written by `snakemake --config setup={setup}` (rule `report`) from the study folders' table.csv. "
            f"Runs recorded: {_where([s for s, _ in studies])}.\n\n{controls}{table}\n\n"
            "Held-out exact match, paired over the same seed ids and items; verdicts Holm-adjusted per study "
            "(better/worse: Holm p < 0.05; equivalent: Holm-adjusted TOST within the margin; else inconclusive), "
            "intervals unadjusted; MDE: 80% power at two-sided 0.05 / m (m compared variants of the study).\n")


def build_report(study_dirs: list[Path], setup_file: Path, bench_dir: Path, out_html: Path, tidy_out: Path,
                 summary_md: Path | None = None) -> Path:
    """Write the report, summary.md and the tidy table of every run (tidy_out: path without suffix)
    from the study folders `mawt table` wrote."""
    loaded = []
    for folder in study_dirs:
        files = study_outputs(folder)
        meta = json.loads(files["study"].read_text())
        loaded.append((meta, pd.read_csv(files["table"]), files, Path(folder) / PLOTS))
    setup_name = loaded[0][0]["setup"] if loaded else "?"
    tidy = pd.concat([pd.read_csv(files["long"]) for _, _, files, _ in loaded], ignore_index=True)
    tidy = tidy.astype({"value": float, "seed": float})
    tidy_out = Path(tidy_out)
    for suffix in (".csv", ".parquet"):
        write_table(tidy, tidy_out.with_suffix(suffix))

    pairs = [(s, t) for s, t, _, _ in loaded]
    if summary_md is not None:
        write_text(Path(summary_md), summary_markdown(pairs))
    per_rule, jobs = _jobs(bench_dir)
    nav = " · ".join(['<a href="#summary">summary</a>']
                     + (['<a href="#controls">control verdicts</a>'] if controls_text(pairs) is not None else [])
                     + [f'<a href="#study-{_e(s["name"])}">{_e(s["name"])}</a>' for s, _, _, _ in loaded])
    body = [
        f"<h1>MAWT ablations: {_e(setup_name)} setup</h1>",
        f"<p>{nav} · <a href=\"#environment\">environment</a> · <a href=\"#jobs\">jobs</a></p>",
        _summary_section(loaded),
        *[_study_section(s, t, f, p) for s, t, f, p in loaded],
        _environment([s for s, _, _, _ in loaded], Path(setup_file).read_text() if setup_file else ""),
        "<h2 id=\"jobs\">Jobs: time and memory</h2><p>From Snakemake's <code>benchmark:</code> files "
        f"({_e(str(bench_dir))}); wall seconds and peak resident memory.</p>",
        _html_table(per_rule),
        "<details><summary>Every job</summary>" + _html_table(jobs) + "</details>",
        f"<p class=\"note\">Tidy table of every run: {_e(str(tidy_out.with_suffix('.csv')))} "
        f"(and .parquet), {len(tidy)} rows.</p>",
    ]
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>MAWT ablations ({_e(setup_name)})</title><style>{STYLE}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")
    out_html = Path(out_html)
    write_text(out_html, page)
    return out_html
