"""An achievable reference for the depth policy: the `probe` of the `worth` record.

The per-position oracle (mawt/evaluation/worth.py) picks, at each answer-predicting position, the
depth with the lowest cross-entropy on the gold token. Over D near-copies of one map that minimum is
below every single depth even when nothing that sees only the input could find it: part of the
oracle's gap may be selection noise. The probe asks what an input-only policy can get:

- features: the selector's own input at the position (`Selection.observation`: each depth's
  attention statistics, or the query's hidden state, or both), standardised;
- target: the per-position best depth (argmin over d of CE_t(d); the lowest index on ties);
- a multinomial logistic regression (L2 penalty `PROBE_L2` on the weights, L-BFGS in float64,
  deterministic), **cross-fitted**: fit on the even-numbered held-out items, score the odd ones,
  then the other way round, so no item is scored by a probe that saw it;
- scored like the other policies, with its greedy choice: `loss_probe` (mean over items of the mean
  CE at the chosen depths) and `em_probe` (every chosen depth's argmax is the gold token).

If the probe is no better than uniform choices, the oracle's gap is not predictable from what the
selector sees, and the report says so. With one target class in a half, that class is predicted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PROBE_L2 = 1e-3  # on the standardised features' weights (mean cross-entropy + PROBE_L2 * ||W||^2)


def fit(x: torch.Tensor, y: torch.Tensor, classes: int, l2: float = PROBE_L2):
    """A multinomial logistic regression of y (N,) on x (N, F); returns predict(x') -> (N',) long."""
    x = x.double()
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-12)
    present = torch.unique(y)
    if len(present) == 1:
        only = int(present[0])
        return lambda new: torch.full((new.shape[0],), only, dtype=torch.long)
    z = (x - mean) / std
    weight = torch.zeros(x.shape[1], classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=500, tolerance_grad=1e-10, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z @ weight + bias, y) + l2 * (weight ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w, b = weight.detach(), bias.detach()
    return lambda new: (((new.double() - mean) / std) @ w + b).argmax(-1)


def cross_fit(features: list[torch.Tensor], ce: list[torch.Tensor], ok: list[torch.Tensor]) -> dict:
    """Per held-out item i: its answer cells' features (n_i, F), CE (n_i, D) and strict top-1 (n_i, D).
    Returns {"loss_probe", "em_probe"}: means over items of the cross-fitted probe's greedy choices."""
    D = ce[0].shape[1]
    halves = [list(range(0, len(ce), 2)), list(range(1, len(ce), 2))]
    losses, ems = [0.0] * len(ce), [0.0] * len(ce)
    for train, score in (halves, halves[::-1]):
        if not score:
            continue
        x = torch.cat([features[i] for i in train]) if train else torch.zeros(0, features[0].shape[1])
        y = torch.cat([ce[i].argmin(1) for i in train]) if train else torch.zeros(0, dtype=torch.long)
        predict = fit(x, y, D) if len(y) else (lambda new: torch.zeros(new.shape[0], dtype=torch.long))
        for i in score:
            choice = predict(features[i])[:, None]
            losses[i] = float(ce[i].double().gather(1, choice).mean())
            ems[i] = float(ok[i].gather(1, choice).all())
    return {"loss_probe": sum(losses) / len(ce), "em_probe": sum(ems) / len(ce)}
