"""The cluster path for real: the workflow's SLURM profile (workflow/profiles/slurm) through a real single-node
SLURM that scripts/slurm-local.sh brings up on this machine (munge, MariaDB, slurmdbd, slurmctld, slurmd).

Skipped, with the script's one-line reason, where SLURM cannot start (packages missing, not root). `.ci/run`
installs the packages and brings the cluster up before the tests and down after; run alone, the test brings
it up itself and takes down what it started.
"""

import fcntl
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from conftest import MICRO_BASE  # noqa: E402
from test_workflow import SMOKE_SETUP, SMOKE_STUDY, job_counts  # noqa: E402

from mawt.studies.setup import load_setup  # noqa: E402
from mawt.studies.study import load_studies, run_config, run_id  # noqa: E402

pytestmark = pytest.mark.slow
SCRIPT = ROOT / "scripts" / "slurm-local.sh"
PROFILE = ROOT / "workflow" / "profiles" / "slurm"
# the rules that do real work: each an sbatch job (everything else is in the Snakefile's `localrules`)
HEAVY = {"pretrain_micro", "prepare_data", "train", "eval_heldout", "lm_eval", "attention_example"}
# what changes with the scheduler, not with what was computed (table.csv's cost columns)
COST = ("train_seconds", "job_seconds", "peak_mem_mb")
# the time-limit case: a training of this many seconds at the pace measured just before, with nothing else
# running; the first attempt runs beside the other workflows (slower), and SLURM's limit of 1 minute kills
# it 60-90 s after its start (slurmctld checks limits every 30 s), start-up included: it cannot end first
TIMEOUT_TRAIN_S = 100


@pytest.fixture(scope="module")
def cluster():
    with open("/tmp/mawt-slurm-local.lock", "w") as lock:  # one `up` at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        was_up = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True).returncode == 0
        up = subprocess.run(["bash", str(SCRIPT), "up"], capture_output=True, text=True)
    if up.returncode:
        pytest.skip((up.stderr.strip().splitlines() or ["slurm-local.sh up failed"])[-1])
    yield up.stdout.strip()
    if not was_up:
        subprocess.run(["bash", str(SCRIPT), "down"], capture_output=True)


def _snakemake(workdir: Path, setup: Path, *args: str) -> list[str]:
    return ["snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--configfile",
            str(ROOT / "workflow" / "config.yaml"), "--config", f"setup={setup}", f"ablations={workdir / 'ablations'}",
            "--max-threads", "1", *args]


# through the project's profile, as a cluster user runs it; on a local file system the profile's 60 s wait
# for files to appear is not needed, nor the plugin's 40 s before the first status check
THROUGH_SLURM = ("--profile", str(PROFILE), "--latency-wait", "5", "--slurm-init-seconds-before-status-checks", "1")


def _workdir(path: Path, setup: dict, study: dict) -> Path:
    (path / "ablations").mkdir(parents=True)
    (path / "ablations" / f"{study['name']}.yaml").write_text(yaml.safe_dump(study))
    (path / "setup.yaml").write_text(yaml.safe_dump(setup))
    return path / "setup.yaml"


def _sacct(run_uuid: str) -> pd.DataFrame:
    """The jobs SLURM's accounting holds for one Snakemake call (the plugin names every job by its run id)."""
    out = subprocess.run(["sacct", "-X", "-P", "-n", "--name", run_uuid, "--format", "JobID,State,Comment,Partition,AllocTRES"],
                         capture_output=True, text=True, check=True).stdout
    rows = [line.split("|") for line in out.splitlines() if line]
    frame = pd.DataFrame(rows, columns=["id", "state", "comment", "partition", "tres"])
    frame["rule"] = frame["comment"].str.removeprefix("rule_").str.split("_wildcards_").str[0]
    return frame


def _run_uuid(log: str) -> str:
    return log.split("SLURM run ID: ", 1)[1].split()[0]


def _timeout_setup(path: Path, seconds_per_step: float) -> tuple[Path, str, int]:
    steps = math.ceil(TIMEOUT_TRAIN_S / seconds_per_step)
    setup = json.loads(json.dumps(SMOKE_SETUP))
    setup.update(name="timeout", base_model=str(MICRO_BASE))
    del setup["pretrain"]
    setup["run"]["train"].update(steps=steps, save_steps=max(1, steps // 20), logging_steps=max(1, steps // 20))
    study = {"name": "timeout", "seeds": [0], "variants": {"grpo2": {"mawt": {"depth": 2, "mixer": "grpo"}}}}
    path_setup = _workdir(path, setup, study)
    s = load_setup(str(path_setup))
    spec = load_studies(s, ["timeout"], path / "ablations")["timeout"]
    return path_setup, run_id(run_config(s, spec, "grpo2", 0)), steps


def _seconds_per_step(tmp_path: Path) -> float:
    """This machine's pace for the time-limit case's training, measured now (under the load the case runs in):
    the time between two checkpoints of a short run, the start-up left out."""
    setup, _, _ = _timeout_setup(tmp_path / "pace", 1.0)
    s = load_setup(str(setup))
    spec = load_studies(s, ["timeout"], tmp_path / "pace" / "ablations")["timeout"]
    cfg = run_config(s, spec, "grpo2", 0)
    cfg["train"].update(steps=300, save_steps=100)
    (tmp_path / "pace" / "run.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen([sys.executable, "-m", "mawt", "train", "--config", str(tmp_path / "pace" / "run.yaml"),
                             "--out", str(tmp_path / "pace" / "run")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen, ckpts = {}, tmp_path / "pace" / "run" / "checkpoints"
    while proc.poll() is None or len(seen) < 2:
        for step in (100, 300):
            if step not in seen and (ckpts / f"checkpoint-{step}" / "COMPLETE").exists():
                seen[step] = time.perf_counter()
        if proc.poll() is not None and len(seen) < 2:
            pytest.fail(f"the pace run ended without its checkpoints: {proc.stderr.read()[-2000:]}")
        time.sleep(0.02)
    return (seen[300] - seen[100]) / 200


def test_the_slurm_profile_runs_the_test_config_through_a_real_scheduler(tmp_path, cluster):
    started = time.time()
    # 1. the time-limit case, started first (the longest): a limit of 1 minute on the first attempt, 30 on the
    # retry (Snakemake's `attempt`); the GPU rule's other resources restated (a --set-resources block replaces
    # the profile's)
    t_setup, rid, steps = _timeout_setup(tmp_path / "timeout", _seconds_per_step(tmp_path))
    timeout = subprocess.Popen(
        _snakemake(tmp_path / "timeout", t_setup, f"results/timeout/runs/{rid}/run.json", *THROUGH_SLURM,
                   "--set-resources", "train:runtime=1 if attempt == 1 else 30", "train:slurm_partition='gpu'",
                   "train:gpu=1", "train:mem_mb=64000"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # 2. the .test/ configuration through the scheduler, and 3. the same locally (same machine, same threads)
    smoke_setup = _workdir(tmp_path / "slurm", SMOKE_SETUP, SMOKE_STUDY)
    slurm = subprocess.Popen(_snakemake(tmp_path / "slurm", smoke_setup, *THROUGH_SLURM), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    local_setup = _workdir(tmp_path / "local", SMOKE_SETUP, SMOKE_STUDY)
    local = subprocess.run(_snakemake(tmp_path / "local", local_setup, "--cores", "2"), capture_output=True, text=True)
    assert local.returncode == 0, local.stderr[-3000:]
    log, _ = slurm.communicate(timeout=900)
    assert slurm.returncode == 0, log[-4000:]

    # every heavy job went through sbatch and accounting lists exactly those, all COMPLETED; GPU rules on the
    # gpu partition with a GPU, the others on the default partition
    jobs = _sacct(_run_uuid(log))
    expected = {rule: n for rule, n in job_counts(local.stdout + local.stderr).items() if rule in HEAVY}
    assert jobs["rule"].value_counts().to_dict() == expected, jobs
    assert (jobs["state"] == "COMPLETED").all(), jobs
    gpu = jobs["rule"].isin({"train", "eval_heldout", "lm_eval"})
    assert (jobs.loc[gpu, "partition"] == "gpu").all() and jobs.loc[gpu, "tres"].str.contains("gres/gpu=1").all()
    assert (jobs.loc[~gpu, "partition"] == "cpu").all() and not jobs.loc[~gpu, "tres"].str.contains("gpu").any()
    assert "localrule run_config" in log and "localrule report" in log  # trivial rules ran where Snakemake runs

    # logs where docs/paper.md says: each job's own under results/logs/<setup>/<rule>/
    logs = tmp_path / "slurm" / "results" / "logs" / "smoke"
    assert {p.name for p in logs.iterdir()} >= HEAVY - {"pretrain_micro"} and list((logs / "train").glob("*.log"))

    # the same numbers as the local run: models, held-out and lm-eval records byte for byte, tables but for costs
    a, b = tmp_path / "slurm" / "results" / "smoke", tmp_path / "local" / "results" / "smoke"
    files = sorted(p.relative_to(a) for pattern in ("runs/*/model/model.safetensors", "runs/*/eval-*/heldout.json",
                                                    "runs/*/eval-*/lmeval.json", "runs/*/metrics.jsonl")
                   for p in a.glob(pattern))
    assert len(files) > 20
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    ta, tb = (pd.read_csv(d / "studies" / "tiny" / "table.csv") for d in (a, b))
    keep = [c for c in ta.columns if not c.startswith(COST)]
    pd.testing.assert_frame_equal(ta[keep], tb[keep])

    # the time-limit case: killed by SLURM (TIMEOUT), resubmitted by Snakemake, resumed from its checkpoint
    log, _ = timeout.communicate(timeout=900)
    assert timeout.returncode == 0, log[-4000:]
    jobs = _sacct(_run_uuid(log))
    train = jobs[jobs["rule"] == "train"]
    assert train["state"].tolist() == ["TIMEOUT", "COMPLETED"], jobs
    assert "Trying to restart job" in log
    info = json.loads((tmp_path / "timeout" / "results" / "timeout" / "runs" / rid / "run.json").read_text())
    assert info["resumed_from"] and info["resumed_from"].startswith("checkpoint-"), "resumed, not restarted"
    assert int(info["resumed_from"].split("-")[1]) < steps
    # the failed attempt's SLURM output is kept where the plugin writes it, and says why it ended
    (failed,) = (tmp_path / "timeout" / ".snakemake" / "slurm_logs" / "rule_train").rglob(f"{train['id'].iloc[0]}.log")
    assert "DUE TO TIME LIMIT" in failed.read_text()
    print(f"slurm test: {time.time() - started:.0f} s, {cluster}")


@pytest.mark.parametrize("case", ["not root", "no packages"])
def test_where_slurm_cannot_start_the_script_says_why_in_one_line(tmp_path, case):
    """What the test above skips with: one line naming what is missing, exit 2, nothing started."""
    import os
    import shutil

    if case == "not root":
        if os.geteuid() != 0 or not shutil.which("runuser"):
            pytest.skip("needs root and runuser to run the script as another user")
        cmd, env = ["runuser", "-u", "nobody", "--", "bash", str(SCRIPT), "up"], None
    else:  # a PATH with the shell tools the script needs and none of SLURM's, munge's or MariaDB's
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for tool in ("id", "dirname", "seq", "sleep", "cat", "grep", "sed", "sort", "hostname"):
            if shutil.which(tool):
                (bin_dir / tool).symlink_to(shutil.which(tool))
        cmd, env = [shutil.which("bash"), str(SCRIPT), "up"], {**os.environ, "PATH": str(bin_dir)}
        if os.geteuid() != 0:
            pytest.skip("as another user the first line says 'needs root' (the case above)")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("slurm-local: "), proc.stderr
    assert ("needs root" if case == "not root" else "missing munged mariadbd") in lines[0]
    if case == "no packages":
        assert "apt-get install slurmctld slurmd slurm-client slurmdbd munge mariadb-server" in lines[0]
