"""The benchmark scripts run end to end (tiny sizes; the real numbers are in the README)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_attention_benchmark_writes_every_configuration(tmp_path):
    out = tmp_path / "attention.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "attention.py"), "--lengths", "32",
           "--depths", "1", "2", "--repeats", "1", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    got = {(r["variant"], r["depth"]) for r in data["layer"]}
    assert got == {("base", 0), ("fused", 1), ("materialized", 1), ("fused", 2), ("materialized", 2)}
    assert all(r["time_s"] > 0 and r["peak_mb"] >= 0 for r in data["layer"])
    assert data["meta"]["torch"].startswith("2.13.0")
    assert "| 32 | 2 |" in proc.stdout and "Targets:" in proc.stdout


README = (ROOT / "README.md").read_text()


def _table_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("|")]


def test_readme_shows_what_the_precision_memory_benchmark_computes_now():
    """Computed from shapes (no timing): the README's copy must be the generator's output, line for line."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "precision_memory.py")], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = _table_lines(proc.stdout)
    assert len(table) >= 3 and all(line in README for line in table)


def test_readme_copies_of_measured_tables_have_the_generators_columns(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import full_run
    import paper_cost

    cells = lambda line: [c.strip() for c in line.split("|") if c.strip()]  # noqa: E731
    readme = _table_lines(README)
    assert cells(next(line for line in readme if line.startswith("| job (ESTIMATE"))) == paper_cost.COLUMNS
    bench = tmp_path / "benchmarks" / "train"
    bench.mkdir(parents=True)
    (bench / "r.tsv").write_text("s\th:m:s\tmax_rss\n1.5\t0:00:01\t100\n")
    generated = full_run.per_rule(tmp_path / "benchmarks").to_markdown(index=False)
    assert cells(generated.splitlines()[0]) == cells(next(line for line in readme if line.startswith("| rule ")))
