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
