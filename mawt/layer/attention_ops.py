"""The tensor operations of the MAWT layer (mawt/layer/attention.py): masks, the selector's
attention statistics, and the per-token depth transform of the routed path."""

from __future__ import annotations

import torch

from mawt.layer.mixers import N_STATS

# A large finite negative, as transformers uses: a fully masked row (left padding)
# gets a uniform softmax instead of NaN, and 0 * it stays finite.
MASK_MIN = torch.finfo(torch.float32).min


def allowed_keys(
    attention_mask: torch.Tensor | None, batch: int, q_len: int, k_len: int, offset: int, device
) -> torch.Tensor:
    """Normalise any mask transformers passes to a bool tensor (B, 1, Lq, Lk), True = attend.

    Accepted: None (causal), a 2D padding mask (B, Lk) (flash-attention style,
    1 = token), a 4D bool mask (sdpa) or a 4D additive float mask (eager).
    Query i sits at key position offset + i. Keys after a query are never allowed,
    whatever the mask says (the fused statistics rely on it).
    """
    q_pos = torch.arange(q_len, device=device)[:, None] + offset
    causal = torch.arange(k_len, device=device)[None, :] <= q_pos  # (Lq, Lk)
    if attention_mask is None:
        return causal[None, None].expand(batch, 1, q_len, k_len)
    if attention_mask.dim() == 2:
        pad = attention_mask[:, -k_len:].bool()  # (B, Lk)
        return causal & pad[:, None, None, :]
    if attention_mask.dim() != 4:
        raise ValueError(
            f"MAWTAttention got an attention_mask of shape {tuple(attention_mask.shape)}; "
            "expected None, (batch, keys) or (batch, 1, queries, keys)"
        )
    mask = attention_mask[..., -q_len:, :k_len]
    if mask.dtype != torch.bool:
        mask = mask > torch.finfo(mask.dtype).min / 2
    return (mask & causal).expand(batch, 1, q_len, k_len)  # causal even if the mask were not


def query_valid(allowed: torch.Tensor, offset: int) -> torch.Tensor:
    """(B, Lq) bool: a query is real iff it may attend to its own position."""
    _, _, q_len, k_len = allowed.shape
    rows = torch.arange(q_len, device=allowed.device)
    cols = (rows + offset).clamp(max=k_len - 1)
    return allowed[:, 0, rows, cols]


def row_stats(scores: torch.Tensor, allowed: torch.Tensor, heads: int) -> torch.Tensor:
    """Selector observation from masked scores.

    scores: (B, H*D, Lb, Lk) float32, masked entries = MASK_MIN (overwritten: the
    caller passes a temporary); allowed: (B, 1, Lb, Lk).
    Returns (B, Lb, D, N_STATS): normalised entropy (H / log #keys) and peak weight
    of each depth's attention row, averaged over heads.

    One exp pass: with m = max_k s, e = exp(s - m), z = sum_k e,
    H = log z - sum_k e (s - m) / z and peak = max_k P = 1 / z.
    """
    B, HD, Lb, _ = scores.shape
    shifted = scores.sub_(scores.amax(-1, keepdim=True))  # s - m, in place
    e = torch.exp(shifted)
    z = e.sum(-1)  # (B, HD, Lb)
    # elementwise, not einsum: under bf16 autocast an einsum would run in bf16, where the
    # float32 mask value MASK_MIN overflows to -inf and 0 * -inf is NaN
    entropy = torch.log(z) - (e * shifted).sum(-1) / z
    peak = z.reciprocal()
    n_keys = allowed.sum(-1).float()  # (B, 1, Lb)
    entropy = torch.where(n_keys > 1, entropy / torch.log(n_keys).clamp_min(1e-6), torch.zeros_like(entropy))
    stats = torch.stack([entropy, peak], dim=-1)  # (B, HD, Lb, N_STATS)
    stats = stats.view(B, heads, HD // heads, Lb, N_STATS).mean(1)  # (B, D, Lb, N_STATS)
    return stats.transpose(1, 2)  # (B, Lb, D, N_STATS)


def routing(choice: torch.Tensor, depth: int) -> tuple[torch.Tensor, list[int]]:
    """The positions of `choice` (N, L) sorted by their depth (stable) and how many each depth has:
    computed once per forward, shared by the query and the output transforms."""
    picked = choice.reshape(-1)
    return torch.argsort(picked, stable=True), torch.bincount(picked, minlength=depth).tolist()


def per_token(x: torch.Tensor, weights: torch.Tensor, plan: tuple[torch.Tensor, list[int]]) -> torch.Tensor:
    """x[n, t] @ weights[d(n, t)] for every row n and position t: x (N, L, H, hd), weights
    (D, hd, hd), `plan` = routing(choice, D). Each position is multiplied once, by its own depth's
    matrix: one gather into depth order, one matmul per depth on a contiguous block of rows, one scatter
    back (no (N, L, hd, hd) gather of matrices); differentiable."""
    N, L, H, hd = x.shape
    order, counts = plan
    grouped = x.reshape(N * L, H, hd).index_select(0, order)
    parts = [torch.matmul(part, weights[d].to(x.dtype))
             for d, part in enumerate(torch.split(grouped, counts)) if counts[d]]
    out = x.new_empty(N * L, H, hd).index_copy(0, order, torch.cat(parts) if len(parts) > 1 else parts[0])
    return out.view(N, L, H, hd)
