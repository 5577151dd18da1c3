"""`python -m mawt fetch`: what a setup takes from the Hub, and one line naming what is missing offline."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

from mawt.fetch import needs
from mawt.studies import load_setup


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
