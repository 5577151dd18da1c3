"""The GRPO objective against hand-computed numbers."""

import math

import torch

from mawt import grpo


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
