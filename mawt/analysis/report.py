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

A run shared by several studies is shown once, with a note where the others reuse it
(mawt/analysis/shared.py). The summary's rows, the controls paragraph and summary.md:
mawt/analysis/summary.py; the HTML building blocks: mawt/analysis/markup.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mawt.common.atomic import write_text
from mawt.analysis.comparisons import design
from mawt.analysis.display import NOTE, design_text, display_table
from mawt.common.layout import PLOTS, study_outputs
from mawt.analysis.markup import escape, html_table, image
from mawt.analysis.plots import VERDICT_COLOURS
from mawt.analysis.results import read_benchmark
from mawt.analysis.shared import Shared, note, shared_runs, shared_texts
from mawt.analysis.summary import WARNING, controls_text, summary_markdown, summary_rows
from mawt.analysis.tables import write_table

PLOT_ORDER = ("comparison", "depth_sweep", "training_curves", "depth_usage", "attention")
CAPTIONS = {
    "forest": "Paired difference in held-out exact match of each compared variant to its own baseline (point) with "
              "its unadjusted 95% t interval (bar); vertical line: no difference; shaded band: the study's "
              "equivalence margin; right: the Holm-adjusted verdict (better/worse: Holm p < 0.05; equivalent: "
              "Holm-adjusted TOST p < 0.05, the difference lies within the margin; else inconclusive; floor: both "
              "sides score the same constant on every item, nothing to test).",
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


def _verdict_table(frame: pd.DataFrame) -> str:
    """The compact summary table: fixed layout within the page width, long cells wrapped, the verdict coloured."""
    return html_table(frame, table_class="verdicts",
                       cell_class=lambda c, v: f"verdict v-{v}" if c == "verdict" and v else "")



def _controls_html(studies: list[tuple[dict, pd.DataFrame]]) -> str:
    lines = controls_text(studies)
    if lines is None:
        return ""
    failed = any(kind == "warning" for kind, _ in lines)
    parts = []
    for kind, text in lines:
        if kind == "warning" and WARNING in text:
            head, tail = text.split(f"warning, {WARNING}", 1)
            parts.append(f'<p>{escape(head)}<span class="warning">⚠ Warning: {escape(WARNING)}</span>'
                         f'{escape(tail)}</p>')
        elif kind == "warning":
            parts.append(f'<p class="warning">⚠ {escape(text)}</p>')
        else:
            parts.append(f"<p>{'✓ ' if kind == 'ok' else ''}{escape(text)}</p>")
    return (f'<div class="controls{" failed" if failed else ""}" id="controls"><h3>Controls</h3>'
            + "".join(parts) + "</div>")


def _summary_section(loaded: list[tuple[dict, pd.DataFrame, dict, Path]], shared: Shared) -> str:
    """Controls first, what several studies share (once), then per study: its verdict table and its forest plot
    right under it."""
    pairs = [(s, t) for s, t, _, _ in loaded]
    parts = ["<h2 id=\"summary\">Summary</h2><p>Every compared variant of each study against its own baseline "
             "(plain fine-tuning, D=1, with the same trainable layers, or the variant a control is compared with), "
             "held-out exact match, paired over the same seed ids and held-out items. Verdicts are Holm-adjusted "
             "over each study's compared variants (Holm 1979): <b>better</b>/<b>worse</b> where the adjusted p "
             "&lt; 0.05; else <b>equivalent</b> where two one-sided tests (Holm-adjusted) place the difference "
             "within the study's ±margin; else <b>inconclusive</b>. <b>floor</b>: the variant and its baseline score "
             "the same constant on every item of every seed (0 everywhere, say), so there is nothing to test: no "
             "p-value, no MDE, and it is not counted in Holm's m; move the variant off the floor (more steps, a "
             "higher learning rate). The 95% intervals are unadjusted. MDE: the "
             "smallest true difference the verdict shown detects with 80% power (two-sided 0.05 / m, m compared "
             "variants but the floors); 'inconclusive' says nothing about smaller effects. 'seeds for MDE = "
             "margin': the seeds "
             "that would bring the MDE down to the margin at the same items.</p>",
             _controls_html(pairs), *[f'<p class="note">{escape(text)}</p>' for text in shared_texts(shared)]]
    shown = summary_rows(pairs, shared)
    if shown.empty:
        parts.append("<p>No study compares a variant with a baseline.</p>")
    for study, table, _, plots in loaded:
        rows = shown[shown["study"] == study["name"]]
        if rows.empty:
            continue
        d = design(table)
        name = study["name"]
        parts.append(f'<h3 id="summary-{escape(name)}"><a href="#study-{escape(name)}">{escape(name)}</a></h3>'
                     f'<p class="note">{escape(d["seeds x items"])}, {d["compared"]} compared variant(s)'
                     + (f' ({d["floor"]} at the floor)' if d["floor"] else "") + f', equivalence '
                     f'margin ±{d["margin"]:g}.</p>')
        parts.append(_verdict_table(rows))
        png = plots / "forest.png"
        if png.exists():
            parts.append(f"<figure>{image(png, f'{name}: forest')}<figcaption>{escape(CAPTIONS['forest'])} "
                         f"(SVG: {escape(str(plots / 'forest.svg'))})</figcaption></figure>")
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
            "seeds got it right (challenge metric)</summary>" + html_table(frame, cell_class=cell_class)
            + "</details>")


def _study_cell_class(column: str, value) -> str:
    if "vs baseline" in column and str(value).endswith("*"):
        return "sig"
    return f"verdict v-{value}" if column.endswith(" verdict") and value else ""


def _study_section(study: dict, table: pd.DataFrame, files: dict[str, Path], plots: Path, shared: Shared) -> str:
    """Every row of the study's table; a compared variant whose runs an earlier row showed is marked so."""
    shown = display_table(table)
    name = study["name"]
    shown["variant"] = [f"{v} ({note(shared.runs[name, v])})" if (name, v) in shared.runs else v
                        for v in shown["variant"]]
    parts = [f'<h2 id="study-{escape(name)}">Study: {escape(name)}</h2>', f"<p>{escape(study['description'])}</p>",
             "<details><summary>Study YAML</summary><pre>" + escape(study["yaml"]) + "</pre></details>",
             f"<p>{escape(design_text(table))}</p>",
             html_table(shown, row_class=lambda i, r: "baseline" if r["baseline"] in ("", "(baseline)") else "",
                         cell_class=_study_cell_class),
             f'<p class="note">{escape(NOTE)}</p>']
    for plot in PLOT_ORDER:
        png = plots / f"{plot}.png"
        if png.exists():
            parts.append(f"<figure>{image(png, f'{name}: {plot}')}<figcaption>{escape(CAPTIONS[plot])} "
                         f"(SVG: {escape(str(plots / (plot + '.svg')))})</figcaption></figure>")
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
            "had it.</p>" + html_table(frame) + "<details><summary>Setup YAML</summary><pre>" + escape(setup_text)
            + "</pre></details>")



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
    longs = [pd.read_csv(files["long"], dtype={"run_id": str}) for _, _, files, _ in loaded]
    shared = shared_runs([(s, t, long) for (s, t, _, _), long in zip(loaded, longs, strict=True)])
    tidy = pd.concat(longs, ignore_index=True)
    tidy = tidy.astype({"value": float, "seed": float})
    tidy_out = Path(tidy_out)
    for suffix in (".csv", ".parquet"):
        write_table(tidy, tidy_out.with_suffix(suffix))

    pairs = [(s, t) for s, t, _, _ in loaded]
    if summary_md is not None:
        write_text(Path(summary_md), summary_markdown(pairs, shared))
    per_rule, jobs = _jobs(bench_dir)
    nav = " · ".join(['<a href="#summary">summary</a>']
                     + (['<a href="#controls">control verdicts</a>'] if controls_text(pairs) is not None else [])
                     + [f'<a href="#study-{escape(s["name"])}">{escape(s["name"])}</a>' for s, _, _, _ in loaded])
    body = [
        f"<h1>MAWT ablations: {escape(setup_name)} setup</h1>",
        f"<p>{nav} · <a href=\"#environment\">environment</a> · <a href=\"#jobs\">jobs</a></p>",
        _summary_section(loaded, shared),
        *[_study_section(s, t, f, p, shared) for s, t, f, p in loaded],
        _environment([s for s, _, _, _ in loaded], Path(setup_file).read_text() if setup_file else ""),
        "<h2 id=\"jobs\">Jobs: time and memory</h2><p>From Snakemake's <code>benchmark:</code> files "
        f"({escape(str(bench_dir))}); wall seconds and peak resident memory.</p>",
        html_table(per_rule),
        "<details><summary>Every job</summary>" + html_table(jobs) + "</details>",
        f"<p class=\"note\">Tidy table of every run: {escape(str(tidy_out.with_suffix('.csv')))} "
        f"(and .parquet), {len(tidy)} rows.</p>",
    ]
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>MAWT ablations ({escape(setup_name)})</title><style>{STYLE}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")
    out_html = Path(out_html)
    write_text(out_html, page)
    return out_html
