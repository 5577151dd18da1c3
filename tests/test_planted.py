"""The planted control of the depth policy (ablations/controls.yaml `planted`, docs/grpo.md): the shipped
configs, trained for real on the micro setup, against the criteria the report applies.

A known effect: depth 1's output transform is zero, the transforms are fixed, only the selector
trains, so the two depths compute very different things and one of them is the better choice by
construction. GRPO with its default credit, advantage and schedule must recover at least 80% of
that gain over uniform choices (held-out answer loss under the trained policy); the same run on
shuffled rewards at most 20%. Two seeds here; the report states the seeds' means of the default run.
"""

from __future__ import annotations

import pytest
import torch

from mawt.analysis.summary import PLANTED_LEARNS, PLANTED_SHUFFLED, planted_recovery
from mawt.studies.setup import load_setup
from mawt.studies.study import load_studies, run_config

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def planted_runs(tmp_path_factory):
    from mawt.data.split import prepare_data, read_jsonl
    from mawt.evaluation.worth import depth_worth
    from mawt.training.models import load_checkpoint
    from mawt.training.runconfig import load
    from mawt.training.train import train_run

    setup = load_setup("micro")
    study = load_studies(setup, ["controls"], ROOT / "ablations")["controls"]
    tmp = tmp_path_factory.mktemp("planted")
    split = tmp / "data"
    cfgs = {(v, s): load(run_config(setup, study, v, s, base_model=str(ROOT / "assets" / "micro_base")))
            for v in ("planted", "planted_shuffled") for s in (0, 1)}
    prepare_data(next(iter(cfgs.values())).data, split)
    rows = read_jsonl(split / "heldout.jsonl")
    worth = {}
    for (variant, seed), cfg in cfgs.items():
        out = tmp / f"{variant}-{seed}"
        info = train_run(cfg, out, split)
        model, tok = load_checkpoint(out / "model", "cpu")
        worth[variant, seed] = (info, depth_worth(model, tok, rows, cfg.train.max_length, 64), model)
    return cfgs, worth


def test_the_shipped_plant_trains_the_selector_alone_over_a_silent_depth(planted_runs):
    cfgs, worth = planted_runs
    for (variant, seed), (info, _, model) in worth.items():
        cfg = cfgs[variant, seed]
        assert (cfg.mawt.depth, cfg.mawt.mixer, cfg.mawt.plant, cfg.trainable) == (2, "grpo", "silent", "mawt")
        assert (cfg.train.credit, cfg.train.advantage, cfg.train.steps) == ("token", "rloo", 100)  # the defaults
        attn = model.model.layers[-1].self_attn
        assert not attn.depth_output[1].any() and attn.depth_output[0].abs().sum() > 0  # B_1 still zero
        selector = sum(p.numel() for p in attn.mixer.selector.parameters())
        assert info["trainable_parameters"] == selector  # neither A_d nor B_d nor the base trained


@pytest.mark.parametrize("seed", [0, 1])
def test_grpo_recovers_the_planted_gain_and_its_shuffled_twin_does_not(planted_runs, seed):
    _, worth = planted_runs
    learned, shuffled = (worth[v, seed][1] for v in ("planted", "planted_shuffled"))
    assert learned["loss_uniform"] - learned["loss_best"] > 0.1  # a gain worth recovering (nats)
    row = lambda w: {f"worth_{k}": v for k, v in w.items()}  # noqa: E731  (a table row's names)
    assert planted_recovery(row(learned)) >= PLANTED_LEARNS
    assert planted_recovery(row(shuffled)) <= PLANTED_SHUFFLED
    # the greedy choice cannot tell them apart where the init's argmax is already the best depth
    assert learned["loss_policy"] < shuffled["loss_policy"]


def test_recovery_is_the_share_of_the_gain_over_uniform():
    row = {"worth_loss_uniform": 4.0, "worth_loss_best": 3.0, "worth_loss_policy": 3.2}
    assert planted_recovery(row) == pytest.approx(0.8)
    assert planted_recovery({**row, "worth_loss_policy": 4.5}) == pytest.approx(-0.5)
    assert torch.isnan(torch.tensor(planted_recovery({**row, "worth_loss_best": 4.0})))


def test_the_controls_box_states_both_planted_verdicts():
    """The report's controls paragraph: ok lines where the criteria hold, warnings where they do not."""
    import pandas as pd

    from mawt.analysis.summary import controls_text

    def table(policy, shuffled_policy):
        base = {"plant": "silent", "worth_loss_uniform": 4.0, "worth_loss_best": 3.0, "baseline": "plain_trainable-mawt"}
        return pd.DataFrame([{**base, "variant": "planted", "reward_control": "none", "worth_loss_policy": policy},
                             {**base, "variant": "planted_shuffled", "reward_control": "shuffled",
                              "worth_loss_policy": shuffled_policy, "baseline": "planted"}])

    lines = controls_text([({"name": "controls"}, table(3.1, 3.95))])
    planted = [(kind, text) for kind, text in lines if "planted" in text]
    assert [k for k, _ in planted] == ["ok", "ok"] and "recovers 90%" in planted[0][1] and "recovers 5%" in planted[1][1]
    bad = [(k, t) for k, t in controls_text([({"name": "controls"}, table(3.5, 3.5))]) if "planted" in t]
    assert [k for k, _ in bad] == ["warning", "warning"]
