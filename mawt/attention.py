"""The MAWT attention layer: D attention-weight maps per head, mixed per token.

For depth slice d (MAWT_SPEC section 1), reusing the base layer's projections:

    q_d = RoPE(q A_d)                              A_d: (head_dim, head_dim), before RoPE
    P_d = softmax_k(q_d RoPE(k)^T / sqrt(head_dim) + mask)
    O_d = (P_d v) B_d                              B_d: (head_dim, head_dim)
    O   = sum_d w[b, q, d] O_d,   y = O W_O        w: the selector's weights

so the attention tensor is 5D: P[b, h, q, k, d]. The KV cache stores the base
model's plain RoPE(k) and v, because B_d acts after attention.

Two paths that agree to 1e-5 in float32 (tests/test_attention.py):
  * `materialized` builds P (B, H, Lq, Lk, D): the readable reference, used for
    capture and plots.
  * `fused` (default) makes ONE scaled_dot_product_attention call for all slices:
    the D slices ride in the head dimension (head h*D + d) and GQA maps them to
    the base model's KV head h // n_rep, so K and V are never repeated. The
    selector statistics are computed without grad in query blocks of
    `query_block` rows, so P is never held whole.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch import nn

from .config import MAWTConfig
from .selectors import N_STATS, DepthSelector

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
    of each slice's attention row, averaged over heads.

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


class MAWTAttention(nn.Module):
    """Drop-in replacement for a Qwen2 / Mistral / Llama self-attention module.

    Same forward contract as the installed transformers attention:
    `forward(hidden_states, position_embeddings, attention_mask, cache=None, **kwargs)
    -> (attn_output, attn_weights)`; attn_weights is always None (use `mawt.capture`).
    """

    def __init__(self, base: nn.Module, cfg: MAWTConfig):
        super().__init__()
        config = base.config
        self.config = config
        self.layer_idx = base.layer_idx
        self.head_dim = base.head_dim
        self.num_heads = config.num_attention_heads
        self.num_key_value_heads = config.num_key_value_heads
        self.num_key_value_groups = base.num_key_value_groups
        self.scaling = base.scaling
        self.attention_dropout = base.attention_dropout
        self.is_causal = True
        self.sliding_window = getattr(base, "sliding_window", None)  # enforced by the mask
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (
            base.q_proj, base.k_proj, base.v_proj, base.o_proj
        )
        # The base family's own RoPE function (rotate_half convention and all).
        self._apply_rope = sys.modules[type(base).__module__].apply_rotary_pos_emb

        self.mawt = cfg
        weight = base.q_proj.weight
        D, hd = cfg.depth, self.head_dim
        eye = torch.eye(hd, device=weight.device, dtype=torch.float32).expand(D, hd, hd)

        def near_identity() -> nn.Parameter:
            noise = torch.randn(D, hd, hd, device=weight.device) * cfg.init_noise
            return nn.Parameter((eye + noise).to(weight.dtype))

        self.depth_query = near_identity()  # A_d, (D, hd, hd)
        self.depth_output = near_identity()  # B_d, (D, hd, hd)
        self.selector = DepthSelector(cfg, config.hidden_size).to(weight.device, weight.dtype)
        # Headwise output gate (cfg.gate == "head"): zero init, so 2*sigmoid(0) = 1 keeps the base model.
        self.output_gate = None
        if cfg.gate == "head":
            self.output_gate = nn.Linear(config.hidden_size, self.num_heads, device=weight.device, dtype=weight.dtype)
            nn.init.zeros_(self.output_gate.weight)
            nn.init.zeros_(self.output_gate.bias)

        # >1 while a GRPO step feeds G identical copies of each row (set by the
        # trainer for the first MAWT layer of the trainable suffix): the attention
        # core then runs once per group and only the mixing sees all G rollouts.
        self.shared_groups = 1
        self.capture_attention = False  # set by mawt.capture()
        self.captured: torch.Tensor | None = None  # (B, H, Lq, Lk, D) of the last forward
        self.last_selection = None  # mawt.selectors.Selection of the last forward

    def extra_repr(self) -> str:
        c = self.mawt
        return f"layer={self.layer_idx}, depth={c.depth}, mixer={c.mixer}, path={c.path}, gate={c.gate}"

    def mawt_parameters(self) -> list[nn.Parameter]:
        """Parameters MAWT adds on top of the base layer (depth transforms + selector)."""
        gate = list(self.output_gate.parameters()) if self.output_gate is not None else []
        return [self.depth_query, self.depth_output, *self.selector.parameters(), *gate]

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None,
        cache=None,
        **kwargs,
    ) -> tuple[torch.Tensor, None]:
        if cache is None:
            cache = kwargs.pop("past_key_values", None)  # pre-5.x keyword
        G = self.shared_groups
        if G > 1:  # rows come in groups of G identical copies: attend once per group
            if cache is not None or hidden_states.shape[0] % G:
                raise ValueError("MAWTAttention.shared_groups needs a batch of whole groups and no cache")
            full_hidden = hidden_states
            hidden_states = hidden_states[::G]
            attention_mask = attention_mask[::G] if attention_mask is not None else None
            position_embeddings = tuple(t[::G] if t.shape[0] > 1 else t for t in position_embeddings)
        B, L, _ = hidden_states.shape
        H, D, hd = self.num_heads, self.mawt.depth, self.head_dim

        q = self.q_proj(hidden_states).view(B, L, -1, hd).transpose(1, 2)  # (B, H, L, hd)
        k = self.k_proj(hidden_states).view(B, L, -1, hd).transpose(1, 2)  # (B, Hkv, L, hd)
        v = self.v_proj(hidden_states).view(B, L, -1, hd).transpose(1, 2)  # (B, Hkv, L, hd)
        # A_d before RoPE keeps relative-position behaviour.
        q = torch.matmul(q.unsqueeze(2), self.depth_query)  # (B, H, D, L, hd)
        q = q.reshape(B, H * D, L, hd)  # head h*D + d
        cos, sin = position_embeddings
        q, k = self._apply_rope(q, k, cos, sin)

        past = cache.get_seq_length(self.layer_idx) if cache is not None else 0
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx, kwargs=kwargs)  # plain k, v: a standard cache
        k_len = k.shape[2]
        offset = min(past, k_len - L)
        allowed = allowed_keys(attention_mask, B, L, k_len, offset, q.device)  # (B, 1, L, Lk)
        valid = query_valid(allowed, offset)  # (B, L)
        dropout = self.attention_dropout if self.training else 0.0

        if self.mawt.path == "materialized" or self.capture_attention:
            attn, stats, probs = self._materialized(q, k, v, allowed, dropout)
            if self.capture_attention:
                self.captured = probs.detach()
        else:
            attn, stats = self._fused(q, k, v, attention_mask, allowed, offset, dropout)
        if stats is not None:
            stats = stats.masked_fill(~valid[..., None, None], 0.0)  # padded queries: no signal
        out = torch.matmul(attn.view(B, H, D, L, hd), self.depth_output)  # O_d: (B, H, D, L, hd)
        if G > 1:  # back to one row per rollout: each samples its own depth choices
            out, valid, hidden_states = out.repeat_interleave(G, 0), valid.repeat_interleave(G, 0), full_hidden
            stats = stats.repeat_interleave(G, 0) if stats is not None else None
            B = B * G

        sel = self.selector(stats, hidden_states, valid)
        self.last_selection = sel
        out = torch.einsum("bhdle,bld->blhe", out, sel.weights.to(out.dtype))  # (B, L, H, hd)
        if self.output_gate is not None:  # one gate per head, from the query's own hidden state (causal)
            out = out * (2.0 * torch.sigmoid(self.output_gate(hidden_states))).unsqueeze(-1)  # (B, L, H, 1)
        out = self.o_proj(out.reshape(B, L, H * hd))
        return out, None

    def _scores(self, q: torch.Tensor, k: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """Masked float32 scores (B, H*D, Lb, Lk) without repeating the KV heads."""
        B, HD, Lb, hd = q.shape
        Hkv = k.shape[1]
        s = torch.matmul(q.view(B, Hkv, HD // Hkv, Lb, hd), k.unsqueeze(2).transpose(-1, -2))
        s = s.view(B, HD, Lb, -1).float() * self.scaling
        return s.masked_fill(~allowed, MASK_MIN)

    def _materialized(self, q, k, v, allowed, dropout):
        """Reference path: the full 5D attention tensor."""
        B, HD, L, hd = q.shape
        H, D, Hkv = self.num_heads, self.mawt.depth, k.shape[1]
        scores = self._scores(q, k, allowed)  # (B, H*D, L, Lk)
        probs = torch.softmax(scores, dim=-1).to(q.dtype)
        stats = row_stats(scores.detach().clone(), allowed, H) if self.selector.needs_stats else None
        dropped = F.dropout(probs, p=dropout) if dropout > 0 else probs
        attn = torch.matmul(dropped.view(B, Hkv, HD // Hkv, L, -1), v.unsqueeze(2))
        probs5 = probs.view(B, H, D, L, -1).permute(0, 1, 3, 4, 2)  # (B, H, Lq, Lk, D)
        return attn.view(B, HD, L, hd), stats, probs5

    def _fused(self, q, k, v, attention_mask, allowed, offset, dropout):
        """Fast path: one SDPA call for all slices; statistics in query blocks."""
        B, HD, L, _ = q.shape
        stats = None
        if self.selector.needs_stats:
            step = self.mawt.query_block
            blocks = []
            with torch.no_grad():
                for i in range(0, L, step):
                    # Causal: no query of this block sees a key past its last row.
                    horizon = min(k.shape[2], offset + i + step)
                    block_allowed = allowed[:, :, i : i + step, :horizon]
                    scores = self._scores(q[:, :, i : i + step], k[:, :, :horizon], block_allowed)
                    blocks.append(row_stats(scores, block_allowed, self.num_heads))
            stats = torch.cat(blocks, dim=1)  # (B, L, D, N_STATS)
        gqa = HD != k.shape[1]
        if attention_mask is None and L == k.shape[2]:
            # No padding, square causal: let SDPA pick its causal kernel, no mask tensor.
            attn = F.scaled_dot_product_attention(
                q, k, v, dropout_p=dropout, is_causal=L > 1, scale=self.scaling, enable_gqa=gqa
            )
        else:
            bias = torch.zeros(allowed.shape, dtype=q.dtype, device=q.device)
            bias = bias.masked_fill(~allowed, torch.finfo(q.dtype).min)
            attn = F.scaled_dot_product_attention(
                q, k, v, attn_mask=bias, dropout_p=dropout, scale=self.scaling, enable_gqa=gqa
            )
        return attn, stats  # attn: (B, H*D, L, hd)
