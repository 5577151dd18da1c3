"""The GRPO objective against hand-computed numbers."""

import math

import pytest
import torch

from mawt.training import grpo
from mawt.training.preflight import check_credit


def test_group_advantages_by_hand():
    rewards = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0])  # two groups of G=4
    adv = grpo.group_advantages(rewards, group_size=4, eps=0.0 + 1e-12)
    std = math.sqrt(((1 - 2.5) ** 2 + (2 - 2.5) ** 2 + (3 - 2.5) ** 2 + (4 - 2.5) ** 2) / 4)  # 1.118
    expected = torch.tensor([-1.5 / std, -0.5 / std, 0.5 / std, 1.5 / std, 0, 0, 0, 0])
    assert torch.allclose(adv, expected, atol=1e-6)


def test_policy_loss_by_hand():
    adv = torch.tensor([1.0, -1.0])
    logp = torch.tensor([[-0.5, -1.5, -9.0], [-2.0, -1.0, -9.0]], requires_grad=True)
    valid = torch.tensor([[True, True, False], [True, True, False]])  # last position is padding
    loss = grpo.policy_loss(adv, logp, valid)
    # mean_t over valid: row0 = -1.0, row1 = -1.5; L = -mean(1*-1.0, -1*-1.5) = -0.25
    assert math.isclose(loss.item(), -0.25, abs_tol=1e-6)
    loss.backward()
    assert torch.allclose(logp.grad, torch.tensor([[-0.25, -0.25, 0.0], [0.25, 0.25, 0.0]]))


def test_equal_rewards_give_zero_policy_gradient():
    logits = torch.randn(8, 5, 3, requires_grad=True)
    log_probs = torch.log_softmax(logits, -1)
    choice = torch.randint(0, 3, (8, 5))
    chosen = log_probs.gather(-1, choice[..., None]).squeeze(-1)
    adv = grpo.group_advantages(torch.full((8,), 0.7), group_size=4)
    assert torch.equal(adv, torch.zeros(8))
    grpo.policy_loss(adv, chosen, torch.ones(8, 5, dtype=torch.bool)).backward()
    assert torch.count_nonzero(logits.grad) == 0


def test_kl_and_entropy_by_hand():
    p = torch.tensor([[[0.5, 0.5]]]).log()
    q = torch.tensor([[[0.25, 0.75]]]).log()
    valid = torch.ones(1, 1, dtype=torch.bool)
    kl = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert math.isclose(grpo.categorical_kl(p, q, valid).item(), kl, rel_tol=1e-6)
    assert math.isclose(grpo.categorical_entropy(p, valid).item(), math.log(2), rel_tol=1e-6)
    assert grpo.categorical_kl(p, p, valid).item() == 0


# ---------------------------------------------------------------- normalisations by hand
def test_sequence_advantages_by_hand_for_each_normalisation():
    r = torch.tensor([1.0, 2.0, 6.0, 0.0, 0.0, 3.0])  # two groups of G=3
    std0, std1 = math.sqrt(14 / 3), math.sqrt(2.0)
    by_mode = {
        "grpo": [-2 / std0, -1 / std0, 3 / std0, -1 / std1, -1 / std1, 2 / std1],
        "dr_grpo": [-2, -1, 3, -1, -1, 2],
        "rloo": [1 - 4, 2 - 3.5, 6 - 1.5, 0 - 1.5, 0 - 1.5, 3 - 0],  # r_i - mean of the other two
    }
    for mode, expected in by_mode.items():
        adv = grpo.group_advantages(r, 3, eps=1e-12, mode=mode)
        assert torch.allclose(adv, torch.tensor(expected, dtype=torch.float32), atol=1e-6), mode


def test_token_advantages_by_hand_for_each_normalisation():
    # one group of G=3 rollouts, 3 positions; position 1 is not an answer cell (its reward is junk)
    r = torch.tensor([[1.0, 50.0, 4.0], [2.0, -7.0, 4.0], [6.0, 9.0, 1.0]])
    cells = torch.tensor([[True, False, True]] * 3)
    s0, s2 = math.sqrt(14 / 3), math.sqrt(2.0)  # population std at positions 0 and 2
    by_mode = {
        "grpo": [[-2 / s0, 0, 1 / s2], [-1 / s0, 0, 1 / s2], [3 / s0, 0, -2 / s2]],
        "dr_grpo": [[-2, 0, 1], [-1, 0, 1], [3, 0, -2]],
        "rloo": [[1 - 4, 0, 4 - 2.5], [2 - 3.5, 0, 4 - 2.5], [6 - 1.5, 0, 1 - 4]],
    }
    for mode, expected in by_mode.items():
        adv = grpo.group_advantages(r, 3, eps=1e-12, mode=mode, cells=cells)
        assert torch.allclose(adv, torch.tensor(expected, dtype=torch.float32), atol=1e-6), mode
    # rollouts are compared at the same position only: shifting one position's rewards changes nothing else
    shifted = r.clone()
    shifted[:, 2] += 100.0
    adv = grpo.group_advantages(shifted, 3, mode="grpo", cells=cells)
    assert torch.allclose(adv, grpo.group_advantages(r, 3, mode="grpo", cells=cells), atol=1e-5)


def test_dr_grpo_sequence_loss_has_no_per_sequence_length_normalisation():
    adv = torch.tensor([1.0, -1.0])
    logp = torch.tensor([[-0.5, -1.5, -9.0], [-2.0, -1.0, -1.0]], requires_grad=True)
    valid = torch.tensor([[True, True, False], [True, True, True]])  # 2 and 3 positions
    loss = grpo.policy_loss(adv, logp, valid, mode="dr_grpo")
    # sum_t per row: -2.0 and -4.0; one normaliser for both rows: mean |S_i| = 2.5
    assert math.isclose(loss.item(), -((1 * -2.0) + (-1 * -4.0)) / 2 / 2.5, abs_tol=1e-6)
    loss.backward()
    # every valid position of a row gets the same weight A_i / (N * 2.5), whatever the row's length
    assert torch.allclose(logp.grad, torch.tensor([[-0.2, -0.2, 0.0], [0.2, 0.2, 0.2]]))
    fixed = grpo.policy_loss(adv, logp, valid, mode="dr_grpo", length_norm=128.0)
    assert math.isclose(fixed.item(), -2.0 / 2 / 128.0, abs_tol=1e-7)


def test_token_policy_loss_by_hand():
    adv = torch.tensor([[0.0, 2.0, -1.0], [0.0, -2.0, 1.0]])
    logp = torch.tensor([[-0.1, -0.5, -1.0], [-0.2, -2.0, -0.3]], requires_grad=True)
    cells = torch.tensor([[False, True, True], [False, True, True]])
    loss = grpo.token_policy_loss(adv, logp, cells)
    assert math.isclose(loss.item(), -(2 * -0.5 + -1 * -1.0 + -2 * -2.0 + 1 * -0.3) / 4, abs_tol=1e-6)
    loss.backward()
    assert torch.allclose(logp.grad, torch.tensor([[0.0, -0.5, 0.25], [0.0, 0.5, -0.25]]))


def test_zero_spread_fraction():
    seq = torch.tensor([1.0, 1.0, 1.0, 1.0, 2.0, 1.0])  # G=3: the first group has no spread
    assert math.isclose(grpo.zero_spread_frac(seq, 3).item(), 0.5)
    tok = torch.tensor([[1.0, 5.0, 0.0], [1.0, 6.0, 0.0], [1.0, 5.0, 9.0]])
    cells = torch.tensor([[True, True, False]] * 3)  # position 2: no cell (its spread is ignored)
    assert math.isclose(grpo.zero_spread_frac(tok, 3, cells=cells).item(), 0.5)


# ---------------------------------------------------------------- positions
def test_answer_cells_and_the_last_answer_position():
    labels = torch.tensor([[-100, -100, -100, 7, 8, -100, -100],   # prompt 0-2, answer 3-4, padding 5-6
                           [-100, -100, 5, 6, 7, 9, -100]])
    assert grpo.answer_cells(labels).int().tolist() == [[0, 0, 1, 1, 0, 0, 0], [0, 1, 1, 1, 1, 0, 0]]
    assert grpo.upto_last_answer(labels).int().tolist() == [[1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0]]


# ---------------------------------------------------------------- exact mode
def test_exact_gradient_is_the_analytic_policy_gradient():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 3, 4, generator=g, requires_grad=True)
    rewards = torch.randn(2, 3, 4, generator=g)
    cells = torch.tensor([[True, False, True], [True, True, False]])
    log_probs = torch.log_softmax(logits, -1)
    for mode in ("dr_grpo", "rloo"):
        grad, = torch.autograd.grad(grpo.exact_policy_loss(log_probs, rewards, cells, mode), logits, retain_graph=True)
        pi = log_probs.detach().exp()
        b = (pi * rewards).sum(-1, keepdim=True)
        # d/dz_k sum_d pi_d r_d = pi_k (r_k - b): the sum_d pi (r - b) grad log pi of the brief, by hand
        analytic = -(pi * (rewards - b)) * cells[..., None] / cells.sum()
        assert torch.allclose(grad, analytic, atol=1e-6), mode
        # ... which is the gradient of the expected reward itself (no sampling variance)
        expected, = torch.autograd.grad(-((torch.softmax(logits, -1) * rewards).sum(-1) * cells).sum() / cells.sum(),
                                        logits)
        assert torch.allclose(grad, expected, atol=1e-6), mode
    # grpo: the same direction per cell, divided by the std of the reward under pi
    grad, = torch.autograd.grad(grpo.exact_policy_loss(log_probs, rewards, cells, "grpo", eps=0.0), logits)
    pi = log_probs.detach().exp()
    centred = rewards - (pi * rewards).sum(-1, keepdim=True)
    sigma = (pi * centred ** 2).sum(-1, keepdim=True).sqrt()
    assert torch.allclose(grad, -(pi * centred / sigma) * cells[..., None] / cells.sum(), atol=1e-6)
    # the spread, on numbers worked by hand: cells 0 and 2 count, max - min there is 3 - 1 and 4 - (-1)
    small = torch.tensor([[[1.0, 3.0, 2.0], [5.0, 5.0, 9.0], [0.0, -1.0, 4.0]]])
    assert grpo.reward_spread(small, torch.tensor([[True, False, True]])).item() == 3.5


def test_check_credit_messages():
    check_credit("exact", [3], 4)
    check_credit("exact", [-1], 4)
    check_credit("token", [0, 3], 4)
    check_credit("sequence", [1], 4)
    with pytest.raises(ValueError) as err:
        check_credit("exact", [1, 3], 4)
    message = str(err.value)
    assert "\n" not in message and "train.credit='exact'" in message and "layer(s) [1]" in message
    assert "'token'" in message and "'sequence'" in message and "last layer (3)" in message
    with pytest.raises(ValueError, match=r"train.credit='exact' needs MAWT only in the last layer \(5\)"):
        check_credit("exact", [-2], 6)
    # an unknown credit is TrainConfig's to refuse (one rule, one place), before any shape is known
    from mawt.training.runconfig import TrainConfig

    with pytest.raises(ValueError, match=r"train.credit='tokens' is invalid: allowed are token, sequence, exact"):
        TrainConfig(credit="tokens")


@pytest.mark.parametrize("field, value, message", [
    ("credit", "per_token", "train.credit='per_token' is invalid: allowed are token, sequence, exact"),
    ("advantage", "ppo", "train.advantage='ppo' is invalid: allowed are grpo, dr_grpo, rloo"),
])
def test_train_config_rejects_unknown_credit_and_advantage(field, value, message):
    from mawt.training.runconfig import TrainConfig

    assert (TrainConfig().credit, TrainConfig().advantage) == ("token", "rloo")
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_the_grpo_math_computes_every_advantage_a_run_config_allows():
    """Two lists on purpose: the run config (no torch, read at workflow start) and the math (no run config)."""
    from mawt.training.runconfig import TrainConfig

    assert grpo.ADVANTAGES == TrainConfig.ADVANTAGES


# ---------------------------------------------------------------- with a real (tiny) model
def _tiny_grpo(credit, advantage="grpo", depth=3, layers=(-1,), n_layers=2):
    from conftest import tiny_model
    from transformers import TrainingArguments

    from mawt import MAWTConfig, patch_model
    from mawt.training.runconfig import TrainConfig
    from mawt.training.trainer import MAWTTrainer

    model = patch_model(tiny_model("qwen2", layers=n_layers), MAWTConfig(depth=depth, init_noise=0.3,
                                                                       layers=list(layers))).train()
    args = TrainingArguments(output_dir="unused", report_to=[], use_cpu=True)
    run = TrainConfig(group_size=4, credit=credit, advantage=advantage, beta=0.0, eta=0.0)
    return model, MAWTTrainer(model=model, args=args, run=run, use_grpo=True)


def _labelled_batch():
    """Row 0: prompt 0-5, answer 6-9. Row 1: prompt 0-3, answer 4-6, right padding 7-9."""
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(3, 64, (2, 10), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    ids = ids.masked_fill(mask == 0, 0)
    labels = ids.clone()
    labels[0, :6] = -100
    labels[1, :4] = -100
    labels[1, 7:] = -100
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _selector_logit_grads(model, trainer, batch):
    from mawt import mawt_layers

    seen = {}
    layer = mawt_layers(model)[len(model.model.layers) - 1]
    def keep(module, args, out):
        out.retain_grad()
        seen["out"] = out

    handle = layer.mixer.selector.register_forward_hook(keep)
    try:
        torch.manual_seed(0)
        trainer.compute_loss(model, batch).backward()
    finally:
        handle.remove()
    grad = seen["out"].grad  # (rows, L', D): the positions the selector ran at, the last L' of L
    # (the answer window, mawt.layer.depthwise.last_layer_at); the positions before it got no gradient
    return torch.nn.functional.pad(grad, (0, 0, batch["input_ids"].shape[1] - grad.shape[1], 0))


def test_token_credit_gives_no_gradient_to_choices_that_cannot_change_the_reward():
    model, trainer = _tiny_grpo("token")
    batch = _labelled_batch()
    grad = _selector_logit_grads(model, trainer, batch)  # (2*G, 10, D)
    cells = grpo.answer_cells(batch["labels"]).repeat_interleave(4, 0)
    touched = grad.abs().amax(-1) > 0
    assert not touched[~cells].any(), "a prompt / last-token / padding position got a policy gradient"
    assert touched[cells].float().mean() > 0.5  # answer cells do get one (where rollouts differ)
    assert trainer._parts["zero_spread_frac"][-1] < 1.0


def test_sequence_credit_stops_at_the_last_answer_position():
    model, trainer = _tiny_grpo("sequence")
    batch = _labelled_batch()
    grad = _selector_logit_grads(model, trainer, batch)
    acts = (batch["attention_mask"].bool() & grpo.upto_last_answer(batch["labels"])).repeat_interleave(4, 0)
    touched = grad.abs().amax(-1) > 0
    assert not touched[~acts].any()  # the last answer token's own position and padding: nothing
    assert touched[acts].float().mean() > 0.5  # prompt positions are credited in the sequence form


def test_sequence_credit_in_the_trainer_matches_the_formula():
    """The logged loss_pg equals the sequence formula, recomputed from the sampled choices."""
    from mawt import mawt_layers
    from mawt.training.grpo_loss import answer_ce

    model, trainer = _tiny_grpo("sequence")
    batch = _labelled_batch()
    torch.manual_seed(0)
    trainer.compute_loss(model, batch)
    sel = mawt_layers(model)[1].last_selection
    rep = {k: v.repeat_interleave(4, 0) for k, v in batch.items()}
    layer = mawt_layers(model)[1]
    layer.mixer.forced = sel.choice  # replay the same rollouts, one full pass per row
    try:
        with torch.no_grad():
            ce = answer_ce(model(input_ids=rep["input_ids"], attention_mask=rep["attention_mask"]).logits,
                           rep["labels"])
    finally:
        layer.mixer.forced = None
    r = -ce.view(-1, 4)
    adv = ((r - r.mean(1, keepdim=True)) / (r.std(1, unbiased=False, keepdim=True) + 1e-4)).reshape(-1)
    valid = rep["attention_mask"].bool() & grpo.upto_last_answer(rep["labels"])
    expected = -(adv * grpo.masked_mean(sel.choice_log_prob.detach(), valid)).mean()
    assert math.isclose(trainer._parts["loss_pg"][-1], expected.item(), abs_tol=1e-5)
    assert math.isclose(trainer._parts["loss_ce"][-1], ce.mean().item(), abs_tol=1e-5)


def test_exact_credit_in_the_trainer_is_the_expected_reward_gradient():
    """Exact mode (D forced copies, attention shared) == D separate forced passes, by hand."""
    from mawt import mawt_layers
    from mawt.training.grpo_loss import token_ce

    model, trainer = _tiny_grpo("exact", advantage="dr_grpo")
    batch = _labelled_batch()
    layer = mawt_layers(model)[1]
    params = list(layer.mixer.parameters())
    trainer.compute_loss(model, batch).backward()
    got = [p.grad.clone() for p in params]
    logged = {k: v[-1] for k, v in trainer._parts.items()}
    model.zero_grad()

    cells = grpo.answer_cells(batch["labels"])[:, :-1]
    ces = []
    for d in range(3):
        layer.mixer.forced = torch.full((2,), d)
        ces.append(token_ce(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
                            batch["labels"]))
    layer.mixer.forced = None
    ce = torch.stack(ces, -1)  # (2, L-1, D)
    pi = layer.last_selection.log_probs[:, :-1].exp()  # with grad
    expected_reward = -(pi * ce.detach()).sum(-1)
    (-(expected_reward * cells).sum() / cells.sum()).backward()
    for g_got, p in zip(got, params):
        assert torch.allclose(g_got, p.grad, atol=1e-6, rtol=1e-4)
    assert any(g.abs().max() > 0 for g in got)
    expected_ce = grpo.masked_mean((pi.detach() * ce.detach()).sum(-1), cells).mean()
    assert math.isclose(logged["loss_ce"], expected_ce.item(), rel_tol=1e-5)
    spread = grpo.reward_spread(-ce.detach(), cells)
    assert spread > 0 and math.isclose(logged["reward_spread"], spread.item(), rel_tol=1e-5)
    assert {"loss_pg", "kl", "loss_entropy", "reward_mean", "reward_std", "depth_usage_0",
            "selector_entropy"} <= set(logged)


def test_exact_credit_is_refused_below_the_last_layer():
    with pytest.raises(ValueError, match=r"train.credit='exact' needs MAWT only in the last layer \(2\)"):
        _tiny_grpo("exact", layers=(0, 2), n_layers=3)


def test_forced_choices_are_one_hot_and_keep_the_policy():
    from conftest import padded_batch, tiny_model

    from mawt import MAWTConfig, mawt_layers, patch_model

    model = patch_model(tiny_model(), MAWTConfig(depth=3, init_noise=0.3)).train()
    layer = mawt_layers(model)[1]
    batch = padded_batch()
    torch.manual_seed(0)
    model(**batch)
    free = layer.last_selection
    for forced in (torch.tensor([2, 0, 1]), torch.tensor([[0, 1, 2] * 3 + [0]] * 3)):
        layer.mixer.forced = forced
        try:
            model(**batch)
        finally:
            layer.mixer.forced = None
        sel = layer.last_selection
        want = forced[:, None].expand(3, 10) if forced.dim() == 1 else forced
        assert torch.equal(sel.choice, want) and torch.equal(sel.weights, torch.nn.functional.one_hot(want, 3).float())
        assert torch.allclose(sel.log_probs, free.log_probs, atol=1e-6)  # the policy is still computed
    with pytest.raises(ValueError, match="forced has shape"):
        layer.mixer.forced = torch.tensor([0, 1])
        try:
            model(**batch)
        finally:
            layer.mixer.forced = None


def test_token_credit_below_the_last_layer_is_labelled_an_approximation(caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="mawt.training.trainer"):
        _tiny_grpo("token", layers=(0,), n_layers=2)
    assert "APPROXIMATION" in caplog.text and "layer(s) [0]" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mawt.training.trainer"):
        _tiny_grpo("token")  # last layer: exact, nothing to warn about
    assert "APPROXIMATION" not in caplog.text


# ---------------------------------------------------------------- negative control: shuffled rewards
def _permutation_of(before: torch.Tensor, after: torch.Tensor) -> list:
    """The order in which the distinct values of `before` appear in `after` (1-D)."""
    return [before.tolist().index(v) for v in after.tolist()]


def test_shuffles_keep_each_group_and_are_deterministic():
    B, G, T, D = 5, 4, 6, 3
    seq = torch.randn(B * G, generator=torch.Generator().manual_seed(0))
    tok = torch.randn(B * G, T, generator=torch.Generator().manual_seed(1))
    cells = torch.rand(B * G, T, generator=torch.Generator().manual_seed(2)) > 0.3
    dep = torch.randn(B, T, D, generator=torch.Generator().manual_seed(3))
    gen = lambda seed: torch.Generator().manual_seed(seed)  # noqa: E731

    s = grpo.shuffle_within_groups(seq, G, gen(7))
    assert torch.equal(s.view(B, G).sort(1).values, seq.view(B, G).sort(1).values)  # each group's multiset
    assert not torch.equal(s, seq)  # some group's order changed
    assert torch.equal(s, grpo.shuffle_within_groups(seq, G, gen(7)))  # same seed, same permutation
    assert not torch.equal(s, grpo.shuffle_within_groups(seq, G, gen(8)))

    t = grpo.shuffle_within_groups(tok, G, gen(7), cells=cells)
    assert torch.equal(t[~cells], tok[~cells])  # outside the cells nothing moves
    assert torch.equal(t, grpo.shuffle_within_groups(tok, G, gen(7), cells=cells))
    perms = set()
    for b in range(B):
        for j in range(T):
            inside = cells[b * G:(b + 1) * G, j]
            before, after = tok[b * G:(b + 1) * G, j][inside], t[b * G:(b + 1) * G, j][inside]
            assert torch.equal(before.sort().values, after.sort().values)  # each cell's multiset
            if inside.all():
                perms.add(tuple(_permutation_of(before, after)))
    assert len(perms) > 3  # an independent permutation per (group, position), not one per group
    full = grpo.shuffle_within_groups(tok, G, gen(7))  # no cells: every position is one
    assert torch.equal(full.view(B, G, T).sort(1).values, tok.view(B, G, T).sort(1).values)
    assert not torch.equal(full, tok)

    d = grpo.shuffle_depths(dep, gen(7))
    assert torch.equal(d.sort(-1).values, dep.sort(-1).values)  # each (row, position) keeps its D rewards
    assert (d != dep).any(-1).float().mean() > 0.5  # the order changed in most cells
    assert len({tuple(_permutation_of(dep[b, j], d[b, j])) for b in range(B) for j in range(T)}) > 3
    assert torch.equal(d, grpo.shuffle_depths(dep, gen(7)))
    assert not torch.equal(d, grpo.shuffle_depths(dep, gen(8)))

    state = torch.random.get_rng_state()
    grpo.shuffle_within_groups(tok, G, gen(7), cells=cells)
    grpo.shuffle_depths(dep, gen(7))
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is never drawn from


@pytest.mark.parametrize("mode", ["grpo", "dr_grpo", "rloo"])
def test_shuffled_rewards_give_no_expected_gradient_towards_the_good_depth(mode):
    """Depth 0 is the best at every cell. The exact-credit policy gradient pushes its logit up;
    with the rewards shuffled across depths (K independent permutations of the same table, one
    exact_policy_loss call) the average gradient has no direction: E[r_sigma(d)] is the same for
    every d. (With grpo and a non-uniform pi the std division leaves a small per-cell bias that
    depends on pi, not on which depth was good; summed over random policies it is tiny.)"""
    g = torch.Generator().manual_seed(0)
    N, L, D, K = 4, 8, 4, 3000
    logits = 1.5 * torch.randn(N, L, D, generator=g)
    rewards = -(0.5 + torch.rand(N, L, D, generator=g))
    rewards[..., 0] = 0.0  # depth 0: always the best
    cells = torch.rand(N, L, generator=g) > 0.2

    def per_depth_grad(table, copies):
        z = logits.repeat(copies, 1, 1).requires_grad_(True)
        loss = grpo.exact_policy_loss(torch.log_softmax(z, -1), table, cells.repeat(copies, 1), mode)
        grad, = torch.autograd.grad(loss, z)
        return grad.view(copies, N, L, D).sum((0, 1, 2))  # mean over cells and permutations: (D,)

    plain = per_depth_grad(rewards, 1)
    assert plain[0] < -0.1 and (plain[1:] > 0).all()  # descent raises depth 0's logit, lowers the others
    shuffled = per_depth_grad(grpo.shuffle_depths(rewards.repeat(K, 1, 1), torch.Generator().manual_seed(1)), K)
    assert shuffled.abs().max() < 0.03 * plain.abs().max(), (plain, shuffled)


def _tiny_trainer(reward_control, credit, out, steps=4):
    from conftest import tiny_model
    from transformers import TrainingArguments

    from mawt import MAWTConfig, patch_model
    from mawt.training.runconfig import TrainConfig
    from mawt.training.trainer import MAWTTrainer

    model = patch_model(tiny_model("qwen2"), MAWTConfig(depth=3, init_noise=0.3)).train()
    batch = _labelled_batch()
    rows = [{k: v[i] for k, v in batch.items()} for i in range(2)] * 2
    run = TrainConfig(steps=steps, batch_size=2, group_size=4, credit=credit, reward_control=reward_control,
                      seed=0, logging_steps=1, learning_rate=3e-2, warmup_steps=0)
    args = TrainingArguments(output_dir=str(out), report_to=[], use_cpu=True, max_steps=steps,
                             per_device_train_batch_size=2, learning_rate=run.learning_rate, logging_steps=1,
                             save_strategy="no", seed=0, data_seed=0, lr_scheduler_type="constant")
    return model, MAWTTrainer(model=model, args=args, run=run, use_grpo=True, train_dataset=rows)


def _train_log(reward_control, credit, out):
    from mawt import mawt_layers

    model, trainer = _tiny_trainer(reward_control, credit, out)
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss_pg" in entry]
    selector = {n: p.detach().clone() for n, p in mawt_layers(model)[1].mixer.named_parameters()}
    return logs, selector


@pytest.mark.parametrize("credit", ["token", "sequence", "exact"])
def test_shuffled_training_runs_and_differs_from_the_real_run(credit, tmp_path):
    plain_logs, plain_sel = _train_log("none", credit, tmp_path / "none")
    logs, sel = _train_log("shuffled", credit, tmp_path / "shuffled")
    assert len(logs) == len(plain_logs) == 4
    # step 1: same weights, same data, same sampled choices (the permutation uses its own generator,
    # never the global RNG), so the same CE and the same true rewards; only the policy loss differs
    for key in ("loss_ce", "reward_mean", "reward_std", "kl"):
        assert logs[0][key] == plain_logs[0][key], key
    assert logs[0]["loss_pg"] != plain_logs[0]["loss_pg"]
    assert any(not torch.equal(sel[n], plain_sel[n]) for n in sel)  # the policies trained differently
    again, again_sel = _train_log("shuffled", credit, tmp_path / "again")  # deterministic given the seed
    assert again == logs and all(torch.equal(again_sel[n], sel[n]) for n in sel)


def test_reward_generator_is_seeded_from_seed_and_step(tmp_path):
    from mawt.training.grpo_loss import RewardStream

    stream = RewardStream(seed=2)
    first = stream.generator(0, True)
    assert stream.generator(0, True) is first  # the same step continues its stream
    a = torch.rand(5, generator=first)
    b = torch.rand(5, generator=stream.generator(3, True))
    assert torch.equal(a, torch.rand(5, generator=torch.Generator().manual_seed(2 * 1_000_003 + 0)))
    assert torch.equal(b, torch.rand(5, generator=torch.Generator().manual_seed(2 * 1_000_003 + 3)))
    c = torch.rand(5, generator=stream.generator(3, False))  # evaluation calls: a stream of their own, from
    assert torch.equal(c, b)  # the same seed, not the continuation of training's
    # a shuffled loss leaves the global RNG where the real one does (data order, later choices unchanged)
    states = {}
    for control in ("none", "shuffled"):
        model, trainer = _tiny_trainer(control, "token", tmp_path)
        torch.manual_seed(0)
        trainer.compute_loss(model, _labelled_batch())
        states[control] = torch.random.get_rng_state()
    assert torch.equal(states["none"], states["shuffled"])


def test_reward_control_is_validated_and_shares_the_plain_baseline():
    from mawt.studies.baselines import plainized
    from mawt.training.runconfig import TrainConfig

    assert TrainConfig().reward_control == "none" and TrainConfig(reward_control="shuffled")
    with pytest.raises(ValueError, match=r"^train.reward_control='permuted' is invalid: allowed are none, shuffled$"):
        TrainConfig(reward_control="permuted")
    over = {"mawt": {"mixer": "grpo"}, "train": {"reward_control": "shuffled", "steps": 5}}
    assert plainized(over) == plainized({"mawt": {"mixer": "grpo"}, "train": {"steps": 5}})
