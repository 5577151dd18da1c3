"""results/<setup>/report.html: one self-contained page (images embedded, no external URL).

It reads only what `mawt table` wrote in each study folder (table.csv, long.csv,
study.json, browser.csv, plots/; see mawt/tables.py), never the runs themselves.

Summary (per study, every compared variant against its own baseline: the
paired difference with its unadjusted 95% interval and the Holm-adjusted
verdict, the study's minimum detectable effect and seeds x items, trainable
parameters) -> one section per study (its YAML, design and MDE, the table, the
plots, a held-out browser) -> environment (every run's versions, git commit,
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

from .atomic import write_text
from .comparisons import design
from .display import NOTE, design_text, display_table, verdict_text
from .layout import PLOTS, study_outputs
from .results import read_benchmark
from .tables import write_table

PLOT_ORDER = ("comparison", "depth_sweep", "training_curves", "depth_usage", "attention")
CAPTIONS = {
    "comparison": "Held-out scores per variant, mean and 95% bootstrap interval over seeds and items; grey band: "
                  "the plain baseline's interval; '*': the paired difference to the variant's own baseline is "
                  "significant after Holm adjustment over the study's compared variants (p < 0.05).",
    "depth_sweep": "Held-out exact match vs depth D, one line per mixer, 95% bands; "
                   "D=1 is plain fine-tuning.",
    "training_curves": "Answer cross-entropy (and GRPO reward) per optimizer step, mean over seeds.",
    "depth_usage": "Share of tokens assigned to each depth d during training (stacked) and the selector's "
                   "entropy (black; dotted: log D, the uniform policy).",
    "attention": "The 5D attention of one held-out example (prompt + gold answer): one map per depth d for "
                 "the head whose depths differ most, first MAWT layer of the study's first MAWT variant, seed 0.",
}
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
"""


def _e(value) -> str:
    return html.escape("" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value))


def _html_table(frame: pd.DataFrame, row_class=None, cell_class=None) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    body = []
    for i, (_, row) in enumerate(frame.iterrows()):
        cls = row_class(i, row) if row_class else ""
        cells = "".join(f"<td{' class=' + repr(cell_class(c, row[c])) if cell_class and cell_class(c, row[c]) else ''}>"
                        f"{_e(row[c])}</td>" for c in frame.columns)
        body.append(f"<tr{' class=' + repr(cls) if cls else ''}>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _ci(row, metric: str = "exact_match") -> str:
    return f"{row[metric]:.2f} [{row[f'{metric}_low']:.2f}, {row[f'{metric}_high']:.2f}]"


def _params(row) -> str:
    value = row.get("trainable_parameters", float("nan"))
    return "" if pd.isna(value) else f"{value:,.0f}"


def _summary_rows(studies: list[tuple[dict, pd.DataFrame]]) -> pd.DataFrame:
    """Every compared variant of every study against its own baseline, Holm-adjusted verdicts (exact match)."""
    rows = []
    for study, table in studies:
        if "diff_exact_match" not in table:
            continue
        by_name = table.set_index("variant")
        study_design = design(table)
        mde = study_design["mde"].get("exact_match", float("nan"))
        for _, row in table[table["diff_exact_match"].notna()].iterrows():
            baseline = by_name.loc[row["baseline"]]
            rows.append({
                "study": study["name"], "variant": row["variant"], "baseline": row["baseline"],
                "trainable params (variant / baseline)": f"{_params(row)} / {_params(baseline) or '0 (untuned)'}",
                "exact match": _ci(row), "baseline exact match": _ci(baseline),
                "difference [95% CI]": f"{row['diff_exact_match']:+.2f} [{row['diff_exact_match_low']:+.2f}, "
                                       f"{row['diff_exact_match_high']:+.2f}]",
                "verdict (Holm-adjusted)": verdict_text(row),
                "study MDE": f"{mde:.3f}", "seeds x items": study_design["seeds x items"],
            })
    return pd.DataFrame(rows)


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


def _study_section(study: dict, table: pd.DataFrame, files: dict[str, Path], plots: Path) -> str:
    shown = display_table(table)
    name = study["name"]
    parts = [f'<h2 id="study-{_e(name)}">Study: {_e(name)}</h2>', f"<p>{_e(study['description'])}</p>",
             "<details><summary>Study YAML</summary><pre>" + _e(study["yaml"]) + "</pre></details>",
             f"<p>{_e(design_text(table))}</p>",
             _html_table(shown, row_class=lambda i, r: "baseline" if r["baseline"] in ("", "(baseline)") else "",
                         cell_class=lambda c, v: "sig" if "vs baseline" in c and str(v).endswith("*") else ""),
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
    """results/<setup>/summary.md: the report's summary table, where it ran, and how to regenerate it."""
    setup = studies[0][0]["setup"] if studies else "?"
    frame = _summary_rows(studies)
    table = frame.to_markdown(index=False, disable_numparse=True) if not frame.empty else \
        "No study compares a variant with a baseline."
    return (f"# MAWT ablations, {setup} setup: every compared variant against its own baseline\n\n"
            f"Written by `snakemake --config setup={setup}` (rule `report`) from the study folders' table.csv. "
            f"Runs recorded: {_where([s for s, _ in studies])}.\n\n{table}\n\n"
            "Held-out exact match, paired over the same seed ids and items; verdicts Holm-adjusted per study, "
            "intervals unadjusted; study MDE: 80% power at two-sided alpha 0.05.\n")


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

    summary = _summary_rows([(s, t) for s, t, _, _ in loaded])
    if summary_md is not None:
        write_text(Path(summary_md), summary_markdown([(s, t) for s, t, _, _ in loaded]))
    per_rule, jobs = _jobs(bench_dir)
    nav = " · ".join(f'<a href="#study-{_e(s["name"])}">{_e(s["name"])}</a>' for s, _, _, _ in loaded)
    body = [
        f"<h1>MAWT ablations: {_e(setup_name)} setup</h1>",
        f"<p>{nav} · <a href=\"#environment\">environment</a> · <a href=\"#jobs\">jobs</a></p>",
        "<h2>Summary</h2><p>Every compared variant of each study against its own baseline (plain fine-tuning, D=1, "
        "with the same trainable layers), held-out exact match, paired over the same seed ids and held-out items. "
        "Verdicts are Holm-adjusted over each study's compared variants (Holm 1979; better/worse only where the "
        "adjusted p &lt; 0.05); the 95% intervals are unadjusted. Study MDE: the smallest true difference the "
        "study detects with 80% power at two-sided alpha 0.05 for its seeds x items (median over its compared "
        "variants); 'not distinguishable' says nothing about smaller effects.</p>",
        _html_table(summary) if not summary.empty else "<p>No study compares a variant with a baseline.</p>",
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
