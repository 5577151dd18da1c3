"""The depth policy's defaults and the evidence that it learned something useful.

* the default advantage is in reward units: its push follows the size of the reward gap;
* the default exact-credit gradient is the gradient of the expected reward, on random
  tables (peaked policies, rewards from 1e-3 to 1e2 nats);
* the KL term's gradient is that of KL(pi || pi_ref), not the reverse direction's
  (which is what TRL's k3 loss has in expectation);
* what a choice is worth (mawt/evaluation/worth.py), against independent truths: the model's own
  eval-mode forward for the learned policy, and every combination of choices enumerated
  through real forced forward passes for the uniform policy and the oracle;
* rewards on the bf16 path agree with float32 compute on the best depth (stand-in geometry).
"""

import copy
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from mawt import MAWTConfig, mawt_layers, patch_model
from mawt.training import grpo
from mawt.training.runconfig import TrainConfig
from mawt.evaluation import worth

DEFAULT = TrainConfig().advantage


# ------------------------------------------------------------------ advantages
@pytest.mark.parametrize("form", ["token", "exact"])
def test_default_advantage_push_grows_with_the_reward_gap(form):
    """Rewards (a, a, a, a+delta): the push on the better choice, at delta = 0.001 and 1 nat."""
    def push(delta, mode):
        r = torch.tensor([2.0, 2.0, 2.0, 2.0 + delta], dtype=torch.float64)
        if form == "token":  # one (group, position) cell of G = 4 rollouts
            adv = grpo.group_advantages(r[:, None], 4, mode=mode, cells=torch.ones(4, 1, dtype=torch.bool))[:, 0]
        else:  # one answer cell of D = 4 depths under a uniform policy
            adv = grpo.exact_advantages(torch.full((4,), math.log(0.25), dtype=torch.float64), r, mode)
        return float(adv[3] - adv[:3].mean())

    assert push(1.0, DEFAULT) / push(0.001, DEFAULT) >= 100
    assert push(1.0, DEFAULT) / push(0.001, DEFAULT) == pytest.approx(1000, rel=1e-6)  # linear in the gap
    # grpo stays available and is scale-free: the 0.001-nat gap gets most of the 1-nat push
    assert push(1.0, "grpo") / push(0.001, "grpo") < 1.5


def test_default_exact_gradient_is_minus_the_gradient_of_the_expected_reward():
    g = torch.Generator().manual_seed(11)
    for trial in range(20):
        scale = 10.0 ** (trial % 6 - 3)  # rewards from 1e-3 to 1e2 nats
        sharp = 1.0 + 5.0 * (trial % 4)  # near-uniform to near-one-hot policies
        logits = (sharp * torch.randn(3, 5, 6, generator=g, dtype=torch.float64)).requires_grad_()
        rewards = scale * torch.randn(3, 5, 6, generator=g, dtype=torch.float64)
        cells = torch.rand(3, 5, generator=g) < 0.6
        cells[0, 0] = True
        got, = torch.autograd.grad(grpo.exact_policy_loss(F.log_softmax(logits, -1), rewards, cells, DEFAULT),
                                   logits)
        expected_reward = (torch.softmax(logits, -1) * rewards).sum(-1)  # E_pi[r_t], by its definition
        want, = torch.autograd.grad(-(expected_reward * cells).sum() / cells.sum(), logits)
        assert torch.allclose(got, want, atol=1e-6 * scale, rtol=0), (trial, (got - want).abs().max())


def test_kl_gradient_is_that_of_kl_pi_to_the_reference():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    log_ref = F.log_softmax(torch.randn(4, 5, generator=g, dtype=torch.float64), -1)
    valid = torch.ones(1, 4, dtype=torch.bool)
    got, = torch.autograd.grad(grpo.categorical_kl(F.log_softmax(z, -1)[None], log_ref[None], valid), z)
    pi = torch.softmax(z, -1).detach()
    kl = (pi * (pi.log() - log_ref)).sum(-1, keepdim=True)
    reverse = pi * (pi.log() - log_ref - kl) / 4  # d KL(pi || ref) / dz, by hand (mean over 4 positions)
    forward = (pi - log_ref.exp()) / 4  # d KL(ref || pi) / dz: the k3 loss's expected gradient
    assert torch.allclose(got, reverse, atol=1e-12)
    assert not torch.allclose(got, forward, atol=1e-3)


# ---------------------------------------------------------------- what a choice is worth
def _model(depth=2):
    from conftest import tiny_model

    return patch_model(tiny_model("qwen2"), MAWTConfig(depth=depth, mixer="grpo", init_noise=0.6)).eval()


def _gold_batch(model, choices):
    """Two rows whose answers (positions 5-7, row 1 right-padded at 7) are what greedy decoding
    produces when the depths `choices` (one per answer-predicting position) are forced: so at
    least that combination gets the whole answer right."""
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(3, 64, (2, 8), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7] = 0
    layer = mawt_layers(model)[1]
    forced = torch.zeros(2, 8, dtype=torch.long)
    forced[:, 4:7] = torch.tensor(choices)
    layer.mixer.forced = forced
    try:
        with torch.no_grad():
            for t in range(4, 7):  # position t predicts token t + 1
                ids[:, t + 1] = model(input_ids=ids, attention_mask=mask).logits[:, t].argmax(-1)
    finally:
        layer.mixer.forced = None
    labels = ids.clone()
    labels[:, :5] = -100
    labels[1, 7] = -100
    ids[1, 7] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _forced_scores(model, batch, choices):
    """Per row: answer loss and greedy exact match with the depths `choices` forced at positions 4-6,
    by the model's own forward."""
    layer = mawt_layers(model)[1]
    forced = torch.zeros_like(batch["input_ids"])
    if choices is not None:
        forced[:, 4:7] = torch.tensor(choices)
        layer.mixer.forced = forced
    try:
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    finally:
        layer.mixer.forced = None
    labels = batch["labels"][:, 1:]
    answer = labels != -100
    ce = F.cross_entropy(logits.float().transpose(1, 2), labels.clamp_min(0), reduction="none")
    top2 = logits.topk(2, -1)
    strict = (top2.indices[..., 0] == labels) & (top2.values[..., 0] > top2.values[..., 1])
    return (ce * answer).sum(1) / answer.sum(1), (strict | ~answer).all(1).double()


def test_worth_against_every_combination_of_choices():
    model = _model(depth=2)
    batch = _gold_batch(model, (1, 0, 1))
    with torch.no_grad():  # a peaked policy, so that the policy-weighted worth is not the uniform one
        head = [m for m in mawt_layers(model)[1].mixer.selector.modules() if isinstance(m, torch.nn.Linear)][-1]
        head.bias.copy_(torch.tensor([1.5, -1.5]))
    w = worth.item_worth(*worth.outcomes(model, batch))
    # learned: the model's own eval-mode forward (its selector's argmax), not forced
    loss, em = _forced_scores(model, batch, None)
    assert torch.allclose(w["loss_learned"], loss, atol=1e-5)
    assert torch.equal(w["em_learned"].double(), em)
    # uniform and oracle: all 2^3 combinations of the three answer positions' choices, forced for real
    combos = list(itertools.product(range(2), repeat=3))
    scores = [_forced_scores(model, batch, c) for c in combos]
    losses = torch.stack([s[0] for s in scores])  # (combos, rows)
    ems = torch.stack([s[1] for s in scores])
    assert torch.allclose(w["loss_uniform"], losses.mean(0), atol=1e-5)
    assert torch.allclose(w["em_uniform"].double(), ems.mean(0), atol=1e-9)
    # policy: every combination weighted by the probability that the eval-mode policy draws it
    # (independent draws per position; a row's non-answer positions sum out)
    with torch.no_grad():
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    pi = mawt_layers(model)[1].last_selection.log_probs[:, 4:7].exp().double()  # positions 4-6 predict 5-7
    weight = torch.stack([pi[:, 0, c[0]] * pi[:, 1, c[1]] * pi[:, 2, c[2]] for c in combos])  # (combos, rows)
    assert torch.allclose(w["loss_policy"].double(), (weight * losses.double()).sum(0), atol=1e-5)
    assert torch.allclose(w["em_policy"].double(), (weight * ems).sum(0), atol=1e-6)
    assert (pi.amax(-1) > 0.6).any() and not torch.allclose(w["loss_policy"], w["loss_uniform"], atol=1e-3)
    assert torch.equal(w["em_oracle"].double(), ems.amax(0))  # some combination reproduces the gold
    assert float(w["em_oracle"][0]) == 1.0 and 0 < float(w["em_uniform"][0]) < 1
    # the per-position oracle's loss is below every combination's (it may mix them per row)
    assert (w["loss_oracle"] <= losses.amin(0) + 1e-6).all()
    # a single depth is the combination that repeats it
    for d in range(2):
        i = combos.index((d, d, d))
        assert torch.allclose(w["loss_depth"][:, d], losses[i], atol=1e-5)
        assert torch.equal(w["em_depth"][:, d].double(), ems[i])


def test_worth_applies_only_to_a_hard_choice_in_the_last_layer():
    from conftest import tiny_model

    base = tiny_model("qwen2", layers=3)
    assert worth.applies(patch_model(copy.deepcopy(base), MAWTConfig(depth=4, mixer="grpo")))
    assert worth.applies(patch_model(copy.deepcopy(base), MAWTConfig(depth=4, mixer="gumbel")))
    assert not worth.applies(patch_model(copy.deepcopy(base), MAWTConfig(depth=4, mixer="softmax")))
    assert not worth.applies(patch_model(copy.deepcopy(base), MAWTConfig(depth=1, mixer="grpo")))
    assert not worth.applies(patch_model(copy.deepcopy(base), MAWTConfig(depth=4, mixer="grpo", layers=[-2])))
    assert not worth.applies(base)


# ------------------------------------------------------------ float32 rewards on the bf16 path
@pytest.mark.slow
def test_bf16_rewards_pick_the_float32_best_depth():
    """Stand-in geometry (hidden 1536, 12/2 heads, bf16 weights), 2 layers, D=4 GRPO in the last:
    the per-depth rewards of the bf16 training path pick the same best depth as float32 compute."""
    from transformers import TrainingArguments

    from mawt.bases import standin, standin_tokenizer
    from mawt.layer.patching import freeze
    from mawt.training.models import upcast_trainable
    from mawt.training.trainer import MAWTTrainer

    tok = standin_tokenizer.load_tokenizer()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, len(tok), (24, 40), generator=g)  # 8 prompt tokens, 32 answer tokens per row
    labels = ids.clone()
    labels[:, :8] = -100
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    torch.manual_seed(0)
    bf16 = patch_model(standin.build_model(tok, num_layers=2, seed=0), MAWTConfig(depth=4, mixer="grpo"))
    freeze(bf16, "last")
    upcast_trainable(bf16)
    fp32 = copy.deepcopy(bf16).float()
    rewards, old = {}, None
    for name, model in (("bfloat16", bf16), ("float32", fp32)):
        run = TrainConfig(credit="exact", dtype=name, device="cpu")
        trainer = MAWTTrainer(model=model, args=TrainingArguments(output_dir="unused", report_to=[], use_cpu=True),
                              run=run, use_grpo=True)
        with torch.no_grad(), trainer.autocast():
            rewards[name], cells = trainer.grpo_loss.depth_rewards(model, batch)
        if name == "bfloat16":  # the path before: the whole model in bf16 autocast, bf16 logits
            layer = mawt_layers(model)[1]
            ces = []
            for d in range(4):
                layer.mixer.forced = torch.full((24,), d)
                with torch.no_grad(), trainer.autocast():
                    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                ces.append(F.cross_entropy(logits[:, :-1].float().transpose(1, 2),
                                           batch["labels"][:, 1:].clamp_min(0), reduction="none"))
            layer.mixer.forced = None
            old = -torch.stack(ces, -1)[cells]
    new, ref = rewards["bfloat16"][cells], rewards["float32"][cells]
    assert ref.shape[0] == 768  # answer positions
    agree = (new.argmax(-1) == ref.argmax(-1)).double().mean()

    def rms(r):
        return float(((r - r.mean(-1, keepdim=True)) - (ref - ref.mean(-1, keepdim=True))).pow(2).mean().sqrt())

    assert agree >= 0.99, agree  # measured 0.995-0.996 (3-4 of 768) for inputs of seeds 0-3
    top2 = ref.topk(2, -1).values
    missed = (top2[:, 0] - top2[:, 1])[new.argmax(-1) != ref.argmax(-1)]
    assert (missed < 2e-3).all(), missed  # only near-ties of the float32 rewards (within 0.002 nats) differ

    assert rms(new) < rms(old) / 3, (rms(new), rms(old))
