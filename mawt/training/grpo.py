"""The GRPO objective for depth selection (MAWT_SPEC section 3).

Actions are the per-token depth choices d_{i,t} of the `grpo` selector. Each
training example is run as a group of G rollouts that share the input and
sample their own choices; the rollouts of one example are adjacent rows.

    L = CE + lambda_pg * L_pg + beta * KL(pi || pi_ref) - eta * H(pi)

Credit (`train.credit`): which reward a choice is credited with
---------------------------------------------------------------
A choice at position t changes the MAWT layer's output at t only. With MAWT in
the last layer it therefore changes only the next-token logits at t; with MAWT
in a lower layer it reaches every position >= t (through later attention).

* ``token`` (default). Reward of the choice at t: r_{i,t} = -CE_{i,t}, the
  next-token cross-entropy at t (detached), only at positions t that predict an
  answer token (labels[t+1] != -100: the "answer cells"). Advantages compare
  the G rollouts at the same position t; prompt positions, the position of the
  last answer token (it predicts nothing scored) and padding get no policy
  gradient at all:

      L_pg = - mean over answer cells (i, t) of A_{i,t} * log pi(d_{i,t} | x)

  Exact credit for MAWT in the last layer. For MAWT in a lower layer it is an
  APPROXIMATION (the choice at t also moves the rewards of later positions,
  which it is not credited with); the trainer allows it and logs a warning.
* ``sequence`` (the original form). r_i = -mean answer CE of rollout i;

      L_pg = - mean_i [ A_i * mean_{t in S_i} log pi(d_{i,t} | x) ]

  with S_i the non-pad positions t <= the last answer cell of row i (a choice
  after the last position that predicts an answer token cannot change the
  reward, whatever layer MAWT is in). Valid for any layer, but with MAWT in the
  last layer ~90 % of S_i are prompt positions whose choices cannot matter:
  their log-probs only add noise (the reason `token` is the default).
* ``exact``: only when every MAWT layer is the model's last layer (see
  `check_credit`). Every depth d is evaluated at every answer cell (D forced
  rollouts of the last layer: its attention runs once, `MAWTAttention.
  copies_per_row = D`, the selector's `forced` choice picks depth d in copy d),
  giving r_t(d) = -CE_t(d). Nothing is sampled; the policy gradient is the
  analytic gradient of the expected reward:

      b_t   = sum_d pi(d|x_t) r_t(d)
      grad  = sum_d pi(d|x_t) (r_t(d) - b_t) grad log pi(d|x_t)   = grad E_pi[r_t]
      L_pg  = - mean over answer cells t of sum_d sg[pi] A_t(d) log pi(d|x_t)

  (sg = stop-gradient). The CE term that trains the model (A_d, B_d, the other
  trainable weights) is the pi-weighted expected CE with pi detached: per row,
  the mean over answer tokens of sum_d sg[pi(d|x_t)] CE_t(d), then the mean
  over rows. It is the expectation of what `token`/`sequence` train on (the CE
  of a sampled rollout, whose choice at t only moves CE_t), without sampling.

Advantage normalisation (`train.advantage`, default ``rloo``)
-------------------------------------------------------------
The default is in reward units, so that the push a choice gets follows how much
it changes the reward: rewards (a, a, a, a+delta) give the better rollout an
advantage proportional to delta (x1000 from delta = 0.001 to 1 nat), where
``grpo`` gives it about the same push at both (-0.47/+1.41 vs -0.58/+1.73: a
0.001-nat gap gets 81% of the push of a 1-nat one). With exact credit the
default's gradient is exactly sum_d pi(d) (r_t(d) - b_t) grad log pi(d), the
gradient of the expected reward (tests/test_policy_worth.py, on random tables);
with ``grpo`` it is that divided by the reward's std under pi, per cell. So a
scale-free advantage sharpens a policy on reward gaps of a few hundredths of a
nat, and its entropy drop is no evidence that the choice matters: what the
choice is worth is measured on the held-out set (mawt/evaluation/worth.py).

* ``grpo`` (Shao et al. 2024, DeepSeekMath), scale-free: A = (r - mean_G r) / (std_G r + eps),
  population std. Exact mode: A_t(d) = (r_t(d) - b_t) / (sigma_t + eps) with
  sigma_t^2 = sum_d pi (r_t(d) - b_t)^2, the std of the reward under pi.
* ``dr_grpo`` (Liu et al. 2025, "Understanding R1-Zero-Like Training: A
  Critical Perspective", arXiv 2503.20783): A = r - mean_G r, no std division,
  and no per-sequence length normalisation. In the sequence form the sum over
  S_i is divided by one normaliser shared by every row instead of |S_i|: the
  batch's mean |S_i|, so L_pg = -sum_{i, t in S_i} A_i log pi / sum_i |S_i|
  (every position weighs the same, long rows and short rows alike). Liu et al.
  use a fixed constant (the generation budget, MAX_TOKENS); that differs from
  ours by one scalar per batch, but `train.max_length` as the constant would
  shrink the policy loss by |S_i|/max_length against the KL and entropy terms
  (measured: at beta=0.01 the selector then oscillates instead of converging).
  The token and exact forms already average over answer cells, with no
  per-sequence normaliser to drop, so there dr_grpo only drops the std
  division. (The G rollouts of one example share their positions, so the
  length bias Liu et al. describe cannot arise between rollouts here; dr_grpo
  changes how examples of different lengths weigh.)
* ``rloo`` (Kool et al. 2019, "Buy 4 REINFORCE samples, get a baseline for
  free!"; Ahmadian et al. 2024, arXiv 2402.14740): A_i = r_i - mean_{j != i} r_j
  = G/(G-1) (r_i - mean_G r), no division; the sequence form keeps GRPO's
  per-sequence mean over S_i (only the baseline differs). In exact mode the
  baseline is the expectation b_t itself (nothing is sampled, so there is no
  sample to leave out): rloo equals dr_grpo there.

dr_grpo and rloo advantages are in reward units (nats of CE), so their weight
against the KL term depends on how much the choices matter. The default beta
(0.001) is the old 0.01 for unit-scale grpo advantages times a typical reward
spread between depths of ~0.1 nats; measured on the micro setup (token credit,
D=4, benchmarks/policy_beta.py), beta 0, 0.001 and 0.01 with rloo learn the
same (held-out entropy 1.07-1.38, the greedy choice at or near the best single
depth): the KL term does not pin the policy there. Liu et al. train without it.

KL direction
------------
The KL term is the exact KL(pi || pi_ref) over the D depths at each trained
position (the direction DeepSeekMath's objective states), and its gradient is
grad KL(pi || pi_ref). TRL's GRPO uses the k3 estimator (pi_ref/pi - log(pi_ref/pi)
- 1) on sampled tokens: its value is an unbiased estimate of KL(pi || pi_ref),
but its gradient as a loss has the expectation sum (pi - pi_ref) grad log pi =
grad KL(pi_ref || pi), the other direction (tests/test_policy_worth.py checks
that ours is the first). With D choices per position the exact value is cheap,
so nothing needs estimating.

Departures from DeepSeekMath's GRPO (Shao et al. 2024, arXiv 2402.03300)
------------------------------------------------------------------------
  * the policy is the depth selector, not the language model: actions are
    depth choices at every position of a fixed (teacher-forced) sequence, not
    sampled tokens;
  * the reward is dense and cheap, the (negative) likelihood of the gold answer
    tokens, not a verifier's score of a sampled completion;
  * one policy update per batch (on-policy), so the clipped importance ratio
    pi/pi_old is exactly 1 and the clipped surrogate reduces to the plain
    advantage-weighted log-likelihood above; no clipping is applied;
  * the KL term is the exact per-position KL(pi || pi_ref) between the
    selector's D-way categorical distribution and the reference's, not the k3
    estimator (whose gradient is that of the reverse KL: "KL direction" above);
    pi_ref is the selector at the start of fine-tuning;
  * the group std is the population std (divide by G); eps keeps a group of
    identical rewards at zero advantage, hence zero policy gradient;
  * per-token credit (`token`, default) instead of one advantage per sequence;
  * exact enumeration (`exact`) of all D actions instead of sampling;
  * the normalisation is an option (grpo / dr_grpo / rloo, above);
  * KL and entropy are averaged over the positions the policy loss trains
    (answer cells for token/exact, S_i for sequence), not over the whole row.

Negative control (`train.reward_control: shuffled`)
---------------------------------------------------
The rewards are permuted before they become advantages, so the policy gradient
keeps its scale and its noise but loses every link between a depth choice and
its reward: a selector trained this way should learn nothing about which depth
helps (its movement measures what KL, entropy and noise alone do), and the
learned policy of the real run is compared with it. Sequence credit permutes
the G rollout rewards of each group (`shuffle_within_groups`); token credit
permutes the G rewards of each (group, position) cell, an independent
permutation per cell (`shuffle_within_groups` with `cells`); exact credit
permutes the D per-depth rewards of each (row, position) cell
(`shuffle_depths`). Each group's multiset of rewards is kept, hence its mean,
std and spread, so the advantages have the same distribution; over the
permutations E[r_sigma(d)] is the same for every d, so the expected policy
gradient is zero (with dr_grpo / rloo, and with grpo in the sampled forms, where
the group std is permutation invariant). Exact credit with grpo divides by the
pi-weighted std, which is not: when pi is not uniform a small expected gradient
remains, but it depends on pi and on each cell's multiset of rewards only, not
on which depth earned which reward. The trainer draws the permutation from its own generator, seeded
from train.seed and the optimiser step, and never from the global RNG: data
order, init and the sampled choices of a step are those of the unshuffled run
with the same seed until the two policies diverge. Logged reward statistics
are the true ones.

Diagnostics: `zero_spread_frac` is the fraction of groups (sequence) or of
(group, position) cells (token) whose G rewards are all equal (spread <= 1e-6
nats): no policy gradient comes from those. `reward_spread` (exact) is the mean
over answer cells of max_d r_t(d) - min_d r_t(d): whether the choice matters at
all on a task.
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
    enter the group statistics). mode: grpo | dr_grpo | rloo (module docstring).
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
