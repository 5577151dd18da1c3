"""How far a MAWT layer's depths moved apart: the `divergence` record of heldout.json.

A depth choice can only be worth something if the depths compute different things. Two numbers
tell "the depths never diverged" from "they diverged and the choice did not help" (read beside
the `worth` record, mawt/evaluation/worth.py), both for the last patched layer (the one whose
choice `worth` scores) and only with D >= 2:

- `jsd_bits`: the mean pairwise Jensen-Shannon divergence between the D attention maps' rows,
  over every pair d < d', head, and answer-predicting position of the first `DIVERGENCE_ITEMS`
  held-out items (collated as the teacher-forced pass's first batch of `DIVERGENCE_BATCH`, so its
  input to the last layer is reused; ~100 positions x heads on the micro setup) (the rows of P[b, h, q, :, d], the spec's 5D tensor, at the positions whose
  output predicts an answer token). In bits: 0 for identical rows, 1 for rows on disjoint keys.
  JSD(p, q) = H((p + q) / 2) - (H(p) + H(q)) / 2 (Lin 1991, "Divergence measures based on the
  Shannon entropy").
- `distance_query`, `distance_output`: the relative distance between the depths' transforms,
  the mean over ordered pairs d != d' of ||A_d - A_d'||_F / ||A_d||_F (A: `depth_query`), and the
  same for B (`depth_output`). 0 when every depth is the same map. The init is
  I + N(0, init_noise^2) per entry, so an untrained layer sits near init_noise * sqrt(2 hd)
  (hd the head dim: 0.08 on the micro base at init_noise 0.01).

The maps come from the materialized path (`mawt.layer.patching.capture`, equal to the fused
path's to 1e-5), on the last layer only when the teacher-forced pass handed over its input.
"""

from __future__ import annotations

import itertools
import math

import torch

from mawt.data.prompts import AnswerCollator, encode_example
from mawt.layer.depthwise import run_layers
from mawt.layer.patching import capture, mawt_layers

DIVERGENCE_BATCH = 64  # rows collated together: the micro eval batch (eval.batch_size)
DIVERGENCE_ITEMS = 16  # of them, the items whose attention rows are compared (the layer at every position)


def transform_distance(weights: torch.Tensor) -> float:
    """Mean over ordered pairs d != d' of ||W_d - W_d'||_F / ||W_d||_F, for W of shape (D, n, n). A zero W_d
    (a planted silent depth, `mawt.plant`) is no reference: its pairs are left out, so a zero depth against
    any other reads 1.0, not inf; NaN when every W_d is zero."""
    w = weights.detach().double()
    norms = [float(x.norm()) for x in w]
    pairs = [(d, e) for d, e in itertools.permutations(range(w.shape[0]), 2) if norms[d] > 0]
    if not pairs:
        return float("nan")
    return sum(float((w[d] - w[e]).norm()) / norms[d] for d, e in pairs) / len(pairs)


def _entropy_bits(x: torch.Tensor) -> torch.Tensor:
    return -torch.special.xlogy(x, x).sum(-1) / math.log(2)  # over the last axis (keys)


def pairwise_jsd_bits(rows: torch.Tensor) -> torch.Tensor:
    """rows (N, K, D): N distributions over K keys for each of D depths -> (N,) the mean JSD in
    bits over the D(D-1)/2 pairs of depths."""
    p = rows.double()
    pairs = list(itertools.combinations(range(p.shape[-1]), 2))
    out = torch.zeros(p.shape[0], dtype=torch.float64, device=p.device)
    for d, e in pairs:
        a, b = p[..., d], p[..., e]
        out += _entropy_bits((a + b) / 2) - (_entropy_bits(a) + _entropy_bits(b)) / 2
    return out / len(pairs)


def applies(model) -> bool:
    layers = mawt_layers(model)
    return bool(layers) and layers[max(layers)].mawt.depth >= 2


@torch.no_grad()
def depth_divergence(model, tokenizer, rows: list[dict], max_length: int, prefix: torch.Tensor | None = None
                     ) -> dict | None:
    """The `divergence` record (module docstring) on the first DIVERGENCE_ITEMS rows; None when it
    does not apply. `prefix`: the first DIVERGENCE_BATCH rows' input to the last decoder layer,
    collated as here (the teacher-forced pass's first batch when eval.batch_size is that)."""
    if not applies(model):
        return None
    model.eval()
    layers = mawt_layers(model)
    index = max(layers)
    layer = layers[index]
    examples = [encode_example(tokenizer, r, max_length, "eval.max_length", j)
                for j, r in enumerate(rows[:DIVERGENCE_BATCH])]
    collated = AnswerCollator(tokenizer.pad_token_id)(examples)
    keep = min(DIVERGENCE_ITEMS, len(examples))
    if prefix is not None:
        prefix = prefix[:keep] if prefix.shape[:2] == collated["input_ids"].shape else None
    batch = {k: v[:keep].to(model.device) for k, v in collated.items()}
    ids, mask = batch["input_ids"], batch["attention_mask"]
    position_ids = torch.arange(ids.shape[1], device=ids.device)[None].expand_as(ids)
    n_layers = len(model.model.layers)
    with capture(model) as cap:
        if prefix is not None and index == n_layers - 1:
            run_layers(model, prefix, mask, position_ids, n_layers - 1, n_layers)
        else:
            model(input_ids=ids, attention_mask=mask)
    maps = cap.attentions[index]  # (B, H, L, L, D)
    cells = torch.nn.functional.pad(batch["labels"][:, 1:] != -100, (0, 1))  # position t predicts t + 1
    rows_at = maps.permute(0, 2, 1, 3, 4)[cells]  # (cells, H, L, D)
    jsd = pairwise_jsd_bits(rows_at.reshape(-1, *rows_at.shape[-2:]))
    return {"jsd_bits": float(jsd.mean()), "distance_query": transform_distance(layer.depth_query),
            "distance_output": transform_distance(layer.depth_output), "items": keep,
            "layer": index}
