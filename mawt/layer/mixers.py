"""Depth mixers: how the D attention outputs of a head become one, w[b, q, d] per token.

A mixer (`mawt.mixer`) is one of the five rules below. The three learned ones own a
*selector*: a small MLP (`DepthMixer.selector`; `selector_input`, `selector_width`,
`selector_entropy`) that turns per-token observations into logits over the depths;
`mean` and `fixed` have none (docs/naming.md).

The observation of query position q (`selector_input`) is `stats`: per depth
depth d, the normalised entropy and the peak weight of the attention row
P_d[b, :, q, :] (averaged over heads); `hidden`: the query's hidden state (known
before attention, so a hard choice can route each token to one depth, see
mawt/layer/attention.py); or `both`. All only look at keys <= q, so the weights are
causal. Observations are detached: the selector *reads* the
attention maps and does not backpropagate into them. Gradients reach the depth
transforms A_d, B_d through the mixed output, and reach the selector MLP through
w (softmax, gumbel) or through the GRPO policy loss (grpo).

| mixer   | training                              | eval    |
|---------|---------------------------------------|---------|
| softmax | softmax(logits / tau)                 | same    |
| grpo    | d ~ Cat(softmax(logits)), w one-hot   | argmax  |
| gumbel  | straight-through Gumbel-softmax       | argmax  |
| mean    | 1/D                                   | same    |
| fixed   | onehot(fixed_index)                   | same    |

Forced choices: set `DepthMixer.forced` to a long tensor of shape (B,) (one depth
per row) or (B, L) (per position) and every mixer returns one-hot weights on
those depths (no sampling), while learned selectors still compute logits and
log_probs (exact GRPO credit evaluates every depth this way, mawt/training/grpo.py).
`None` (default) restores the normal behaviour; it is a plain attribute, not
saved with the model.

Sampling uses the Gumbel-max trick with noise drawn for the whole (B, L, D)
grid at once, so with a fixed RNG the draw at position t never depends on the
tokens after t (causality also holds in training mode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mawt.layer.config import MAWTConfig

N_STATS = 2  # normalised entropy, peak weight


@dataclass
class Selection:
    """What the selector decided in the last forward of one MAWT layer.

    Shapes: (B, L, D) for `weights`, `logits`, `log_probs`; (B, L) for the rest.
    `valid` marks real (non-padded) query positions; statistics and losses must
    average over valid positions only.
    """

    weights: torch.Tensor  # mixing weights actually used (B, L, D)
    valid: torch.Tensor  # bool (B, L)
    logits: torch.Tensor | None = None  # selector logits, learned mixers only
    log_probs: torch.Tensor | None = None  # log softmax(logits), with grad
    choice: torch.Tensor | None = None  # chosen depth per token (grpo, gumbel), long (B, L)
    observation: torch.Tensor | None = None  # the MLP's (detached) input, (B, L, F)

    def padded(self, before: int) -> "Selection":
        """This selection of the positions [before, L) as one of the whole sequence (B, L): the
        positions before the window are invalid (valid False, weight 0, depth 0, observation 0,
        uniform log-probabilities), so what averages over valid positions is unchanged."""
        if before == 0:
            return self

        def pad(t, value=0.0):
            if t is None:
                return None
            return F.pad(t, (0, 0, before, 0) if t.dim() == 3 else (before, 0), value=value)

        D = self.weights.shape[-1]
        return Selection(weights=pad(self.weights), valid=pad(self.valid, False), logits=pad(self.logits),
                         log_probs=pad(self.log_probs, -math.log(D)), choice=pad(self.choice, 0),
                         observation=pad(self.observation))

    @property
    def choice_log_prob(self) -> torch.Tensor | None:
        """log pi(d_t | x) of the chosen depths, (B, L), differentiable (GRPO loss)."""
        if self.log_probs is None or self.choice is None:
            return None
        return self.log_probs.gather(-1, self.choice.unsqueeze(-1)).squeeze(-1)

    @property
    def selector_entropy(self) -> torch.Tensor | None:
        """Entropy of the selector's distribution per token, (B, L), differentiable."""
        if self.log_probs is None:
            return None
        return -(self.log_probs.exp() * self.log_probs).sum(-1)


def _gumbel_like(logits: torch.Tensor, offset: int = 0) -> torch.Tensor:
    """Gumbel noise for `logits` (B, L, D). `offset` > 0: the logits are those of positions
    [offset, offset + L); the draws are those a whole-sequence forward makes there (it draws
    (B, offset + L, D) and keeps the window), so the global RNG runs as in that forward."""
    B, L, D = logits.shape
    u = torch.rand((B, offset + L, D), device=logits.device, dtype=torch.float32)[:, offset:]
    tiny = torch.finfo(torch.float32).tiny
    return -torch.log(-torch.log(u.clamp(tiny, 1.0 - 1e-7))).to(logits.dtype)


class DepthMixer(nn.Module):
    """Maps observations (B, L, D, N_STATS) [+ hidden (B, L, E)] to a `Selection`."""

    def __init__(self, cfg: MAWTConfig, hidden_size: int):
        super().__init__()
        self.depth = cfg.depth
        self.kind = cfg.mixer
        self.tau = cfg.tau
        self.fixed_index = cfg.fixed_index
        self.use_stats = cfg.selector_input in ("stats", "both")
        self.use_hidden = cfg.selector_input in ("hidden", "both")
        if cfg.learned_selector:
            n_in = (cfg.depth * N_STATS if self.use_stats else 0) + (hidden_size if self.use_hidden else 0)
            self.selector = nn.Sequential(
                nn.Linear(n_in, cfg.selector_width),
                nn.Tanh(),
                nn.Linear(cfg.selector_width, cfg.depth),
            )
            for layer in (self.selector[0], self.selector[2]):
                nn.init.normal_(layer.weight, std=0.02)  # near-uniform policy at start
                nn.init.zeros_(layer.bias)
        else:
            self.selector = None
        self.forced: torch.Tensor | None = None  # (B,) or (B, L) long: force these depths (see above)

    def _forced_choice(self, B: int, L: int, device) -> torch.Tensor:
        forced = self.forced.to(device=device, dtype=torch.long)
        if forced.dim() == 1:
            forced = forced[:, None].expand(-1, L)
        if forced.shape != (B, L):
            raise ValueError(f"DepthMixer.forced has shape {tuple(self.forced.shape)}; "
                             f"expected ({B},) or ({B}, {L})")
        if forced.numel() and not 0 <= int(forced.min()) <= int(forced.max()) < self.depth:
            raise ValueError(f"DepthMixer.forced must hold depths in 0..{self.depth - 1}")
        return forced

    @property
    def needs_stats(self) -> bool:
        """Whether the observation includes the attention statistics of every depth."""
        return self.selector is not None and self.use_stats

    def forward(
        self,
        stats: torch.Tensor | None,  # (B, L, D, N_STATS), detached
        hidden: torch.Tensor | None,  # (B, L, E)
        valid: torch.Tensor,  # bool (B, L)
        offset: int = 0,  # the positions are [offset, offset + L) of the sequence (the gumbel draws)
    ) -> Selection:
        B, L = valid.shape
        D = self.depth
        forced = self._forced_choice(B, L, valid.device) if self.forced is not None else None
        if self.selector is None and forced is not None:
            return Selection(weights=F.one_hot(forced, D).float(), valid=valid, choice=forced)
        if self.selector is None:
            # Constant weights: D=1 (any mixer), `mean`, `fixed`.
            w = torch.zeros(B, L, D, device=valid.device)
            if self.kind == "mean":
                w.fill_(1.0 / D)
            else:
                w[..., self.fixed_index if self.kind == "fixed" else 0] = 1.0
            return Selection(weights=w, valid=valid)

        dtype = self.selector[0].weight.dtype
        parts = [stats.flatten(-2).to(dtype)] if self.use_stats else []  # (B, L, D*N_STATS)
        if self.use_hidden:
            parts.append(hidden.detach().to(dtype))  # (B, L, E)
        obs = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
        logits = self.selector(obs).float()  # (B, L, D)
        log_probs = F.log_softmax(logits, dim=-1)

        if forced is not None:
            return Selection(weights=F.one_hot(forced, D).to(logits.dtype), valid=valid, logits=logits,
                             log_probs=log_probs, choice=forced, observation=obs)

        if self.kind == "softmax":
            w = torch.softmax(logits / self.tau, dim=-1)
            return Selection(weights=w, valid=valid, logits=logits, log_probs=log_probs, observation=obs)

        if self.training:
            noisy = logits + _gumbel_like(logits, offset)
        else:
            noisy = logits
        choice = noisy.argmax(-1)  # (B, L)
        hard = F.one_hot(choice, D).to(logits.dtype)
        if self.kind == "gumbel" and self.training:
            soft = torch.softmax(noisy / self.tau, dim=-1)
            w = hard + soft - soft.detach()  # straight-through: hard forward, soft gradient
        else:
            w = hard  # grpo: trained by the policy loss, not through w
        return Selection(weights=w, valid=valid, logits=logits, log_probs=log_probs, choice=choice,
                         observation=obs)
