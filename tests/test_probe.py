"""The probe (mawt/evaluation/probe.py): an input-only reference for the depth policy, cross-fitted.

Independent truths: a planted table whose best depth is a known function of the features (the probe
must recover the planted gain), noise features (cross-fitting must keep it at uniform, far from the
oracle), and a real model whose depths are identical (the probe must equal uniform)."""

from __future__ import annotations

import pytest
import torch

from mawt.evaluation.probe import cross_fit


def _items(x, ce, ok, per_item=5):
    n = x.shape[0] // per_item
    return ([x[i * per_item:(i + 1) * per_item] for i in range(n)], [ce[i * per_item:(i + 1) * per_item] for i in range(n)],
            [ok[i * per_item:(i + 1) * per_item] for i in range(n)])


def _references(ce_items, ok_items):
    uniform = sum(float(c.double().mean()) for c in ce_items) / len(ce_items)
    oracle = sum(float(c.double().amin(1).mean()) for c in ce_items) / len(ce_items)
    return uniform, oracle


def test_the_probe_recovers_a_best_depth_planted_as_a_function_of_the_input():
    """Depth 0 is best where x0 + 0.5 x1 > 0, depth 1 elsewhere, depth 2 never: the probe must get
    at least 95% of the gain of the oracle over uniform, and its exact match is that of the best choice."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 3, generator=g, dtype=torch.float64)
    best = torch.where(x[:, 0] + 0.5 * x[:, 1] > 0, 0, 1)
    ce = torch.full((2000, 3), 2.0, dtype=torch.float64) + 0.05 * torch.rand(2000, 3, generator=g, dtype=torch.float64)
    ce[torch.arange(2000), best] = 1.0
    ok = torch.zeros(2000, 3, dtype=torch.bool)
    ok[torch.arange(2000), best] = True
    feats, ces, oks = _items(x, ce, ok)
    got = cross_fit(feats, ces, oks)
    uniform, oracle = _references(ces, oks)
    assert (uniform - got["loss_probe"]) >= 0.95 * (uniform - oracle)
    assert got["em_probe"] >= 0.9  # an item is right only if all five of its choices are


def test_cross_fitting_keeps_a_probe_of_noise_at_uniform():
    """The best depth is random per position and the features are noise: nothing is predictable, and a
    probe scored on items it was fit on would still look better than uniform. Cross-fitted, it is not."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(600, 8, generator=g, dtype=torch.float64)
    ce = torch.rand(600, 4, generator=g, dtype=torch.float64) * 2
    ok = ce < 0.5
    feats, ces, oks = _items(x, ce, ok)
    got = cross_fit(feats, ces, oks)
    uniform, oracle = _references(ces, oks)
    assert abs(uniform - got["loss_probe"]) < 0.1 * (uniform - oracle)


def test_on_a_model_whose_depths_are_identical_the_probe_equals_uniform(micro_base):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mawt import MAWTConfig, patch_model
    from mawt.data.puzzles import generate
    from mawt.evaluation.worth import depth_worth

    tok = AutoTokenizer.from_pretrained(micro_base)
    model = patch_model(AutoModelForCausalLM.from_pretrained(micro_base),
                        MAWTConfig(depth=3, mixer="grpo", init_noise=0.0)).eval()
    w = depth_worth(model, tok, generate(24, ["shift_two", "reverse"]), 64, batch_size=8)
    assert w["loss_probe"] == pytest.approx(w["loss_uniform"], abs=1e-6)
    assert w["loss_probe"] == pytest.approx(w["loss_oracle"], abs=1e-6)  # nothing to gain anywhere
    assert w["em_probe"] == pytest.approx(w["em_uniform"], abs=1e-9)


def test_the_probe_on_a_trained_layer_lies_between_uniform_and_the_oracle_loss(micro_base):
    """A real layer whose depths differ (init_noise 0.3): the probe is a policy, so its loss is at least
    the per-position oracle's and its exact match at most the oracle's."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mawt import MAWTConfig, patch_model
    from mawt.data.puzzles import generate
    from mawt.evaluation.worth import depth_worth

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(micro_base)
    model = patch_model(AutoModelForCausalLM.from_pretrained(micro_base),
                        MAWTConfig(depth=3, mixer="grpo", init_noise=0.3)).eval()
    w = depth_worth(model, tok, generate(24, ["shift_two", "reverse"]), 64, batch_size=8)
    assert w["loss_oracle"] - 1e-9 <= w["loss_probe"]
    assert 0.0 <= w["em_probe"] <= w["em_oracle"] + 1e-9
