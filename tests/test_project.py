"""The project's own contracts: pinned environments agree, CI runs the README's test command."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins(requirements):
    return {re.split(r"[=<>!~ ]", r, maxsplit=1)[0].lower(): r.replace(" ", "") for r in requirements}


def test_environment_yml_has_the_same_pins_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert _pins(pip_section) == _pins(declared)
    assert all("==" in r for r in declared), "every dependency is pinned exactly"
    assert "python=3.11" in env["dependencies"]
    assert _pins(declared)["torch"] == "torch==2.13.0"


def _readme_commands():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(?:bash|sh)\n(.*?)\n```", quick, flags=re.S)


def test_readme_quick_start_has_two_commands_and_ci_runs_the_test_one():
    commands = _readme_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    ci = (ROOT / ".ci" / "run").read_text()
    ci_lines = [line for line in ci.splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    # the README's test command, once, after the system package and before the workflow's format and lint checks
    assert ci_lines.count(commands[1]) == 1 and "chromium" in ci_lines[0]
    assert ci_lines[-2:] == ["snakefmt --check Snakefile workflow/rules",
                             "snakemake --lint --config setup=.test/smoke.yaml ablations=.test/ablations"]
    assert "pytest" in commands[1] and ".[test]" in commands[1]


def test_every_shipped_run_config_loads():
    from mawt.runconfig import load_run_config

    configs = sorted((ROOT / "examples").glob("*.yaml"))
    assert configs
    for path in configs:
        cfg = load_run_config(path)
        assert path.read_text().startswith("#"), f"{path.name} starts with how to run it"
        assert cfg.data.source == "synthetic" and cfg.trainable == "last"


@pytest.mark.integration
def test_an_installed_wheel_finds_its_schemas_setups_and_lm_eval_tasks(tmp_path):
    """Build the wheel from a copy of the tracked files, unpack it, and use it from elsewhere:
    the package data (schemas, setups, lm-eval tasks) must come with it, not from a checkout."""
    import shutil
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if name.startswith(("mawt/", "pyproject.toml", "README.md")) and (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                           str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    site = tmp_path / "site"
    zipfile.ZipFile(next((tmp_path / "dist").glob("mawt-*.whl"))).extractall(site)
    probe = ("import mawt, mawt.studies as s, mawt.lmeval as l; from pathlib import Path; "
             "setup = s.load_setup('paper_standin'); "
             "print(Path(mawt.__file__).parent, setup['name'], setup['run']['train']['steps'], "
             "sorted(p.name for p in l.LMEVAL_DIR.glob('*.yaml')))")
    run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    where, name, steps, tasks = run.stdout.split(" ", 3)
    assert Path(where) == site / "mawt" and name == "paper_standin" and steps == "4"  # `extends: paper` resolved
    assert tasks.strip() == "['verbal_choice.yaml', 'verbal_heldout.yaml']"
