"""The project's own contracts: pinned environments agree, CI runs the README's test command."""

import re
import tomllib
from pathlib import Path

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
    assert ci_lines == [commands[1]]
    assert "pytest" in commands[1] and ".[test]" in commands[1]


def test_every_shipped_run_config_loads():
    from mawt.runconfig import load_run_config

    configs = sorted((ROOT / "examples").glob("*.yaml"))
    assert configs
    for path in configs:
        cfg = load_run_config(path)
        assert path.read_text().startswith("#"), f"{path.name} starts with how to run it"
        assert cfg.data.source == "synthetic" and cfg.trainable == "last"
