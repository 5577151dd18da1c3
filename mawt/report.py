"""results/report.html: one self-contained page (images embedded, no external URL).

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
from .tables import (NOTE, Study, design, design_text, display_table, load_study, long_table,
                     read_benchmark, verdict_text, write_table)

PLOT_ORDER = ("comparison", "depth_sweep", "training_curves", "slice_usage", "attention")
CAPTIONS = {
    "comparison": "Held-out scores per variant, mean and 95% bootstrap interval over seeds and items; grey band: "
                  "the plain baseline's interval; '*': the paired difference to the variant's own baseline is "
                  "significant after Holm adjustment over the study's compared variants (p < 0.05).",
    "depth_sweep": "Held-out exact match vs number of depth slices D, one line per mixer, 95% bands; "
                   "D=1 is plain fine-tuning.",
    "training_curves": "Answer cross-entropy (and GRPO reward) per optimizer step, mean over seeds.",
    "slice_usage": "Share of tokens assigned to each depth slice during training (stacked) and the selector's "
                   "entropy (black; dotted: log D, the uniform policy).",
    "attention": "The 5D attention of one held-out example (prompt + gold answer): one map per depth slice for "
                 "the head whose slices differ most, first MAWT layer of the study's first MAWT variant, seed 0.",
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


def _summary_rows(studies: list[tuple[Study, pd.DataFrame]]) -> pd.DataFrame:
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
                "study": study.name, "variant": row["variant"], "baseline": row["baseline"],
                "trainable params (variant / baseline)": f"{_params(row)} / {_params(baseline) or '0 (untuned)'}",
                "exact match": _ci(row), "baseline exact match": _ci(baseline),
                "difference [95% CI]": f"{row['diff_exact_match']:+.2f} [{row['diff_exact_match_low']:+.2f}, "
                                       f"{row['diff_exact_match_high']:+.2f}]",
                "verdict (Holm-adjusted)": verdict_text(row),
                "study MDE": f"{mde:.3f}", "seeds x items": study_design["seeds x items"],
            })
    return pd.DataFrame(rows)


def _browser(study: Study) -> str:
    """Held-out items x variants: first seed's answer, correct seeds / seeds (one table per data split)."""
    runs = study.runs
    return "".join(_split_browser(study, group) for _, group in runs.groupby("data", dropna=False, sort=False))


def _split_browser(study: Study, runs: pd.DataFrame) -> str:
    first = study.items[runs["run_id"].iloc[0]]
    frame = pd.DataFrame({"#": range(len(first)), "challenge": first["challenge"], "gold": first["answer"]})
    for variant in dict.fromkeys(runs["variant"]):
        ids = list(runs.loc[runs["variant"] == variant].sort_values("seed", na_position="first")["run_id"])
        correct = sum(study.items[r]["challenge_correct"].astype(int) for r in ids)
        answers = study.items[ids[0]]["prediction"]
        frame[variant] = [f"{a!s} ({c}/{len(ids)})" for a, c in zip(answers, correct, strict=True)]

    def cell_class(col, value):
        if col in ("#", "challenge", "gold"):
            return ""
        got, total = value.rsplit("(", 1)[1].rstrip(")").split("/")
        return "ok" if got == total else ("bad" if got == "0" else "")

    return ("<details><summary>Held-out browser: every item, each variant's answer (first seed) and how many "
            "seeds got it right (challenge metric)</summary>" + _html_table(frame, cell_class=cell_class)
            + "</details>")


def _study_section(study: Study, table: pd.DataFrame, plots: Path) -> str:
    shown = display_table(table)
    parts = [f'<h2 id="study-{_e(study.name)}">Study: {_e(study.name)}</h2>', f"<p>{_e(study.description)}</p>",
             "<details><summary>Study YAML</summary><pre>" + _e(study.yaml) + "</pre></details>",
             f"<p>{_e(design_text(table))}</p>",
             _html_table(shown, row_class=lambda i, r: "baseline" if r["baseline"] in ("", "(baseline)") else "",
                         cell_class=lambda c, v: "sig" if "vs baseline" in c and str(v).endswith("*") else ""),
             f'<p class="note">{_e(NOTE)}</p>']
    for name in PLOT_ORDER:
        png = plots / f"{name}.png"
        if png.exists():
            parts.append(f"<figure>{_image(png, f'{study.name}: {name}')}<figcaption>{_e(CAPTIONS[name])} "
                         f"(SVG: {_e(str(plots / (name + '.svg')))})</figcaption></figure>")
    parts.append(_browser(study))
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


def _environment(studies: list[Study], setup_text: str) -> str:
    """One row per key; when runs differ (another machine, other kernels), every value with its runs."""
    envs = {}
    for study in studies:
        envs.update({source: _flatten(env) for source, env in study.environments.items()})
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


def build_report(indexes: list[Path], setup_file: Path, bench_dir: Path, out_html: Path, tidy_out: Path) -> Path:
    """Write the report and the tidy table of every run (tidy_out: path without suffix)."""
    loaded = []
    for index in indexes:
        index = Path(index)
        study = load_study(index)
        table = pd.read_csv(index.parent / "table.csv")
        loaded.append((study, table, index.parent / "plots"))
    setup_name = loaded[0][0].setup if loaded else "?"
    tidy = pd.concat([long_table(s) for s, _, _ in loaded], ignore_index=True)
    tidy = tidy.astype({"value": float, "seed": float})
    tidy_out = Path(tidy_out)
    for suffix in (".csv", ".parquet"):
        write_table(tidy, tidy_out.with_suffix(suffix))

    summary = _summary_rows([(s, t) for s, t, _ in loaded])
    per_rule, jobs = _jobs(bench_dir)
    nav = " · ".join(f'<a href="#study-{_e(s.name)}">{_e(s.name)}</a>' for s, _, _ in loaded)
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
        *[_study_section(s, t, p) for s, t, p in loaded],
        _environment([s for s, _, _ in loaded], Path(setup_file).read_text() if setup_file else ""),
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
