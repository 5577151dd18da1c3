"""What the GRPO depth policy learns, by advantage and KL weight: the evidence behind the
defaults `train.advantage: rloo` and `train.beta` (mawt/training/runconfig.py).

    python benchmarks/policy_beta.py                 # micro setup, seeds 0 1, ~8 min on 2 cores
    python benchmarks/policy_beta.py --seeds 0 --settings rloo:0.01 rloo:0

Each setting (advantage:beta) trains the micro setup's GRPO run (D=4, token credit, last
layer, the setup's data and run defaults) and measures on the held-out split what the
learned choice is worth (mawt/evaluation/worth.py: answer loss and exact match of the learned greedy
policy, the uniform policy, the best single depth and the per-position oracle) next to the
policy's entropy (a diagnostic: ln 4 = 1.386 is uniform). A setting whose learned policy is
no better than uniform learned nothing useful, whatever its entropy.

Writes results/bench/policy_beta.json and results/bench/policy_beta.md (under a line naming
the command, machine and commit: benchmarks/markdown.py).
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
from pathlib import Path

import torch

import markdown  # benchmarks/markdown.py
from mawt.common import layout
from mawt.common.atomic import write_json
from mawt.data.split import prepare_data, read_jsonl
from mawt.evaluation.evaluate import teacher_forced
from mawt.training.models import load_checkpoint
from mawt.training.runconfig import RunConfig, load
from mawt.studies.setup import load_setup
from mawt.training.train import train_run
from mawt.evaluation.worth import depth_worth

COLUMNS = ["advantage", "beta", "seed", "entropy (held-out)", "loss learned", "loss uniform", "loss best depth",
           "loss oracle", "EM learned", "EM uniform", "EM best depth", "EM oracle", "learned - uniform loss"]
DEFAULT_SETTINGS = ["grpo:0.01", "rloo:0.01", "rloo:0.001", "rloo:0"]


def run_config(setup: dict, advantage: str, beta: float, seed: int) -> RunConfig:
    run = copy.deepcopy(setup["run"])
    run.update(base_model=setup["base_model"], data=setup["data"], mawt={"depth": 4, "mixer": "grpo"})
    run["train"] = {**run.get("train", {}), "credit": "token", "advantage": advantage, "beta": beta, "seed": seed}
    return load(run, RunConfig, f"setup {setup['name']}")


def measure(cfg: RunConfig, split_dir: Path, out: Path, eval_cfg) -> dict:
    train_run(cfg, out, split_dir)
    model, tokenizer = load_checkpoint(out / layout.MODEL, "cpu")
    rows = read_jsonl(split_dir / layout.HELDOUT_SPLIT)
    _, _, selection = teacher_forced(model, tokenizer, rows, eval_cfg.max_length, eval_cfg.batch_size)
    worth = depth_worth(model, tokenizer, rows, eval_cfg.max_length, eval_cfg.batch_size)
    return {"selector_entropy": selection["selector_entropy"], **worth}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", default="micro")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS, help="advantage:beta pairs")
    parser.add_argument("--out", default="results/bench")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    setup = load_setup(args.setup)
    settings = [(a, float(b)) for a, b in (s.split(":") for s in args.settings)]
    rows, records = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        first = run_config(setup, *settings[0], args.seeds[0])
        prepare_data(first.data, tmp / "split")
        for advantage, beta in settings:
            for seed in args.seeds:
                cfg = run_config(setup, advantage, beta, seed)
                r = measure(cfg, tmp / "split", tmp / f"{advantage}-{beta}-{seed}", cfg.eval)
                records.append({"advantage": advantage, "beta": beta, "seed": seed, **r})
                rows.append([advantage, f"{beta:g}", seed, f"{r['selector_entropy']:.3f}",
                             *(f"{r[f'loss_{p}']:.4f}" for p in ("learned", "uniform", "best", "oracle")),
                             *(f"{r[f'em_{p}']:.3f}" for p in ("learned", "uniform", "best", "oracle")),
                             f"{r['loss_learned'] - r['loss_uniform']:+.4f}"])
                print(rows[-1], flush=True)
    out = Path(args.out)
    write_json(out / "policy_beta.json", records)
    title = f"What the depth policy learns, by advantage and KL weight ({args.setup}, D=4, token credit)"
    body = markdown.table(COLUMNS, "lllrrrrrrrrrr", rows)
    markdown.write(out / "policy_beta.md", title, body, markdown.command(__file__))
    print(body)


if __name__ == "__main__":
    main()
