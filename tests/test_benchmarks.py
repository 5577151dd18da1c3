"""The benchmark scripts run end to end (tiny sizes; the real numbers are in the docs/ pages).

Each script prints its Markdown table(s) and writes the same text to `<out>.md`
(benchmarks/markdown.py: a title, the "Measured by `<command>` on <machine> ...,
commit <sha>, <date>" line, the tables); the copies of the tables in docs/*.md (and the
README's headline) must have the columns the scripts write.
"""

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
DOCS = ROOT / "docs"


def _page(name: str) -> str:
    """A documentation page's text (`README.md` or a page under docs/)."""
    return (ROOT / name).read_text() if name == "README.md" else (DOCS / name).read_text()
MEASURED = re.compile(r"^Measured by `python benchmarks/(?P<script>[\w.]+\.py)(?P<args>[^`]*)` on (?P<machine>.+) "
                      r"\(torch (?P<torch>\S+), CPU capability (?P<cap>[^)]+)\), "
                      r"commit (?P<commit>[0-9a-f]{7}(\+dirty)?|unknown), \d{4}-\d\d-\d\d \d\d:\d\d UTC$")


@pytest.fixture(scope="module")
def bench():
    """The benchmark scripts as modules (for their COLUMNS and table functions)."""
    sys.path.insert(0, str(BENCH))
    try:
        yield __import__
    finally:
        sys.path.remove(str(BENCH))


def _run(script: str, *args, cwd, timeout=300) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(BENCH / script), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _table_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("|")]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _page_header(page: str, *first_cells: str) -> list[str]:
    """The header cells of the table in `page` (README.md or docs/<page>) whose first columns are `first_cells`:
    exactly one such table there, and none in any other page (a table is copied to one page only)."""
    n = len(first_cells)
    pages = ["README.md"] + sorted(p.name for p in DOCS.glob("*.md"))
    found = {name: [_cells(line) for line in _table_lines(_page(name)) if tuple(_cells(line)[:n]) == first_cells]
             for name in pages}
    where = {name: len(headers) for name, headers in found.items() if headers}
    assert where == {page: 1}, f"tables starting with columns {first_cells!r}: {where} (expected one, in {page})"
    return found[page][0]


def _check_markdown(md: Path, stdout: str, script: str, args: list, columns: list[str]) -> list[str]:
    """`md` is the title, the measured-by line (this command, a commit) and exactly the printed table lines."""
    text = md.read_text()
    lines = text.splitlines()
    assert lines[0].startswith("# ") and lines[1] == ""
    measured = MEASURED.match(lines[2])
    assert measured, lines[2]
    assert measured["script"] == script and shlex.split(measured["args"]) == [str(a) for a in args]
    assert measured["commit"] != "unknown"  # this checkout is a git repository
    table = _table_lines(text)
    assert table and table == _table_lines(stdout)
    assert _cells(table[0]) == columns
    body = text.split("\n", 3)[3].strip()
    assert body in stdout  # the whole body (tables, target checks) is what the script printed
    return table


def test_markdown_helper_writes_title_measured_line_and_body(tmp_path, bench):
    import datetime as dt

    markdown = bench("markdown")
    env = {"cpu_model": "Some CPU", "cpu_threads": 2, "cpu_capability": "AVX2", "versions": {"torch": "2.13.0"},
           "git_commit": "0123456789abcdef", "git_dirty": True, "kernel_env": {}, "gpu": None}
    cmd = markdown.command(BENCH / "attention.py", ["--lengths", "32", "--out", "a b.json"])
    assert cmd == "python benchmarks/attention.py --lengths 32 --out 'a b.json'"
    when = dt.datetime(2025, 1, 31, 12, 5, tzinfo=dt.timezone.utc)
    assert markdown.measured_line(cmd, env, when) == (
        "Measured by `python benchmarks/attention.py --lengths 32 --out 'a b.json'` on Some CPU, 2 threads "
        "(torch 2.13.0, CPU capability AVX2), commit 0123456+dirty, 2025-01-31 12:05 UTC")
    table = markdown.table(["a", "b"], "lr", [[1, "x"]])
    assert table == "| a | b |\n|---|---:|\n| 1 | x |"
    out = markdown.write(markdown.md_path(tmp_path / "r.json"), "Title", table + "\n", cmd, env)
    assert out == tmp_path / "r.md"
    lines = out.read_text().splitlines()
    assert lines[:2] == ["# Title", ""] and MEASURED.match(lines[2]) and lines[3:] == ["", *table.splitlines()]
    assert markdown.measured_line(cmd).split(", commit ")[1][:7] != "unknown"  # this process's environment
    with pytest.raises(ValueError):
        markdown.table(["a", "b"], "l", [])


@pytest.mark.slow
def test_attention_benchmark_writes_every_configuration(tmp_path, bench):
    out = tmp_path / "attention.json"
    args = ["--lengths", "32", "--depths", "2", "--grpo-depths", "2", "--repeats", "1", "--out", out]
    proc = _run("attention.py", *args, cwd=tmp_path, timeout=600)
    data = json.loads(out.read_text())
    got = {(r["variant"], r["depth"]) for r in data["layer"]}
    assert got == {("base", 0), ("fused", 2), ("routed", 2), ("materialized", 2), ("grpo-fused", 2), ("grpo-routed", 2)}
    assert all(r["time_s"] > 0 and r["peak_mb"] >= 0 for r in data["layer"])
    assert data["meta"]["torch"].startswith("2.13.0")
    assert "| 32 | 2 |" in proc.stdout and "Targets:" in proc.stdout
    table = _check_markdown(out.with_suffix(".md"), proc.stdout, "attention.py", args, bench("attention").COLUMNS)
    assert len(table) == 3 + 3  # the layer table and the GRPO-step table
    assert "L=32 D=2: fused/base time" in out.with_suffix(".md").read_text()  # the target checks too


def test_train_step_benchmark_writes_json_and_markdown(tmp_path, bench):
    out = tmp_path / "train_step.json"
    args = ["--layers", "2", "--steps", "1", "--warmup", "0", "--batch", "2", "--out", out]
    proc = _run("train_step.py", *args, cwd=tmp_path)
    data = json.loads(out.read_text())
    assert {r["variant"] for r in data["rows"]} == set(bench("train_step").VARIANTS)
    assert all(r["step_s"] > 0 for r in data["rows"])
    table = _check_markdown(out.with_suffix(".md"), proc.stdout, "train_step.py", args, bench("train_step").COLUMNS)
    assert len(table) == 3 and table[2].startswith("| 2 | ")
    assert "2 layers: GRPO without reuse / with reuse" in out.with_suffix(".md").read_text()


def test_generate_benchmark_decodes_base_fused_and_routed(tmp_path, bench):
    out = tmp_path / "generate.json"
    args = ["--depths", "2", "--layers", "1", "--prompt", "16", "--new", "4", "--repeats", "1", "--out", out]
    proc = _run("generate.py", *args, cwd=tmp_path, timeout=600)
    data = json.loads(out.read_text())
    assert {(r["variant"], r["depth"]) for r in data["rows"]} == {("base", 0), ("fused", 2), ("routed", 2)}
    assert all(r["tokens_per_s"] > 0 for r in data["rows"])
    table = _check_markdown(out.with_suffix(".md"), proc.stdout, "generate.py", args, bench("generate").COLUMNS)
    assert len(table) == 3 and "D=2: routed/base decode throughput" in proc.stdout


def test_docs_show_what_the_precision_memory_benchmark_computes_now(tmp_path, bench):
    """Computed from shapes (no timing): docs/paper.md's copy must be the generator's output, line for line."""
    out = tmp_path / "precision_memory.json"
    proc = _run("precision_memory.py", "--out", out, cwd=ROOT)
    table = _check_markdown(out.with_suffix(".md"), proc.stdout, "precision_memory.py", ["--out", out],
                            bench("precision_memory").COLUMNS)
    assert len(json.loads(out.read_text())) == len(table) - 2
    shown = _table_lines(_page("paper.md"))
    assert len(table) >= 3 and all(line in shown for line in table)


def test_calibration_benchmark_writes_its_table(tmp_path, bench):
    """One cell of the calibration grid, few studies: the table has the script's columns and one row."""
    out = tmp_path / "calibration.md"
    args = ["--sims", "30", "--seeds", "5", "--items", "50", "--base-rates", "0.5", "--latent-seed-sd", "0.6",
            "--effect-sd", "0", "--out", out]
    proc = _run("calibration.py", *args, cwd=tmp_path)
    table = _check_markdown(out, proc.stdout, "calibration.py", args, bench("calibration").COLUMNS)
    assert len(table) == 3 and table[2].startswith("| 5 | 50 | 0.5 | ")
    assert "1 cell, 30 simulated studies each" in proc.stdout


def _standin_results(root: Path) -> Path:
    """A finished stand-in run as paper_cost.py reads it: base config + tokenizer, a split, two runs, evaluations."""
    res = root / "results" / "paper_standin"
    model = res / "base" / "model"
    model.mkdir(parents=True)
    for f in (ROOT / "assets" / "paper_standin" / "tokenizer").iterdir():
        shutil.copy(f, model / f.name)
    (model / "config.json").write_text(json.dumps({"model_type": "qwen2", "num_hidden_layers": 2,
                                                   "vocab_size": 2048}))
    split = res / "data" / "d0"
    split.mkdir(parents=True)
    rows = [{"challenge": f"Name a word of {n} letters.", "answer": "word"} for n in (4, 5)]
    for name in ("train.jsonl", "heldout.jsonl"):
        (split / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    for run, mixer, depth, seconds in (("plain", "fixed", 1, 7.0), ("grpo", "grpo", 4, 8.0)):
        (res / "runs" / run / "eval-e").mkdir(parents=True)
        (res / "runs" / run / "run.json").write_text(json.dumps(
            {"train_seconds": seconds, "config": {"mawt": {"mixer": mixer, "depth": depth},
                                                  "train": {"group_size": 4, "batch_size": 2, "steps": 4}}}))
        (res / "runs" / run / "eval-e" / "heldout.json").write_text(json.dumps({"n": 2, "mean_output_tokens": 24}))
    evals = root / "results" / "benchmarks" / "paper_standin" / "eval_heldout"
    evals.mkdir(parents=True)
    (evals / "e.tsv").write_text("s\th:m:s\tmax_rss\n10.5\t0:00:10\t500\n")
    return res


def test_paper_cost_writes_json_and_markdown(tmp_path, bench):
    _standin_results(tmp_path)
    out = tmp_path / "bench" / "paper_cost.json"
    args = ["--results", "results/paper_standin", "--out", out]
    proc = _run("paper_cost.py", *args, cwd=tmp_path)
    table = _check_markdown(out.with_suffix(".md"), proc.stdout, "paper_cost.py", args, bench("paper_cost").COLUMNS)
    jobs = [_cells(line)[0] for line in table[2:]]
    assert jobs == ["train, grpo D=4 (G=4), 200 steps", "train, fixed D=1, 200 steps",  # runs/ sorted
                    "eval-heldout, 2 items, greedy, 2048 tokens (every sample to the budget)",
                    "eval-heldout, 2 items, DeepSeek protocol: 32768 tokens, n=4 (every sample to the budget)"]
    assert [r["job"] for r in json.loads(out.read_text())] == jobs


def test_full_run_summary_has_the_measured_line_and_tables(tmp_path, bench):
    bench_dir = tmp_path / "results" / "benchmarks" / "micro"
    (bench_dir / "train").mkdir(parents=True)
    (bench_dir / "train" / "r.tsv").write_text("s\th:m:s\tmax_rss\n1.5\t0:00:01\t100\n")
    (bench_dir / "prepare_data.tsv").write_text("s\th:m:s\tmax_rss\n0.5\t0:00:00\t50\n")
    out = tmp_path / "full_run.md"
    args = ["--summarise-only", "--out", out]
    proc = _run("full_run.py", *args, cwd=tmp_path)
    full_run = bench("full_run")
    text = out.read_text()
    lines = text.splitlines()
    assert lines[0] == "# Full workflow run" and lines[1] == ""
    measured = MEASURED.match(lines[2])
    assert measured and measured["script"] == "full_run.py", lines[2]
    assert shlex.split(measured["args"]) == [str(a) for a in args]
    assert text.strip() == proc.stdout.strip()  # printed as written
    table = _table_lines(text)
    assert _cells(table[0]) == full_run.RULE_COLUMNS
    assert [_cells(line)[0] for line in table[2:4]] == ["train", "prepare_data"]
    assert _cells(table[4]) == full_run.STUDY_COLUMNS  # no study here: the header alone


def test_full_run_splits_the_cpu_of_a_command_from_its_childrens(bench):
    """run_measured against a known truth: a process that burns ~0.6 s of CPU itself and
    starts a child that burns ~0.6 s; its own share is the first, the tree's the sum (getrusage)."""
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\n"
    parent = (f"import subprocess, sys, threading\nexec({burn!r})\n"
              f"subprocess.run([sys.executable, '-c', {burn!r}], check=True)\n")
    code, wall, total, own = bench("full_run").run_measured([sys.executable, "-c", parent], every=0.05)
    assert code == 0 and wall >= 1.2
    assert 0.55 <= own <= 1.0, own  # its own 0.6 s plus the interpreter's start, not the child's
    assert total - own >= 0.55, (total, own)  # the child's 0.6 s is in the tree's CPU only
    line = bench("full_run").cpu_line(total, 0.6, own)
    assert f"Snakemake's own process {own:.0f} s" in line and "the jobs 1 s" in line


def test_docs_copies_of_measured_tables_have_the_generators_columns(tmp_path, bench):
    """Every generated table the docs pages show: its header cells are the generator's columns, on the page
    that owns its topic."""
    assert _page_header("layer.md", "length") == bench("attention").COLUMNS
    assert _page_header("layer.md", "G") == bench("attention").GRPO_COLUMNS
    assert _page_header("layer.md", "depth") == bench("generate").COLUMNS
    assert _page_header("grpo.md", "layers") == bench("train_step").COLUMNS
    assert _page_header("paper.md", "trainable") == bench("precision_memory").COLUMNS
    assert _page_header("paper.md", "job (ESTIMATE for the real 1.5B)") == bench("paper_cost").COLUMNS
    assert _page_header("grpo.md", "advantage", "beta") == bench("policy_beta").COLUMNS
    full_run = bench("full_run")
    assert _page_header("workflow.md", "rule") == full_run.RULE_COLUMNS
    assert _page_header("workflow.md", "study", "variant", "trainable params") == full_run.STUDY_COLUMNS
    assert _page_header("workflow.md", "study", "compared") == full_run.PLAN_COLUMNS
    rules = tmp_path / "benchmarks" / "train"
    rules.mkdir(parents=True)
    (rules / "r.tsv").write_text("s\th:m:s\tmax_rss\n1.5\t0:00:01\t100\n")
    generated = full_run.per_rule(tmp_path / "benchmarks").to_markdown(index=False)
    assert _cells(generated.splitlines()[0]) == full_run.RULE_COLUMNS


def test_docs_calibration_table_is_what_its_generator_writes(bench):
    """Not only the header: two rows of docs/statistics.md's calibration table, recomputed by the generator with
    the same streams (2000 studies per cell), agree cell for cell (the same design cells exactly; the rates to
    3 studies in 2000, since another machine's float sums may move a study across a bound)."""
    cal = bench("calibration")
    lines = _table_lines((ROOT / "docs" / "statistics.md").read_text())
    start = [i for i, line in enumerate(lines) if _cells(line)[:1] == ["seeds"]]
    assert len(start) == 1 and _cells(lines[start[0]]) == cal.COLUMNS
    lines = lines[start[0]:]
    rows = {tuple(_cells(line)[:5]): _cells(line) for line in lines[2:]}
    assert len(rows) == 108
    for S, N, p, latent, het in ((3, 50, 0.5, 0.3, 0.0), (5, 50, 0.17, 0.0, 0.5)):
        cell = cal.Cell(seeds=S, items=N, base_rate=p, seed_sd=cal.seed_sd(latent, p), effect_sd=het)
        fresh = [str(c) for c in cal.row(cell, cal.calibrate(cell, 2000, cal.rng(cell), family=cal.FAMILY))]
        shown = rows[tuple(fresh[:5])]
        # the rates are counts of 2000 studies: another machine's float sums may move a study across a bound,
        # so allow 3 studies (0.0015) and the table's rounding; the MDE to 0.5%
        for mine, theirs in zip(fresh[5:], shown[5:], strict=True):
            assert (mine == theirs == "") or float(mine) == pytest.approx(float(theirs), abs=0.0015 + 0.0005, rel=0.005)


@pytest.mark.slow
def test_docs_job_counts_are_what_snakemakes_dry_run_schedules_now(tmp_path, bench):
    """docs/results/job_counts.md (quoted by docs/paper.md) against fresh dry runs: every count, not only the header;
    the generator itself refuses to write when the power plan and the dry run disagree."""
    out = tmp_path / "job_counts.md"
    proc = _run("job_counts.py", "--out", out, cwd=tmp_path, timeout=600)
    shipped = ROOT / "docs" / "results" / "job_counts.md"
    assert _table_lines(shipped.read_text()) == _table_lines(out.read_text()) == _table_lines(proc.stdout)
    assert shipped.read_text().split("\n", 3)[3] == out.read_text().split("\n", 3)[3]  # the sentence below it too
    assert MEASURED.match(shipped.read_text().splitlines()[2])
