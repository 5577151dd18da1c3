"""The project's own contracts: pinned environments agree, CI runs the README's test command, the README
links every docs page and every link resolves."""

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
    # the README's test command, once, after the system packages (Chromium, SLURM) and the local cluster, and
    # before the workflow's format and lint checks
    test = ci_lines.index(commands[1])
    assert ci_lines.count(commands[1]) == 1 and "chromium" in "\n".join(ci_lines[:test])
    assert "slurm-local.sh up" in "\n".join(ci_lines[:test]) and "slurm-local.sh down" in "\n".join(ci_lines[:test])
    assert ci_lines[-2:] == ["snakefmt --check Snakefile workflow/rules",
                             "snakemake --lint --config setup=.test/smoke.yaml ablations=.test/ablations"]
    assert "pytest" in commands[1] and ".[test]" in commands[1]


LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def test_readme_is_short_and_every_relative_link_in_the_docs_resolves():
    """The README stays an entry point (at most 250 lines) that links every docs page; every relative link in
    it and in docs/*.md names a file of the repository and, with `#anchor`, a heading of that file."""
    readme = ROOT / "README.md"
    pages = sorted((ROOT / "docs").rglob("*.md"))
    assert len(readme.read_text().splitlines()) <= 250
    broken = []
    for page in [readme, *pages]:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not a file of this repository
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.is_file() or ROOT not in file.parents:
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file in the repository)")
            elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in LINK.findall(readme.read_text())}
    unlinked = [str(p.relative_to(ROOT)) for p in pages if p.resolve() not in linked]
    assert not unlinked, f"README.md does not link {unlinked}"


def test_readme_headline_rows_are_copies_of_the_measured_run():
    """Every row of the README's result table is the same variant's row of docs/workflow.md's study table
    (exact match, difference to the baseline, verdict, MDE): the headline is a copy, not a retyping."""
    def rows(text):
        return [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
                if line.startswith("|") and not set(line) <= set("|-: ")]
    readme = rows((ROOT / "README.md").read_text().split("## Result", 1)[1].split("\n## ", 1)[0])
    assert readme[0] == ["study", "variant", "exact match [95% CI]", "vs baseline", "verdict", "MDE"]
    measured = {(r[0], r[1]): r for r in rows((ROOT / "docs" / "workflow.md").read_text())
                if r[:3] != ["study", "variant", "trainable params"]}
    assert len(readme) > 10
    for study, variant, em, diff, verdict, mde in readme[1:]:
        full = measured[(study, variant.strip("`"))]
        assert [full[3], full[5], full[7], full[8]] == [em, diff, verdict, mde], (study, variant)


def test_every_shipped_run_config_loads():
    from mawt.training.runconfig import load

    configs = sorted((ROOT / "examples").glob("*.yaml"))
    assert configs
    for path in configs:
        cfg = load(path)
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
    probe = ("import mawt, mawt.studies.setup as s, mawt.evaluation.lmeval as l; from pathlib import Path; "
             "setup = s.load_setup('paper_standin'); "
             "print(Path(mawt.__file__).parent, setup['name'], setup['run']['train']['steps'], "
             "sorted(p.name for p in l.LMEVAL_DIR.glob('*.yaml')))")
    run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    where, name, steps, tasks = run.stdout.split(" ", 3)
    assert Path(where) == site / "mawt" and name == "paper_standin" and steps == "4"  # `extends: paper` resolved
    assert tasks.strip() == "['verbal_choice.yaml', 'verbal_heldout.yaml']"


def test_schemas_use_one_draft_and_their_defaults_are_the_codes():
    """Every schema is JSON-schema 2020-12 (Snakemake's `validate` and mawt.studies.study both validate with it);
    a default a schema states is the one the code applies (one source each, checked so they cannot drift)."""
    from mawt.studies.plan import TARGET_MDE
    from mawt.statistics import DEFAULT_MARGIN
    from mawt.studies.study import DEFAULT_SEEDS

    schemas = {p.name: yaml.safe_load(p.read_text()) for p in (ROOT / "mawt" / "schemas").glob("*.yaml")}
    assert {s["$schema"] for s in schemas.values()} == {"https://json-schema.org/draft/2020-12/schema"}
    setup = schemas["setup.schema.yaml"]["properties"]
    assert setup["seeds"]["default"] == list(DEFAULT_SEEDS)
    assert setup["margin"]["default"] == DEFAULT_MARGIN
    assert setup["plan"]["properties"]["target_mde"]["default"] == TARGET_MDE


def test_the_readme_result_and_the_measured_run_are_generated_from_the_kept_full_run():
    """README's headline block and docs/workflow.md's measured run are what scripts/results_docs.py writes
    from docs/results/full_run.md (the last full run, kept): nothing in them is typed by hand."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "results_docs.py"), "--check", "--full-run",
                           str(ROOT / "docs" / "results" / "full_run.md")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + proc.stdout


def test_the_docs_trainings_and_job_counts_are_job_counts_mds():
    """Every count of trainings or jobs the docs state is the one benchmarks/job_counts.py wrote (from
    Snakemake's own dry run) into docs/results/job_counts.md, not a number typed once and left behind."""
    import re

    table = (ROOT / "docs" / "results" / "job_counts.md").read_text()
    rows = {m.group(1): dict(zip(("micro", "paper_standin", "paper"), map(int, m.group(2, 3, 4))))
            for m in re.finditer(r"^\| `(\w+)` \| (\d+) \| (\d+) \| (\d+) \|$", table, re.M)}
    total = [tuple(map(int, m.groups())) for m in re.finditer(r"^\| \*\*total\*\* \| (\d+) \| (\d+) \| (\d+) \|$",
                                                               table, re.M)][0]
    workflow = (ROOT / "docs" / "workflow.md").read_text()
    paper = (ROOT / "docs" / "paper.md").read_text()
    (trainings,) = re.findall(r"\((\d+)\s+trainings for the 5 default studies", workflow)
    assert int(trainings) == rows["run_config"]["micro"]
    (plan_trainings, plan_evals) = re.findall(r"Jobs: (\d+) trainings, (\d+) held-out evaluations", paper)[0]
    assert int(plan_trainings) == rows["train"]["paper"] == rows["run_config"]["paper"]
    # the held-out evaluations of trained runs: the untuned base and its native-thinking reference not counted
    assert int(plan_evals) == rows["eval_heldout"]["paper"] - 2
    (today,) = re.findall(r"\((\d+) today: \[results/job_counts.md\]", paper)
    assert int(today) == total[1]
