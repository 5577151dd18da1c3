"""The MAWT attention layer: D attention-weight maps per head, mixed per token.

For depth d (MAWT_SPEC section 1), reusing the base layer's projections:

    q_d = RoPE(q A_d)                              A_d: (head_dim, head_dim), before RoPE
    P_d = softmax_k(q_d RoPE(k)^T / sqrt(head_dim) + mask)
    O_d = (P_d v) B_d                              B_d: (head_dim, head_dim)
    O   = sum_d w[b, q, d] O_d,   y = O W_O        w: the selector's weights

so the attention tensor is 5D: P[b, h, q, k, d]. The KV cache stores the base
model's plain RoPE(k) and v, because B_d acts after attention.

Three paths that agree to 1e-5 in float32 (tests/test_attention.py, tests/test_routed.py):
  * `materialized` builds P (B, H, Lq, Lk, D): the readable reference, used for
    capture and plots.
  * `fused` (what `path: auto` takes where `routed` does not apply) makes ONE
    scaled_dot_product_attention call for all depths:
    the D depths ride in the head dimension (head h*D + d) and GQA maps them to
    the base model's KV head h // n_rep, so K and V are never repeated. The
    selector statistics are computed without grad in query blocks of
    `query_block` rows, so P is never held whole.
  * `routed` when the selector reads only the hidden state and the choice is hard
    (grpo; gumbel at evaluation): the choice d(t) is known before attention, so row
    t needs only q_{d(t)},t = RoPE(q_t A_{d(t)}), one SDPA over the H base heads,
    and B_{d(t)} on its output: one attention instead of D, the same result as the
    fused path with one-hot weights. With `copies_per_row` = G (GRPO rollouts) the G
    rollouts ride in the head dimension (head h*G + g), so K and V are computed
    once per group and never repeated.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch import nn

from mawt.layer.attention_ops import MASK_MIN, allowed_keys, per_token, query_valid, routing, row_stats
from mawt.layer.config import MAWTConfig
from mawt.layer.mixers import DepthMixer


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
        if cfg.plant == "silent":  # the planted control (mawt/layer/config.py): the last depth adds nothing
            self.depth_output.data[-1].zero_()
        self.mixer = DepthMixer(cfg, config.hidden_size).to(weight.device, weight.dtype)
        # Headwise output gate (cfg.gate == "head"): zero init, so 2*sigmoid(0) = 1 keeps the base model.
        self.output_gate = None
        if cfg.gate == "head":
            self.output_gate = nn.Linear(config.hidden_size, self.num_heads, device=weight.device, dtype=weight.dtype)
            nn.init.zeros_(self.output_gate.weight)
            nn.init.zeros_(self.output_gate.bias)

        # >1 while the batch holds each row n times in a row with identical inputs to this
        # layer: G rollouts in a GRPO step (set by the trainer for the first MAWT layer of
        # the trainable suffix) or D forced depths (mawt.layer.depthwise). The attention
        # core then runs once per row and only the mixer sees all n copies.
        self.copies_per_row = 1
        # > 0 while only the queries at positions >= queries_from are wanted (the answer window of a
        # loss that reads the last layer at the answer cells only: mawt.layer.depthwise.last_layer_at).
        # Keys and values still cover every position; the output has L - queries_from rows, and
        # `last_selection` is padded back to the whole sequence (`Selection.padded`).
        self.queries_from = 0
        self.capture_attention = False  # set by mawt.capture()
        self.captured: torch.Tensor | None = None  # (B, H, Lq, Lk, D) of the last forward
        self.last_selection = None  # mawt.layer.mixers.Selection of the last forward

    def extra_repr(self) -> str:
        c = self.mawt
        return f"layer={self.layer_idx}, depth={c.depth}, mixer={c.mixer}, path={c.path}, gate={c.gate}"

    def mawt_parameters(self) -> list[nn.Parameter]:
        """Parameters MAWT adds on top of the base layer (depth transforms + selector)."""
        gate = list(self.output_gate.parameters()) if self.output_gate is not None else []
        transforms = [self.depth_query, self.depth_output] if self.mawt.plant == "none" else []  # a plant: fixed
        return [*transforms, *self.mixer.parameters(), *gate]

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
        if self.routes:
            return self._routed(hidden_states, position_embeddings, attention_mask, cache, kwargs)
        G, a = self.copies_per_row, self._window(cache)
        full_hidden = hidden_states[:, a:]
        hidden_states, attention_mask, position_embeddings = self._one_per_group(
            hidden_states, attention_mask, position_embeddings, cache)  # attend once per group
        B, Lk, _ = hidden_states.shape
        L = Lk - a  # the queries: positions [a, Lk)
        H, D, hd = self.num_heads, self.mawt.depth, self.head_dim

        q = self.q_proj(hidden_states[:, a:]).view(B, L, -1, hd).transpose(1, 2)  # (B, H, L, hd)
        k = self.k_proj(hidden_states).view(B, Lk, -1, hd).transpose(1, 2)  # (B, Hkv, Lk, hd)
        v = self.v_proj(hidden_states).view(B, Lk, -1, hd).transpose(1, 2)  # (B, Hkv, Lk, hd)
        # A_d before RoPE keeps relative-position behaviour.
        q = torch.matmul(q.unsqueeze(2), self.depth_query)  # (B, H, D, L, hd)
        q = q.reshape(B, H * D, L, hd)  # head h*D + d
        cos, sin = position_embeddings
        if a:
            q, _ = self._apply_rope(q, q[:, :1], cos[:, a:], sin[:, a:])
            _, k = self._apply_rope(k, k, cos, sin)
        else:
            q, k = self._apply_rope(q, k, cos, sin)

        k, v, allowed, valid, offset = self._cached_keys(k, v, attention_mask, cache, kwargs, L)
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
        hidden_states = full_hidden  # the queries' rows, one per rollout: each samples its own depth choices
        if G > 1:
            valid = valid.repeat_interleave(G, 0)
            stats = stats.repeat_interleave(G, 0) if stats is not None else None

        sel = self.mixer(stats, hidden_states, valid, offset=a)
        self.last_selection = sel.padded(a)
        # sum_d w[b, l, d] O_d[b, h, l]: D broadcast multiply-adds, the G rollouts of a group reading its
        # one O (B, H, D, L, hd), never repeated G times
        w = sel.weights.to(out.dtype).view(B, G, 1, L, D, 1)  # (B, G, 1, L, D, 1)
        mixed = out[:, None, :, 0] * w[..., 0, :]
        for d in range(1, D):
            mixed = mixed + out[:, None, :, d] * w[..., d, :]
        B = B * G
        out = mixed.view(B, H, L, hd).transpose(1, 2)  # (B, L, H, hd)
        if self.output_gate is not None:  # one gate per head, from the query's own hidden state (causal)
            out = out * (2.0 * torch.sigmoid(self.output_gate(hidden_states))).unsqueeze(-1)  # (B, L, H, 1)
        out = self.o_proj(out.reshape(B, L, H * hd))
        return out, None

    def _one_per_group(self, hidden_states, attention_mask, position_embeddings, cache):
        """With `copies_per_row` = G > 1 the rows come in groups of G identical copies (GRPO
        rollouts): the first row of each group, its mask and its position embeddings."""
        G = self.copies_per_row
        if G == 1:
            return hidden_states, attention_mask, position_embeddings
        if cache is not None or hidden_states.shape[0] % G:
            raise ValueError("MAWTAttention.copies_per_row needs a batch of whole groups and no cache")
        return (hidden_states[::G], attention_mask[::G] if attention_mask is not None else None,
                tuple(t[::G] if t.shape[0] > 1 else t for t in position_embeddings))

    def _window(self, cache) -> int:
        """The first query position this forward computes (`queries_from`; 0 with a cache)."""
        if self.queries_from and cache is not None:
            raise ValueError("MAWTAttention.queries_from needs a whole sequence, no cache")
        return self.queries_from

    def _cached_keys(self, k, v, attention_mask, cache, kwargs, q_len: int):
        """The keys and values attended to (after the cache's update: a sliding-window cache
        returns only its window), the allowed keys (B, 1, q_len, Lk), the real queries (B, q_len)
        and the position offset of the first query (the last q_len positions are the queries)."""
        L = q_len
        past = cache.get_seq_length(self.layer_idx) if cache is not None else 0
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx, kwargs=kwargs)  # plain k, v: a standard cache
        offset = min(past, k.shape[2] - L) if cache is not None else k.shape[2] - L  # the window's start
        allowed = allowed_keys(attention_mask, k.shape[0], L, k.shape[2], offset, k.device)
        return k, v, allowed, query_valid(allowed, offset), offset

    @property
    def routes(self) -> bool:
        """This forward takes the routed path: a hard choice known before attention (`path` auto or
        routed on a routable config), not gumbel's soft training gradient, no 5D capture."""
        cfg = self.mawt
        return (cfg.path in ("auto", "routed") and cfg.routable and not self.capture_attention
                and (cfg.mixer == "grpo" or not self.training))

    def _routed(self, hidden_states, position_embeddings, attention_mask, cache, kwargs) -> tuple[torch.Tensor, None]:
        """One attention per token's chosen depth (see the module docstring)."""
        G, a = self.copies_per_row, self._window(cache)
        full_hidden = hidden_states[:, a:]
        hidden_states, attention_mask, position_embeddings = self._one_per_group(
            hidden_states, attention_mask, position_embeddings, cache)  # K, V once per group
        B, Lk, _ = hidden_states.shape
        L = Lk - a  # the queries: positions [a, Lk)
        H, hd = self.num_heads, self.head_dim
        cos, sin = position_embeddings
        k = self.k_proj(hidden_states).view(B, Lk, -1, hd).transpose(1, 2)  # (B, Hkv, Lk, hd)
        v = self.v_proj(hidden_states).view(B, Lk, -1, hd).transpose(1, 2)
        _, k = self._apply_rope(k, k, cos, sin)  # RoPE(k) now; each query's rotation waits for its depth
        k, v, allowed, valid, _ = self._cached_keys(k, v, attention_mask, cache, kwargs, L)
        sel = self.mixer(None, full_hidden, valid.repeat_interleave(G, 0) if G > 1 else valid,
                         offset=a)  # hidden only
        self.last_selection = sel.padded(a)
        cos, sin = cos[:, a:], sin[:, a:]

        q = self.q_proj(hidden_states[:, a:]).view(B, L, H, hd)
        if G > 1:
            q = q.repeat_interleave(G, 0)  # each rollout its own depths
        plan = routing(sel.choice, self.mawt.depth)  # positions by depth, for A_d and B_d
        q = per_token(q, self.depth_query, plan)  # q_t A_{d(t)}: (B*G, L, H, hd)
        q = q.view(B, G, L, H, hd).permute(0, 3, 1, 2, 4).reshape(B, H * G, L, hd)  # head h*G + g
        q, _ = self._apply_rope(q, q[:, :1], cos, sin)  # A_d before RoPE, as in the fused path
        attn = self._sdpa(q, k, v, attention_mask, allowed, self.attention_dropout if self.training else 0.0)
        out = attn.view(B, H, G, L, hd).permute(0, 2, 3, 1, 4).reshape(B * G, L, H, hd)
        out = per_token(out, self.depth_output, plan)  # O_{d(t)} B_{d(t)}
        if self.output_gate is not None:
            out = out * (2.0 * torch.sigmoid(self.output_gate(full_hidden))).unsqueeze(-1)
        return self.o_proj(out.reshape(B * G, L, H * hd)), None

    def _sdpa(self, q, k, v, attention_mask, allowed, dropout) -> torch.Tensor:
        """One SDPA call; GQA maps query head i to KV head i // (q heads / KV heads)."""
        gqa = q.shape[1] != k.shape[1]
        if attention_mask is None and q.shape[2] == k.shape[2]:
            # No padding, square causal: let SDPA pick its causal kernel, no mask tensor.
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=q.shape[2] > 1,
                                                  scale=self.scaling, enable_gqa=gqa)
        bias = torch.zeros(allowed.shape, dtype=q.dtype, device=q.device)
        bias = bias.masked_fill(~allowed, torch.finfo(q.dtype).min)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout, scale=self.scaling,
                                              enable_gqa=gqa)

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
        stats = row_stats(scores.detach().clone(), allowed, H) if self.mixer.needs_stats else None
        dropped = F.dropout(probs, p=dropout) if dropout > 0 else probs
        attn = torch.matmul(dropped.view(B, Hkv, HD // Hkv, L, -1), v.unsqueeze(2))
        probs5 = probs.view(B, H, D, L, -1).permute(0, 1, 3, 4, 2)  # (B, H, Lq, Lk, D)
        return attn.view(B, HD, L, hd), stats, probs5

    def _fused(self, q, k, v, attention_mask, allowed, offset, dropout):
        """Fast path: one SDPA call for all depths; statistics in query blocks."""
        B, HD, L, _ = q.shape
        stats = None
        if self.mixer.needs_stats:
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
        return self._sdpa(q, k, v, attention_mask, allowed, dropout), stats  # attn: (B, H*D, L, hd)
