"""Nothing lost, nothing silently wrong: kills, crashes mid-write, NaNs, bad input, unsafe files, determinism.

Everything here is real: Snakemake and the training CLI run as subprocesses and
are killed with real signals; files are real files.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from mawt.layer.patching import load_model
from mawt.training import ownership
from mawt.training.train import train_run
from mawt.training.runconfig import load
from mawt.studies.setup import StudyError, load_setup
from mawt.studies.study import load_studies, run_config, run_id

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from conftest import MICRO_BASE  # noqa: E402
from test_workflow import SMOKE_SETUP, snakemake  # noqa: E402

CLI = [sys.executable, "-m", "mawt"]


@pytest.fixture
def base_dir(micro_base):
    return micro_base


def _run_yaml(tmp_path: Path, base_dir: Path, name: str = "run.yaml", **over) -> Path:
    cfg = {"base_model": str(base_dir),
           "data": {"source": "synthetic", "families": ["shift_two"], "synthetic_rows": 40, "n_train": 24,
                    "n_heldout": 8, "difficulty": 1},
           "mawt": {"depth": 2, "mixer": "grpo"}, "trainable": "last",
           "train": {"steps": 6, "batch_size": 8, "logging_steps": 2, "save_steps": 0, "seed": 0}}
    for key, value in over.items():
        cfg[key] = {**cfg[key], **value} if isinstance(value, dict) and isinstance(cfg.get(key), dict) else value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


# ---------------------------------------------------------------- 1. kill and resume


KILL_STUDY = {"name": "kill", "seeds": [0], "variants": {"grpo2": {"mawt": {"depth": 2, "mixer": "grpo"}}}}


def _kill_setup(tmp_path: Path) -> tuple[Path, str]:
    setup = json.loads(json.dumps(SMOKE_SETUP))
    setup["name"] = "kill"
    setup["base_model"] = str(MICRO_BASE)  # the shipped base: the smoke test covers pre-training
    del setup["pretrain"]
    setup["run"]["train"].update(steps=30, save_steps=10, logging_steps=5, batch_size=8)
    (tmp_path / "ablations").mkdir()
    (tmp_path / "ablations" / "kill.yaml").write_text(yaml.safe_dump(KILL_STUDY))
    (tmp_path / "kill.yaml").write_text(yaml.safe_dump(setup))
    s = load_setup(str(tmp_path / "kill.yaml"))
    study = load_studies(s, ["kill"], tmp_path / "ablations")["kill"]
    return tmp_path / "kill.yaml", run_id(run_config(s, study, "grpo2", 0))


def _target(rid: str) -> str:
    return f"results/kill/runs/{rid}/run.json"


@pytest.fixture(scope="module")
def kill_reference(tmp_path_factory):
    """The uninterrupted run both kill tests compare with (run once)."""
    ref_dir = tmp_path_factory.mktemp("reference")
    _, rid = _kill_setup(ref_dir)
    ref = snakemake(ref_dir, "--cores", "2", _target(rid), setup=ref_dir / "kill.yaml",
                    ablations=ref_dir / "ablations")
    assert ref.returncode == 0, ref.stderr[-3000:]
    return ref_dir, rid


@pytest.mark.workflow
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_training_resumes_from_its_checkpoint_and_ends_identical(tmp_path, kill_reference, sig):
    """The signal goes to Snakemake's whole process group, as from SLURM, systemd or a crash.

    (A SIGTERM to the Snakemake process alone is a graceful stop in Snakemake: running
    jobs finish, nothing new starts, so nothing is interrupted.)
    """
    ref_dir, rid = kill_reference
    run_dir = tmp_path / "interrupted"
    run_dir.mkdir()
    _kill_setup(run_dir)

    args = dict(setup=run_dir / "kill.yaml", ablations=run_dir / "ablations")
    cmd = ["snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(run_dir), "--configfile",
           str(ROOT / "workflow" / "config.yaml"), "--config", f"setup={args['setup']}",
           f"ablations={args['ablations']}", "--cores", "2", _target(rid)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    out = run_dir / "results" / "kill" / "runs" / rid
    work = run_dir / "results" / "kill" / "work" / rid  # where its batch job trains it (mawt/studies/batches.py)
    deadline = time.time() + 600
    while time.time() < deadline and not list((work / "checkpoints").glob("checkpoint-*/COMPLETE")):
        time.sleep(0.05)
    os.killpg(proc.pid, sig)
    proc.wait(timeout=120)
    time.sleep(1.0)
    assert not (work / "run.json").exists(), "killed mid-training (the test must interrupt, not watch it finish)"
    assert not (work / "metrics.jsonl").exists() and not (out / "run.json").exists()
    assert list((work / "checkpoints").glob("checkpoint-*/COMPLETE")), "a complete checkpoint survives the kill"

    if sig == signal.SIGKILL:  # Snakemake had no chance to release its lock: the documented --unlock
        assert snakemake(run_dir, "--unlock", **args).returncode == 0
    again = snakemake(run_dir, "--cores", "2", "--rerun-incomplete", _target(rid), **args)
    assert again.returncode == 0, again.stderr[-3000:]
    info = json.loads((out / "run.json").read_text())
    assert info["resumed_from"] and info["resumed_from"].startswith("checkpoint-"), "resumed, not restarted"
    ref_out = ref_dir / "results" / "kill" / "runs" / rid
    assert (out / "metrics.jsonl").read_bytes() == (ref_out / "metrics.jsonl").read_bytes()
    ref_info = json.loads((ref_out / "run.json").read_text())
    assert info["train_loss"] == ref_info["train_loss"]
    a, b = load_file(out / "model" / "model.safetensors"), load_file(ref_out / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.workflow
@pytest.mark.slow
def test_a_job_killed_at_its_time_limit_resumes_when_resubmitted(tmp_path, kill_reference):
    """SLURM at a job's time limit signals the job's processes (SIGTERM, then SIGKILL), not Snakemake; the
    job fails and the SLURM profile's `retries: 1` resubmits it. Here: SIGTERM to the train process alone,
    `--retries 1` as in workflow/profiles/slurm; the one Snakemake call ends well, the resubmitted job
    resumes from the last complete checkpoint and ends byte-identical to an uninterrupted run."""
    import psutil

    ref_dir, rid = kill_reference
    run_dir = tmp_path / "timeout"
    run_dir.mkdir()
    _kill_setup(run_dir)
    cmd = ["snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(run_dir), "--configfile",
           str(ROOT / "workflow" / "config.yaml"), "--config", f"setup={run_dir / 'kill.yaml'}",
           f"ablations={run_dir / 'ablations'}", "--cores", "2", "--retries", "1", _target(rid)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    out = run_dir / "results" / "kill" / "runs" / rid
    work = run_dir / "results" / "kill" / "work" / rid  # where its batch job trains it (mawt/studies/batches.py)
    deadline = time.time() + 600
    while time.time() < deadline and not list((work / "checkpoints").glob("checkpoint-*/COMPLETE")):
        time.sleep(0.05)
    trains = [p for p in psutil.Process(proc.pid).children(recursive=True)
              if "train" in p.cmdline() and "mawt" in p.cmdline()]
    assert len(trains) == 1, [p.cmdline() for p in trains]
    trains[0].send_signal(signal.SIGTERM)
    log, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, log[-3000:]
    assert "Trying to restart job" in log  # the job failed once and was resubmitted
    info = json.loads((out / "run.json").read_text())
    assert info["resumed_from"] and info["resumed_from"].startswith("checkpoint-"), "resumed, not restarted"
    ref_out = ref_dir / "results" / "kill" / "runs" / rid
    assert (out / "metrics.jsonl").read_bytes() == (ref_out / "metrics.jsonl").read_bytes()
    a, b = load_file(out / "model" / "model.safetensors"), load_file(ref_out / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_half_written_checkpoint_is_ignored_and_removed(tmp_path, base_dir):
    cfg = load(_run_yaml(tmp_path, base_dir, train={"steps": 8, "save_steps": 4}))
    train_run(cfg, tmp_path / "run")
    ckpts = tmp_path / "run" / "checkpoints"
    assert [p.name for p in ckpts.iterdir()] == ["checkpoint-8"] and (ckpts / "checkpoint-8" / "COMPLETE").exists()
    # a kill during the save of checkpoint-12 leaves a folder without the marker (files written so far)
    torn = ckpts / "checkpoint-12"
    torn.mkdir()
    (torn / "model.safetensors").write_bytes(b"\0" * 100)
    cfg.train.steps = 12  # the folder now stands for a 12-step run killed after checkpoint-8: its record says so
    (tmp_path / "run" / ownership.RECORD).write_text(json.dumps({"config": cfg.training_dict()}))
    info = train_run(cfg, tmp_path / "run")
    assert info["resumed_from"] == "checkpoint-8" and (ckpts / "checkpoint-12" / "COMPLETE").exists()


# ---------------------------------------------------------------- 2. atomic outputs

CRASH_WRITER = """
import sys, time
from mawt.common import atomic
with atomic.atomic_path(sys.argv[1]) as tmp:
    tmp.write_text('{"exact_match": 0.')  # half of the new content
    print("written", flush=True)
    time.sleep(120)                        # killed here: between write and rename
"""


def test_a_crash_between_write_and_rename_leaves_the_old_file(tmp_path):
    target = tmp_path / "heldout.json"
    target.write_text('{"exact_match": 0.5}\n')
    proc = subprocess.Popen([sys.executable, "-c", CRASH_WRITER, str(target)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "written"
    proc.kill()
    proc.wait(timeout=30)
    assert json.loads(target.read_text()) == {"exact_match": 0.5}, "the old complete file, not a torn one"
    leftovers = [p.name for p in tmp_path.iterdir() if p != target]
    assert leftovers == [f".heldout.json.tmp-{proc.pid}.json"]  # hidden, never a name a rule reads
    # and with no previous version the result simply does not exist
    fresh = tmp_path / "run.json"
    proc = subprocess.Popen([sys.executable, "-c", CRASH_WRITER, str(fresh)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "written"
    proc.kill()
    proc.wait(timeout=30)
    assert not fresh.exists()


BARE_WRITE = re.compile(r"\.(to_csv|to_parquet|savefig|save_pretrained|savez\w*)\(|(?<!atomic)\.write_text\(|open\([^)]*['\"]w")


def bare_writes(package: Path) -> list[str]:
    """Lines of the package, every stage folder included, that write a file in place (not through
    mawt/common/atomic.py)."""
    offenders = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "atomic.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if BARE_WRITE.search(line) and "tmp" not in line and "# not a result" not in line:
                offenders.append(f"{path.relative_to(package)}:{n}: {line.strip()}")
    return offenders


def test_every_result_writer_goes_through_the_atomic_helper(tmp_path):
    """No result file is written in place: the package has no bare writes outside mawt/common/atomic.py."""
    assert len(list((ROOT / "mawt").rglob("*.py"))) > 40  # the stage folders are scanned, not only the top
    assert not bare_writes(ROOT / "mawt")
    # a planted offender, two folders down, is found
    planted = tmp_path / "mawt" / "analysis" / "deep"
    planted.mkdir(parents=True)
    (planted / "writer.py").write_text("def f(frame, path):\n    frame.to_csv(path)\n")
    assert bare_writes(tmp_path / "mawt") == ["analysis/deep/writer.py:2: frame.to_csv(path)"]


# ---------------------------------------------------------------- 3. numerical faults


def test_a_diverging_learning_rate_stops_with_the_step_and_writes_no_metrics(tmp_path, base_dir, cli):
    bad = _run_yaml(tmp_path, base_dir, train={"learning_rate": 1.0e6, "steps": 40, "logging_steps": 1})
    proc = cli("train", "--config", bad, "--out", tmp_path / "run")
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert re.search(r"error: non-finite (loss_ce|loss_pg|kl|loss_entropy|reward_\w+)=(nan|inf|-inf) at step \d+",
                     proc.stderr), proc.stderr[-1000:]
    out = tmp_path / "run"
    assert not (out / "metrics.jsonl").exists() and not (out / "metrics.jsonl.partial").exists()
    assert not (out / "run.json").exists() and not (out / "model").exists()


def test_a_nan_in_the_model_stops_at_the_first_step(tmp_path, base_dir):
    poisoned = tmp_path / "poisoned"
    model = load_model(base_dir)
    with torch.no_grad():
        model.model.norm.weight[0] = float("nan")  # the final norm: every logit becomes NaN
    model.save_pretrained(poisoned)
    for f in base_dir.glob("*token*"):
        (poisoned / f.name).write_bytes(f.read_bytes())
    cfg = load(_run_yaml(tmp_path, base_dir, base_model=str(poisoned)))
    with pytest.raises(FloatingPointError, match=r"non-finite loss_ce=nan at step 0"):
        train_run(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


# ---------------------------------------------------------------- 4. bad input


BAD_INPUT = [
    ("malformed YAML", "RAW:mawt: {depth: 2\n", r"not valid YAML"),
    ("unknown key", {"train": {"stepz": 3}}, r"train: unknown key\(s\) \['stepz'\]"),
    ("wrong type", {"train": {"steps": "many"}}, r"train.steps='many' is invalid"),
    ("depth 0", {"mawt": {"depth": 0, "mixer": "grpo"}}, r"mawt.depth=0 is invalid"),
    ("G < 2 for grpo", {"train": {"group_size": 1}}, r"group_size=1 is invalid for mixer grpo"),
    ("layer out of range", {"mawt": {"depth": 2, "mixer": "grpo", "layers": [7]}}, r"mawt.layers contains 7, out of range for a model with 4 "),
    ("nothing to train", {"mawt": None, "trainable": "mawt"}, r"leaves nothing to train"),
    ("data without the columns", "DATA:question,answer\nq,a\n", r"lacks column\(s\) \['challenge'\]"),
    ("empty answers", "DATA:challenge,answer\nq1,a\nq2, \n", r"source row 1 \(counting from 0, in file order\) has an empty or missing challenge or answer"),
    ("missing base model", {"base_model": "/nowhere/model"}, r"base_model='/nowhere/model': no model there"),
    ("hub id without network", {"base_model": "someorg/some-model"}, r"someorg/some-model.*could not be loaded"),
    ("unsafe YAML tag", "RAW:base_model: !!python/object/apply:os.system ['touch PWNED']\n", r"not valid YAML"),
]


@pytest.mark.parametrize("case, edit, message", BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_refused_with_its_message_and_nothing_written(tmp_path, base_dir, case, edit, message,
                                                                   monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    if isinstance(edit, str) and edit.startswith("RAW:"):
        path = tmp_path / "run.yaml"
        path.write_text(edit[4:])
    elif isinstance(edit, str) and edit.startswith("DATA:"):
        (tmp_path / "data.csv").write_text(edit[5:])
        path = _run_yaml(tmp_path, base_dir, data={"source": str(tmp_path / "data.csv"), "n_train": 1,
                                                   "n_heldout": 1})
    else:
        path = _run_yaml(tmp_path, base_dir, **edit)
    proc = cli("train", "--config", path, "--out", tmp_path / "out")
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-2000:]
    assert re.search(message, proc.stderr), proc.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "PWNED").exists()


# ---------------------------------------------------------------- 5. security


def test_pickle_checkpoints_are_refused(tmp_path, base_dir, cli):
    model = load_model(base_dir)
    (tmp_path / "ckpt").mkdir()
    model.config.save_pretrained(tmp_path / "ckpt")
    torch.save(model.state_dict(), tmp_path / "ckpt" / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"no \.safetensors weights \(found \['pytorch_model.bin'\]: pickle files"):
        load_model(tmp_path / "ckpt")
    (tmp_path / "h.jsonl").write_text(json.dumps({"challenge": "x", "answer": "y"}) + "\n")
    proc = cli("eval-heldout", "--model", tmp_path / "ckpt", "--heldout", tmp_path / "h.jsonl",
               "--out", tmp_path / "e.json")
    assert proc.returncode == 2 and "pickle files are never loaded" in proc.stderr
    assert not (tmp_path / "e.json").exists()


@pytest.mark.workflow
@pytest.mark.parametrize("edit, setup_name, message", [
    ({"name": "../../etc"}, "smoke", r"key name: '../../etc' does not match"),
    ({"variants": {"../escape": {}}}, "smoke", r"key variants: '../escape' does not match"),
    ({}, "../../etc", r"key name: '../../etc' does not match"),
])
def test_names_cannot_escape_results(tmp_path, edit, setup_name, message):
    (tmp_path / "ablations").mkdir()
    study = {"name": "tiny", "seeds": [0], "variants": {"a": {}}, **edit}
    (tmp_path / "ablations" / "tiny.yaml").write_text(yaml.safe_dump(study))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({**SMOKE_SETUP, "name": setup_name}))
    proc = snakemake(tmp_path, "-n", setup=tmp_path / "s.yaml", ablations=tmp_path / "ablations")
    assert proc.returncode != 0 and re.search(message, proc.stderr), proc.stderr[-2000:]
    assert not (tmp_path / "results").exists() and not (tmp_path.parent / "etc").exists()


def test_remote_code_is_off_unless_a_setup_says_so(tmp_path, base_dir):
    assert load(_run_yaml(tmp_path, base_dir)).trust_remote_code is False
    assert load(_run_yaml(tmp_path, base_dir, trust_remote_code=True)).trust_remote_code is True
    # a setup cannot switch it on for a whole workflow: a setup's run has no such key
    setup = yaml.safe_load((ROOT / "mawt" / "setups" / "micro.yaml").read_text())
    setup["run"]["trust_remote_code"] = True
    (tmp_path / "remote.yaml").write_text(yaml.safe_dump(setup))
    with pytest.raises(StudyError, match=r"remote.yaml: key run: unknown key\(s\) \['trust_remote_code'\]"):
        load_setup(str(tmp_path / "remote.yaml"))


# ---------------------------------------------------------------- 6. determinism


@pytest.mark.slow
def test_same_config_and_seed_give_byte_identical_metrics(tmp_path, base_dir, cli):
    """Two runs of one config into the same run directory (paths are part of the JSON), each through the
    CLI in new processes (train, then eval-heldout), as the workflow's jobs run."""
    path, run = _run_yaml(tmp_path, base_dir), tmp_path / "run"
    files = ("metrics.jsonl", "heldout.json", "data/manifest.json", "model/model.safetensors")
    outputs = []
    for _ in range(2):
        shutil.rmtree(run, ignore_errors=True)
        proc = subprocess.run(CLI + ["train", "--config", str(path), "--out", str(run)],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        proc = subprocess.run(CLI + ["eval-heldout", "--model", str(run / "model"), "--heldout",
                                     str(run / "data" / "heldout.jsonl"), "--out", str(run / "heldout.json")],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        outputs.append({f: (run / f).read_bytes() for f in files})
    for f in files:
        assert outputs[0][f] == outputs[1][f], f
    assert json.loads(outputs[0]["heldout.json"])["n"] == 8  # _run_yaml's n_heldout
    assert (run / "model" / "config.json").is_file()
    assert "eval-heldout" in cli("--help").stdout
    info = json.loads((run / "run.json").read_text())
    assert info["seed"] == 0 and info["config"]["data"]["seed"] == 42
    env = info["environment"]
    assert env["git_commit"] and env["versions"]["torch"].startswith("2.13.0") and "git_dirty" in env


@pytest.mark.slow
def test_runs_batched_in_one_process_equal_each_run_alone(tmp_path, base_dir):
    """A workflow batch (mawt/training/batch.py): two seeds trained in one `train` process, then evaluated
    in one `eval-heldout` process, give the same bytes as the second seed trained and evaluated alone in
    processes of its own (what came first in the batch leaves nothing behind); run again with the manifest,
    the batch keeps both finished runs and trains nothing."""
    paths = [_run_yaml(tmp_path, base_dir, f"seed{s}.yaml", train={"seed": s}) for s in (0, 1)]
    batch = [tmp_path / "batch" / f"seed{s}" for s in (0, 1)]
    alone = tmp_path / "alone" / "seed1"

    def run(*args):
        proc = subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc

    manifest = tmp_path / "batch" / "train.json"
    run("train", "--config", paths[0], "--out", batch[0], "--config", paths[1], "--out", batch[1],
        "--manifest", manifest)
    run("eval-heldout", "--model", batch[0] / "model", "--out", batch[0] / "heldout.json", "--model",
        batch[1] / "model", "--out", batch[1] / "heldout.json", "--heldout", batch[1] / "data" / "heldout.jsonl",
        "--manifest", tmp_path / "batch" / "eval.json")
    run("train", "--config", paths[1], "--out", alone)
    run("eval-heldout", "--model", alone / "model", "--out", alone / "heldout.json", "--heldout",
        alone / "data" / "heldout.jsonl")
    for f in ("metrics.jsonl", "model/model.safetensors", "data/manifest.json"):
        assert (batch[1] / f).read_bytes() == (alone / f).read_bytes(), f
    held = [json.loads((d / "heldout.json").read_text()) for d in (batch[1], alone)]
    for h in held:
        h.pop("model"), h.pop("environment")  # the folder's path; the process's clock-free metadata
    assert held[0] == held[1]
    assert (batch[0] / "metrics.jsonl").read_bytes() != (batch[1] / "metrics.jsonl").read_bytes()  # two seeds
    assert json.loads(manifest.read_text())["runs"] == [{"out": str(b), "seed": s} for s, b in enumerate(batch)]

    stamp = [(b / "model" / "model.safetensors").stat().st_mtime_ns for b in batch]
    again = run("train", "--config", paths[0], "--out", batch[0], "--config", paths[1], "--out", batch[1],
                "--manifest", manifest)
    assert [d["kept"] for d in json.loads(again.stdout)] == [True, True]
    assert [(b / "model" / "model.safetensors").stat().st_mtime_ns for b in batch] == stamp
