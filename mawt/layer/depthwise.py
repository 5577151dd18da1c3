"""Running a model's last layers by hand: the decoder layers, the head in float32 at the
answer positions, and the last MAWT layer once per depth.

The GRPO losses (mawt/training/trainer.py) and the evaluation of what a depth choice is worth
(mawt/evaluation/worth.py) share these pieces:

* `run_layers`: decoder layers [start, stop) of a Qwen2/Mistral/Llama model, with the
  model's own masks and rotary embeddings;
* `answer_logits` / `cell_ce`: the final norm and the LM head in float32, only at the
  positions that predict an answer token. On the bf16 path the rewards of GRPO are these
  log-probabilities: computed from bf16 logits they are partly rounding noise (measured on
  the micro base in bf16 at D=4: centred rewards off by rms 0.033 nats against a median
  spread of 0.12 nats between depths, the best depth agreeing with float32 at 80% of answer
  positions; `tests/test_precision.py` checks >= 99% with this head). Only answer positions
  are projected, so the float32 logits cost (answer tokens x vocabulary), not (rows x length
  x vocabulary);
* `float32_suffix` / `upcast_suffix`: on the bf16 path the layers whose output depends on
  the depth choices (the first MAWT layer and every layer above it) run in float32, from
  float32 weights (trainable ones are float32 masters anyway; frozen ones among them are
  upcast once, a layer or two of the model). The frozen prefix below stays bf16: its
  rounding is shared by every rollout. Measured on the stand-in's geometry (2 layers, D=4,
  bf16 weights): with the head alone in float32 the best depth still disagreed with float32
  compute at ~2% of answer positions (rms 0.003 nats in the centred rewards, from the bf16
  MAWT layer); with the suffix in float32, rms 0.0003 nats and no disagreement;
* `every_depth`: the last layer (MAWT) run once per depth d with the selector forced to d,
  its attention computed once per example (`MAWTAttention.copies_per_row = D`): the outcome
  of every choice at every position, since with MAWT in the last layer a choice at t moves
  only the logits at t.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask


def run_layers(model, hidden, attention_mask, position_ids, start: int, stop: int, cells: torch.Tensor | None = None,
               window: bool = True):
    """Decoder layers [start, stop) of a Qwen2/Mistral/Llama model on `hidden` (B, L, E).

    `cells` (B, L-1), with `stop` the model's last layer: only the answer cells' final hidden
    states are wanted (what `answer_logits` projects), so the last layer's MLP block runs at those
    positions only and the result is their rows, (K, E) in row-major order (`last_layer_at`; `window`
    False: a MAWT layer's selector still at every position, for a loss that reads its choices there)."""
    inner = model.model
    kwargs = dict(config=inner.config, inputs_embeds=hidden, attention_mask=attention_mask, cache=None,
                  position_ids=position_ids)
    masks = {"full_attention": create_causal_mask(**kwargs)}
    # Qwen2 lists each layer's attention type; Llama and Mistral configs have no `layer_types`
    # (Mistral's sliding window, when set, applies to every layer)
    types = getattr(inner.config, "layer_types", None) or [
        "sliding_attention" if getattr(inner.config, "sliding_window", None) else "full_attention"
    ] * len(inner.layers)
    if "sliding_attention" in types:
        masks["sliding_attention"] = create_sliding_window_causal_mask(**kwargs)
    rope = inner.rotary_emb(hidden, position_ids)
    last = stop - 1 if cells is not None else stop
    if cells is not None and stop != len(inner.layers):
        raise ValueError(f"run_layers: cells= needs the model's last layer ({len(inner.layers)}), not stop={stop}")
    for i in range(start, last):
        hidden = inner.layers[i](hidden, attention_mask=masks[types[i]],
                                 position_embeddings=rope, position_ids=position_ids)
    if cells is not None:
        hidden = last_layer_at(inner.layers[last], hidden, masks[types[last]], rope, position_ids, cells, window)
    return hidden


def last_layer_at(layer, hidden, mask, rope, position_ids, cells: torch.Tensor, window: bool = True) -> torch.Tensor:
    """A Qwen2/Mistral/Llama decoder layer whose output is wanted only at `cells` (B, L-1): (K, E).

    transformers' decoder layer, in the same order: attention, then the MLP block at the K answer
    cells only. Nothing above the last layer reads the other positions, so their work (most of a
    GRPO step's rollouts: G copies x every position, forward and backward) was thrown away. A MAWT
    layer computes only the queries of the window [first answer cell, L) (`MAWTAttention.queries_from`):
    keys and values at every position, the selector and its draws at the window's positions (the
    same draws a whole-sequence forward makes there). Row for row the same products; the order in
    which the weight gradients sum over rows, and the shapes of the kernels, change
    (`tests/test_grpo_cost.py` compares with the whole layer)."""
    attn = layer.self_attn
    windowed = window and hasattr(attn, "queries_from")  # a MAWT layer: queries from the first answer cell on
    start = first_cell(cells) if windowed else 0
    if windowed:
        attn.queries_from = start
    try:
        h, _ = attn(hidden_states=layer.input_layernorm(hidden), attention_mask=mask,
                    position_ids=position_ids, position_embeddings=rope)
    finally:
        if windowed:
            attn.queries_from = 0
    h = (hidden[:, start:] + h)[:, :-1][cells[:, start:]]  # (K, E): position t predicts the answer token t + 1
    return h + layer.mlp(layer.post_attention_layernorm(h))


def first_cell(cells: torch.Tensor) -> int:
    """The first position of any row's answer cells (B, L-1): the query window's start (0 if none)."""
    columns = cells.any(0).nonzero()
    return int(columns[0]) if len(columns) else 0


def answer_logits(model, hidden: torch.Tensor, labels: torch.Tensor):
    """float32 logits at the answer cells: (K, V), the cells (N, L-1) and the gold tokens (K,).

    `hidden` is the last decoder layer's output, (N, L, E), or already its answer cells' rows, (K, E)
    (`run_layers(..., cells=)`). The final norm and the head run in float32 (autocast off, bf16
    weights upcast), differentiable in `hidden`."""
    cells = labels[:, 1:] != -100  # position t predicts an answer token
    h = hidden if hidden.dim() == 2 else hidden[:, :-1][cells]  # (K, E), row-major over (row, position)
    head = model.lm_head
    with torch.autocast(device_type=hidden.device.type, enabled=False):
        h = model.model.norm(h.float())
        if h.dtype != torch.float32:  # a norm whose weight casts back to its own dtype
            h = h.float()
        bias = None if getattr(head, "bias", None) is None else head.bias.float()
        logits = F.linear(h, head.weight.float(), bias)
    return logits, cells, labels[:, 1:][cells]


def cell_ce(model, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """float32 next-token cross-entropy at the answer cells, (N, L-1), 0 elsewhere (`hidden` as in
    `answer_logits`)."""
    logits, cells, gold = answer_logits(model, hidden, labels)
    out = torch.zeros(cells.shape, dtype=torch.float32, device=hidden.device)
    return out.index_put((cells,), F.cross_entropy(logits, gold, reduction="none"))


def upcast_suffix(model, start: int) -> None:
    """Decoder layers [start, n) and the final norm held in float32 (in place, parameters
    keep their identity). For the bf16 path's `float32_suffix`."""
    for module in (*model.model.layers[start:], model.model.norm):
        for p in module.parameters():
            if p.dtype != torch.float32:
                p.data = p.data.float()


@contextlib.contextmanager
def float32_suffix(hidden: torch.Tensor, enabled: bool):
    """Autocast off while the suffix runs (`enabled`: the bf16 path); yields `hidden` in float32
    then, else unchanged. The suffix's weights must be float32 (`upcast_suffix`)."""
    if not enabled:
        yield hidden
        return
    with torch.autocast(device_type=hidden.device.type, enabled=False):
        yield hidden.float()


def every_depth(model, hidden: torch.Tensor, mask: torch.Tensor, position_ids: torch.Tensor,
                cells: torch.Tensor | None = None):
    """The last decoder layer (the model's only MAWT layer) once per depth.

    `hidden` (B, L, E) enters the last layer. Returns its output for D forced copies, (B*D, L, E)
    with copy d of example b at row b*D + d, and the layer (its `last_selection` holds the policy,
    the same in every copy: take `log_probs[::D]`). With `cells` (B, L-1), only the copies' answer
    cells, (K*D', E) in the row order of `cells.repeat_interleave(D, 0)` (`run_layers`)."""
    from mawt.layer.patching import mawt_layers

    n_layers = len(model.model.layers)
    layer = mawt_layers(model)[n_layers - 1]
    B, D = hidden.shape[0], layer.mawt.depth
    rep = lambda t: t.repeat_interleave(D, dim=0)  # noqa: E731
    layer.copies_per_row = D  # attention once per example, D forced mixings
    layer.mixer.forced = torch.arange(D, device=hidden.device).repeat(B)
    try:
        out = run_layers(model, rep(hidden), rep(mask), rep(position_ids), n_layers - 1, n_layers,
                         cells=None if cells is None else rep(cells))
    finally:
        layer.copies_per_row = 1
        layer.mixer.forced = None
    return out, layer
