"""The GRPO objective for depth selection (MAWT_SPEC section 3): the math, on tensors and
plain arguments (no run config; mawt/training/grpo_loss.py runs the model for it).

Actions are the per-token depth choices d_{i,t} of the `grpo` selector. Each
training example is run as a group of G rollouts that share the input and
sample their own choices; the rollouts of one example are adjacent rows.

    L = CE + lambda_pg * L_pg + beta * KL(pi || pi_ref) - eta * H(pi)

docs/grpo.md derives it: the three credit forms (`token`, `sequence`, `exact`:
`policy_loss`, `token_policy_loss`, `exact_policy_loss`), the advantage
normalisations (`group_advantages`, `exact_advantages`), the KL direction and the
negative control (`shuffle_within_groups`, `shuffle_depths`).

Departures from DeepSeekMath's GRPO (Shao et al. 2024, arXiv 2402.03300):
  * the policy is the depth selector, not the language model: actions are
    depth choices at every position of a fixed (teacher-forced) sequence, not
    sampled tokens;
  * the reward is dense and cheap, the (negative) likelihood of the gold answer
    tokens, not a verifier's score of a sampled completion;
  * one policy update per batch (on-policy), so the clipped importance ratio
    pi/pi_old is exactly 1 and the clipped surrogate reduces to the plain
    advantage-weighted log-likelihood; no clipping is applied;
  * the KL term is the exact per-position KL(pi || pi_ref) between the
    selector's D-way categorical distribution and the reference's, not the k3
    estimator (whose gradient is that of the reverse KL); pi_ref is the
    selector at the start of fine-tuning;
  * the group std is the population std (divide by G); eps keeps a group of
    identical rewards at zero advantage, hence zero policy gradient;
  * per-token credit (`token`, default) instead of one advantage per sequence;
  * exact enumeration (`exact`) of all D actions instead of sampling;
  * the normalisation is an option (grpo / dr_grpo / rloo);
  * KL and entropy are averaged over the positions the policy loss trains
    (answer cells for token/exact, S_i for sequence), not over the whole row.
"""

from __future__ import annotations

import torch

ADVANTAGES = ("grpo", "dr_grpo", "rloo")  # what this module computes (TrainConfig validates a run's choice)
ZERO_SPREAD_TOL = 1e-6  # nats: rewards closer than this count as equal


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    mask = mask.to(x.dtype)
    return (x * mask).sum(dim) / mask.sum(dim).clamp_min(1.0)


# ------------------------------------------------------------------ positions
def answer_cells(labels: torch.Tensor) -> torch.Tensor:
    """(N, L) bool: position t predicts an answer token (labels[t+1] != -100)."""
    cells = torch.zeros_like(labels, dtype=torch.bool)
    cells[:, :-1] = labels[:, 1:] != -100
    return cells


def upto_last_answer(labels: torch.Tensor) -> torch.Tensor:
    """(N, L) bool: t <= the last answer cell of the row (all False without one)."""
    cells = answer_cells(labels)
    # reversed cumulative "any": True at t iff some answer cell sits at t or later
    return cells.flip(-1).cumsum(-1).flip(-1) > 0


# ----------------------------------------------------------------- advantages
def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4, mode: str = "grpo",
                     cells: torch.Tensor | None = None) -> torch.Tensor:
    """Group-relative advantages; rollouts of one example are adjacent rows.

    rewards: (B*G,) sequence rewards, or (B*G, T) per-position rewards compared
    across the G rollouts at the same position (token form); `cells` (B*G, T)
    marks the positions that carry a reward (others get advantage 0 and do not
    enter the group statistics). mode: grpo | dr_grpo | rloo (docs/grpo.md).
    """
    if mode not in ADVANTAGES:
        raise ValueError(f"advantage mode {mode!r}: implemented are {', '.join(ADVANTAGES)}")
    G = group_size
    r = rewards.reshape(-1, G, *rewards.shape[1:])
    if cells is None:  # every rollout counts (the sequence form: the same ops as before the options)
        n = torch.full((), float(G), dtype=r.dtype, device=r.device)
        centred = r - r.mean(dim=1, keepdim=True)
        std = r.std(dim=1, unbiased=False, keepdim=True) if mode == "grpo" else None
    else:
        m = cells.reshape(r.shape).to(r.dtype)
        r = r * m
        n = m.sum(1, keepdim=True)
        centred = (r - r.sum(1, keepdim=True) / n.clamp_min(1.0)) * m
        std = ((centred ** 2).sum(1, keepdim=True) / n.clamp_min(1.0)).sqrt() if mode == "grpo" else None
    if mode == "grpo":
        adv = centred / (std + eps)
    elif mode == "dr_grpo":
        adv = centred
    else:  # rloo: r_i - mean_{j != i} r_j = n/(n-1) (r_i - mean)
        adv = centred * (n / (n - 1).clamp_min(1.0))
    return adv.reshape(rewards.shape)


def zero_spread_frac(rewards: torch.Tensor, group_size: int, cells: torch.Tensor | None = None,
                     tol: float = ZERO_SPREAD_TOL) -> torch.Tensor:
    """Fraction of groups (rewards (B*G,)) or of (group, position) cells (rewards
    (B*G, T) with `cells`) whose G rewards are all within `tol`: no gradient there."""
    r = rewards.reshape(-1, group_size, *rewards.shape[1:])
    spread = r.amax(1) - r.amin(1)
    zero = (spread <= tol).float()
    if cells is None:
        return zero.mean()
    return masked_mean(zero.flatten(), cells.reshape(r.shape)[:, 0].flatten(), dim=0)


# ------------------------------------------------------- negative control
def _random_keys(shape, generator: torch.Generator) -> torch.Tensor:
    """Uniform sort keys drawn from `generator` only (on its device), never the global RNG."""
    return torch.rand(shape, generator=generator, device=generator.device)


def shuffle_within_groups(rewards: torch.Tensor, group_size: int, generator: torch.Generator,
                          cells: torch.Tensor | None = None) -> torch.Tensor:
    """The rewards of each group permuted at random among its G rollouts (a new tensor).

    rewards (B*G,): each group's G sequence rewards get one random permutation.
    rewards (B*G, T): at every (group, position) the G rewards get their own,
    independent permutation (the token form). With `cells` (B*G, T) bool, only
    the rewards inside cells are permuted, among themselves; the others stay
    where they are. Rollouts of one example are adjacent rows. The multiset of
    each group (or cell) is kept. Random numbers come from `generator` only
    (use a CPU generator: the keys are drawn on its device and the index moved
    to the rewards' device), so the result is deterministic given its seed.
    """
    G = group_size
    r = rewards.reshape(-1, G, *rewards.shape[1:])
    keys = _random_keys(r.shape, generator)  # in [0, 1)
    if cells is None:
        src = keys.argsort(dim=1)
    else:
        inside = cells.reshape(r.shape).to(keys.device)
        rank = torch.arange(G, device=keys.device, dtype=keys.dtype).view(1, G, *([1] * (r.dim() - 2))) / G
        # cells first (in their own order / in random order), then the rest in their own order in both:
        # the k-th slot of `where` takes the value of the k-th slot of `source`
        where = torch.where(inside, rank, 2.0 + rank).expand(r.shape).argsort(dim=1)
        source = torch.where(inside, keys, 2.0 + rank).argsort(dim=1)
        src = torch.empty_like(where).scatter_(1, where, source)
    return r.gather(1, src.to(rewards.device)).reshape(rewards.shape)


def shuffle_depths(rewards: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The last dimension (the D per-depth rewards r_t(d) of exact credit) permuted at
    random, an independent permutation per (row, position) cell (a new tensor).

    Each cell keeps its multiset of rewards. Random numbers come from `generator`
    only (a CPU generator: keys drawn on its device, the index moved to the
    rewards' device), so the result is deterministic given its seed."""
    src = _random_keys(rewards.shape, generator).argsort(dim=-1)
    return rewards.gather(-1, src.to(rewards.device))


# --------------------------------------------------------------- policy losses
def policy_loss(advantages: torch.Tensor, choice_log_prob: torch.Tensor, valid: torch.Tensor,
                mode: str = "grpo", length_norm: float | None = None) -> torch.Tensor:
    """Sequence form. advantages (B*G,); choice_log_prob, valid: (B*G, L).

    grpo, rloo: L_pg = -mean_i[A_i * mean_{t valid} log pi(d_it)] (per-sequence mean);
    dr_grpo: L_pg = -mean_i[A_i * sum_{t valid} log pi(d_it)] / length_norm, one
    normaliser for every row (default: the mean number of valid positions per row,
    i.e. -sum_{i,t} A_i log pi / sum_i |S_i|; pass a constant for Liu et al.'s budget).
    """
    A = advantages.detach()
    if mode == "dr_grpo":
        per_row = (choice_log_prob * valid.to(choice_log_prob.dtype)).sum(-1)
        if length_norm is None:
            length_norm = valid.sum(-1).float().mean().clamp_min(1.0)
        return -(A * per_row / length_norm).mean()
    return -(A * masked_mean(choice_log_prob, valid)).mean()


def token_policy_loss(advantages: torch.Tensor, choice_log_prob: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """Token form: L_pg = -mean over cells (i, t) of A_it * log pi(d_it); all (B*G, L).

    Positions outside `cells` get exactly zero gradient."""
    w = advantages.detach() * cells.to(choice_log_prob.dtype)
    return -(w * choice_log_prob).sum() / cells.sum().clamp_min(1).to(choice_log_prob.dtype)


def exact_advantages(log_probs: torch.Tensor, rewards: torch.Tensor, mode: str = "grpo",
                     eps: float = 1e-4) -> torch.Tensor:
    """A_t(d) of exact mode: r_t(d) - b_t, b_t = sum_d pi r_t(d); grpo divides by the
    pi-weighted std. log_probs, rewards: (..., D); pi is detached."""
    if mode not in ADVANTAGES:
        raise ValueError(f"advantage mode {mode!r}: implemented are {', '.join(ADVANTAGES)}")
    pi = log_probs.detach().exp()
    centred = rewards - (pi * rewards).sum(-1, keepdim=True)
    if mode == "grpo":
        return centred / ((pi * centred ** 2).sum(-1, keepdim=True).sqrt() + eps)
    return centred  # dr_grpo, rloo (the baseline is exact: nothing to leave out)


def exact_policy_loss(log_probs: torch.Tensor, rewards: torch.Tensor, cells: torch.Tensor, mode: str = "grpo",
                      eps: float = 1e-4) -> torch.Tensor:
    """Exact mode: L_pg = -mean over cells of sum_d sg[pi(d)] A_t(d) log pi(d).

    log_probs (N, L, D) with grad; rewards (N, L, D) detached; cells (N, L) bool.
    With dr_grpo/rloo, grad L_pg = -mean over cells of grad E_pi[r_t] exactly."""
    A = exact_advantages(log_probs, rewards.detach(), mode, eps)
    per_cell = (log_probs.detach().exp() * A * log_probs).sum(-1)  # (N, L)
    return -(per_cell * cells.to(per_cell.dtype)).sum() / cells.sum().clamp_min(1).to(per_cell.dtype)


def reward_spread(rewards: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """Mean over cells of max_d r_t(d) - min_d r_t(d); rewards (N, L, D)."""
    spread = rewards.amax(-1) - rewards.amin(-1)
    return masked_mean(spread.flatten(), cells.flatten(), dim=0)


# ------------------------------------------------------------- regularisers
def categorical_kl(log_p: torch.Tensor, log_q: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over valid positions of KL(p || q) for (N, L, D) log-probabilities."""
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)
    return masked_mean(kl, valid).mean()


def categorical_entropy(log_p: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return masked_mean(-(log_p.exp() * log_p).sum(-1), valid).mean()
