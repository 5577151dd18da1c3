"""`python -m mawt fetch`: what a setup takes from the Hub, and one line naming what is missing offline."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mawt.evaluation.fetch import needs
from mawt.studies.setup import load_setup


def test_a_setup_names_what_it_takes_from_the_hub():
    assert needs(load_setup("micro")) == []  # shipped base, synthetic data, own lm-eval tasks
    assert needs(load_setup("paper_standin")) == []  # built base, local parquet: runs offline as is
    paper = needs(load_setup("paper"))
    assert ("model", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B") in paper
    assert ("dataset", "nuprl/verbal-reasoning-challenge") in paper
    assert {n for k, n in paper if k == "lm-eval task"} == {"arc_easy", "arc_challenge", "hellaswag", "piqa",
                                                           "winogrande"}


def test_offline_fetch_fails_in_one_line_naming_every_missing_item(tmp_path):
    setup = yaml.safe_load(Path(load_setup("paper")["path"]).read_text())
    setup.update(name="offline", base_model="mawt-tests/no-such-model", lm_eval={"tasks": ["verbal_heldout"]})
    setup["data"]["source"] = "mawt-tests/no-such-dataset"
    (tmp_path / "offline.yaml").write_text(yaml.safe_dump(setup))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([sys.executable, "-m", "mawt", "fetch", "--setup", str(tmp_path / "offline.yaml")],
                          capture_output=True, text=True, timeout=300, env=env)
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "model mawt-tests/no-such-model" in err and "dataset mawt-tests/no-such-dataset" in err
    assert "python -m mawt fetch --setup offline" in err


def _setup_with_cached_dataset(tmp_path, commit):
    """A setup whose only Hub item is dataset `mawt_pinned`, and an offline environment whose
    Hugging Face cache (tmp_path/hf) holds that dataset at `commit`, laid out as a download leaves
    it: the `datasets` build under datasets/mawt_pinned/default/0.0.0/<commit>/ and, in the hub
    cache, branch `main` pointing at `commit`."""
    import datasets

    data = tmp_path / "src" / "mawt_pinned" / "data"
    data.mkdir(parents=True)
    pd.DataFrame({"ID": range(12), "challenge": [f"Puzzle {i}?" for i in range(12)],
                  "answer": [f"a{i}" for i in range(12)]}).to_parquet(data / "test-00000-of-00001.parquet")
    ds = datasets.load_dataset(str(data.parent), split="test", cache_dir=str(tmp_path / "hf" / "datasets"))
    built = Path(ds.cache_files[0]["filename"]).parent
    built.rename(built.parent / commit)
    repo = tmp_path / "hf" / "hub" / "datasets--mawt_pinned"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "README.md").write_text("---\n---\n")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    setup = yaml.safe_load(Path(load_setup("paper")["path"]).read_text())
    setup.update(name="pinned", base_model="standin", lm_eval={"tasks": ["verbal_heldout"]})
    setup["data"].update(source="mawt_pinned")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    return setup, env


def _fetch(tmp_path, setup, env, revision, *flags):
    setup["data"]["revision"] = revision
    path = tmp_path / f"pinned-{revision[:8]}.yaml"
    path.write_text(yaml.safe_dump(setup))
    return subprocess.run([sys.executable, "-m", "mawt", "fetch", "--setup", str(path), *flags],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)


@pytest.mark.slow
def test_fetch_names_the_pinned_revision_and_prints_the_commit_it_finds(tmp_path):
    commit, other = "3" * 40, "4" * 40
    setup, env = _setup_with_cached_dataset(tmp_path, commit)
    assert needs(setup) == [("dataset", "mawt_pinned")]
    # --check: the caches only; the pinned sha, or the branch resolved through the hub cache's refs
    for revision in (commit, "main"):
        proc = _fetch(tmp_path, setup, env, revision, "--check")
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.strip() == f"dataset mawt_pinned@{revision}: commit {commit} (cached)"
    # fetching (here from the cache, offline): the commit and the row count; a branch: the sha to pin
    proc = _fetch(tmp_path, setup, env, commit)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == f"dataset mawt_pinned@{commit}: commit {commit}: 12 rows in split 'test'"
    proc = _fetch(tmp_path, setup, env, "main")
    assert proc.stdout.strip() == (f"dataset mawt_pinned@main: commit {commit}: 12 rows in split 'test'; "
                                   f"pin data.revision: {commit}")
    # another commit: not in the cache, one line naming the revision
    for flags in (["--check"], []):
        proc = _fetch(tmp_path, setup, env, other, *flags)
        lines = proc.stderr.strip().splitlines()  # `datasets` logs which cached copy it read, then our line
        err = lines[-1]
        assert proc.returncode == 2 and err.startswith("error: ") and "Traceback" not in proc.stderr, lines
        assert [line for line in lines if line.startswith("error")] == [err]
        assert f"dataset mawt_pinned@{other} (ValueError: " in err
        assert (f"commit {other} is not in the datasets cache" if flags else
                f"data.revision='{other}' is pinned, but the Hugging Face cache gave commit {commit}") in err


def test_check_looks_up_lm_eval_task_datasets_in_the_cache_without_downloading(tmp_path, monkeypatch):
    """`fetch --check` reads lm-eval's task index for each task's datasets (groups: every member's) and the
    hub cache's layout; it never builds a task, which would download its dataset where there is network."""
    from huggingface_hub import constants

    from mawt.evaluation.fetch import fetch, task_datasets

    assert task_datasets("arc_easy") == ["allenai/ai2_arc"]
    assert task_datasets("mmlu_anatomy") == ["cais/mmlu"]
    with pytest.raises(ValueError, match="no lm-eval task or group named 'no_such_task'"):
        task_datasets("no_such_task")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # an empty cache
    setup = {"name": "tasks", "base_model": "standin", "data": {"source": "synthetic"},
             "lm_eval": {"tasks": ["verbal_heldout", "arc_easy", "piqa"]}}
    with pytest.raises(ValueError) as err:
        fetch(setup, check=True)
    message = str(err.value)
    assert "lm-eval task arc_easy (ValueError: its dataset(s) ['allenai/ai2_arc'] are not in the hub cache)" in message
    assert "lm-eval task piqa (ValueError: its dataset(s) [" in message and "verbal_heldout" not in message
    # the layout a download leaves: datasets--<owner>--<name>/snapshots/<commit>/
    for repo in {*task_datasets("arc_easy"), *task_datasets("piqa")}:
        (tmp_path / "hub" / f"datasets--{repo.replace('/', '--')}" / "snapshots" / ("5" * 40)).mkdir(parents=True)
    assert fetch(setup, check=True) == ["lm-eval task arc_easy: dataset(s) ['allenai/ai2_arc'] (cached)",
                                        f"lm-eval task piqa: dataset(s) {task_datasets('piqa')} (cached)"]


def test_a_missing_items_reason_is_its_whole_first_sentence():
    from mawt.evaluation.fetch import _first_sentence

    hub = ("Cannot find the requested files in the disk cache and outgoing traffic has been disabled. To enable "
           "hf.co look-ups and downloads online, set 'local_files_only' to False.")
    assert _first_sentence(hub) == ("Cannot find the requested files in the disk cache and outgoing traffic has been "
                                    "disabled.")  # 88 characters: the old 120-character cut fell mid-sentence
    assert _first_sentence("first line\nsecond line") == "first line"
    long = _first_sentence("word " * 100)
    assert len(long) <= 304 and long.endswith("word ...")
