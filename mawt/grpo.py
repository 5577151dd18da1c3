"""The GRPO objective for depth selection (MAWT_SPEC section 3).

Actions are the per-token depth choices of the `grpo` selector. Each training
example is run as a group of G rollouts that share the input and sample their own
choices. For rollout i:

    r_i  = - mean CE of the answer tokens under rollout i        (detached)
    A_i  = (r_i - mean_j r_j) / (std_j r_j + eps)                group-relative
    L_pg = - mean_i [ A_i * mean_t log pi(d_{i,t} | x) ]          t: non-pad positions
    L    = mean_i CE_i + lambda_pg * L_pg + beta * KL(pi || pi_ref) - eta * H(pi)

How this differs from DeepSeekMath's GRPO (Shao et al. 2024):
  * the "policy" is the depth selector, not the language model: actions are
    depth choices at every position, the reward is the answer likelihood (dense,
    cheap) rather than a verifier's score of a sampled completion;
  * one policy update per batch (on-policy), so the clipped importance ratio
    pi/pi_old is exactly 1 and the clipped surrogate reduces to the plain
    advantage-weighted log-likelihood above; no clipping is applied;
  * the KL term is the exact per-token KL between the selector's categorical
    distribution and the reference's (both are tiny, D-way), not the k3
    estimator; pi_ref is the selector at the start of fine-tuning;
  * the std of the group uses the population form (divide by G), and eps keeps
    a group of identical rewards at zero advantage, hence zero policy gradient.
"""

from __future__ import annotations

import torch


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4) -> torch.Tensor:
    """rewards: (B*G,), rollouts of one example adjacent. Returns (B*G,) advantages."""
    r = rewards.view(-1, group_size)
    adv = (r - r.mean(dim=1, keepdim=True)) / (r.std(dim=1, unbiased=False, keepdim=True) + eps)
    return adv.reshape(-1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    mask = mask.to(x.dtype)
    return (x * mask).sum(dim) / mask.sum(dim).clamp_min(1.0)


def policy_loss(advantages: torch.Tensor, choice_log_prob: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """L_pg = -mean_i[A_i * mean_t log pi(d_it)]; choice_log_prob, valid: (B*G, L)."""
    return -(advantages.detach() * masked_mean(choice_log_prob, valid)).mean()


def categorical_kl(log_p: torch.Tensor, log_q: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over valid positions of KL(p || q) for (N, L, D) log-probabilities."""
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)
    return masked_mean(kl, valid).mean()


def categorical_entropy(log_p: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return masked_mean(-(log_p.exp() * log_p).sum(-1), valid).mean()
