"""Selection statistics: how the MAWT layers' selectors chose depths in their last forward.

One function, `selection_stats`, for the training log (mawt/training/trainer.py: per batch) and
the held-out evaluation (mawt/evaluation/evaluate.py: over every held-out item). Its numbers:

  depth_usage_<d>   the mean mixing weight of depth d; with `policy`, the mean pi(d) instead
                    (exact credit evaluates every depth, so nothing is sampled)
  selector_entropy  the mean entropy of the selector's distribution (learned selectors only)

over the positions asked for (default: each selection's valid ones), then averaged over the
MAWT layers (the entropy over those with a learned selector). Two weightings of the positions:

  per row (default, the training log): the mean over a row's positions, then over the rows;
      every row of the batch weighs the same (a row without positions counts as 0).
  pooled (the held-out statistics): sums over the positions, added up over batches
      (`SelectionStats + SelectionStats`) and divided by the number of positions at the end
      (`as_dict`); every position weighs the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mawt.layer.mixers import Selection
from mawt.layer.patching import mawt_layers


@dataclass
class SelectionStats:
    usage: torch.Tensor  # (D,): means (per row), or sums over positions (pooled)
    entropy: torch.Tensor | None  # (): the same; None without a learned selector
    positions: int | None = None  # pooled: how many positions the sums run over; None: already means

    def __add__(self, other: SelectionStats) -> SelectionStats:
        """Pooled sums of two batches (`self` first, as the evaluation accumulates them)."""
        if other.entropy is None:
            entropy = self.entropy
        else:
            entropy = other.entropy if self.entropy is None else self.entropy + other.entropy
        return SelectionStats(self.usage + other.usage, entropy, self.positions + other.positions)

    def as_dict(self) -> dict[str, float]:
        """{depth_usage_<d>, selector_entropy}: the logged and recorded keys ({} over no positions)."""
        if self.positions == 0:
            return {}
        mean = (lambda t: t) if self.positions is None else (lambda t: t / self.positions)  # noqa: E731
        out = {f"depth_usage_{d}": float(mean(u)) for d, u in enumerate(self.usage)}
        if self.entropy is not None:
            out["selector_entropy"] = float(mean(self.entropy))
        return out


def last_selections(model) -> list[Selection]:
    """The MAWT layers' `last_selection`s, in layer order (those that ran)."""
    return [m.last_selection for m in mawt_layers(model).values() if m.last_selection is not None]


def _row_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the last dimension where `mask` (the ops of mawt.training.grpo.masked_mean)."""
    mask = mask.to(x.dtype)
    return (x * mask).sum(-1) / mask.sum(-1).clamp_min(1.0)


@torch.no_grad()
def selection_stats(selections: list[Selection], positions: torch.Tensor | None = None, *, policy: bool = False,
                    pooled: bool = False) -> SelectionStats | None:
    """Depth usage and selector entropy of `selections` (module docstring); None without any.

    positions: bool (B, L), the positions counted (default: each selection's `valid`).
    policy: usage from pi = exp(log_probs) instead of the mixing weights used.
    pooled: sums over the positions (with their count) instead of per-row means."""
    if not selections:
        return None
    usages, entropies = [], []
    for s in selections:
        mask = s.valid if positions is None else positions  # (B, L)
        weights = s.log_probs.float().exp() if policy else s.weights.float()  # (B, L, D)
        entropy = s.selector_entropy  # (B, L) or None
        if pooled:
            usages.append((weights * mask.float()[..., None]).sum((0, 1)))
            if entropy is not None:
                entropies.append((entropy.float() * mask.float()).sum())
        else:
            usages.append(_row_mean(weights.transpose(1, 2), mask[:, None]).mean(0))
            if entropy is not None:
                entropies.append(_row_mean(entropy.float(), mask).mean())
    usage = torch.stack(usages).mean(0)  # (D,)
    entropy = torch.stack(entropies).mean() if entropies else None
    if not pooled:
        return SelectionStats(usage, entropy)
    counted = selections[0].valid if positions is None else positions
    return SelectionStats(usage, entropy, int(counted.float().sum()))
