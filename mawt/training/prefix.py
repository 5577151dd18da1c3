"""The frozen prefix of a training step: the input embeddings and the decoder layers below the first
trainable one, which no step changes.

A training example passes through them once per epoch (the micro setup: ~5 times in a run), and
each time they give the same output, so `FrozenPrefix` computes each example's prefix once and
keeps it. It computes it **alone**: the example's own tokens (the collator pads on the right, so
they are the row's first `mask.sum()` positions), no padding, in a batch of one. What a row's
prefix holds is then a function of the example only, not of the batch it came in, so a resumed
run, a run with another batch order and an uninterrupted one read the same values, bit for bit. At
the padded positions it holds zeros: they are keys no real query may attend to (the mask), and
queries whose outputs nothing reads.

It applies when nothing in the prefix is random or trainable: no dropout in its layers, and the
layers frozen (`first_trainable_layer`). Otherwise, and for rows that are not right-padded, the
prefix is computed on the batch, as before. Memory: one (tokens, hidden) tensor per distinct
training example, on the model's device (the micro setup: 300 x ~45 x 128 floats, 7 MB; the paper
setup's ~600 puzzles x ~200 tokens x 1536 in bf16, ~0.4 GB). `train.reuse_prefix: false` turns it off
(and the once-per-step reuse of the GRPO rollouts with it), the reference the tests compare with.

The runs of one process (a workflow batch: the seeds of one config, mawt/training/batch.py) share what
they keep through a `PrefixStore`: a run reads another run's prefix of an example only where its frozen
state is the same bytes (`frozen_state`: the config, and every parameter and buffer of the embeddings,
of the layers [0, split) and of the rotary embedding), and since each prefix is the example's alone,
it is the value the run would have computed itself.
"""

from __future__ import annotations

import hashlib
from itertools import chain

import torch

from mawt.layer.depthwise import run_layers


def first_trainable_layer(model) -> int:
    """Index of the first decoder layer with a trainable parameter (0 if embeddings train)."""
    inner = model.model
    if any(p.requires_grad for p in inner.embed_tokens.parameters()):
        return 0
    for i, layer in enumerate(inner.layers):
        if any(p.requires_grad for p in layer.parameters()):
            return i
    return len(inner.layers)


def embed(model, ids: torch.Tensor) -> torch.Tensor:
    """The input embeddings, with grad only if they train."""
    frozen_embed = not any(p.requires_grad for p in model.model.embed_tokens.parameters())
    with torch.set_grad_enabled(not frozen_embed):
        return model.model.embed_tokens(ids)


def _has_dropout(model) -> bool:
    """Whether the decoder layers draw dropout in training (Qwen2 / Mistral / Llama: attention only)."""
    return float(getattr(model.model.config, "attention_dropout", 0.0) or 0.0) > 0


def frozen_state(model, split: int) -> bytes:
    """A digest of everything the layers [0, split) compute from: the model's config, and the dtype,
    shape, device and bytes of every parameter and buffer of the embeddings, of those layers and of the
    rotary embedding (its non-persistent inv_freq included). Read once per run (the paper setup's
    frozen 27 layers: ~3 GB of bf16, a few seconds against hours of training)."""
    inner = model.model
    modules = [("embed", inner.embed_tokens), ("rotary", getattr(inner, "rotary_emb", None))]
    modules += [(f"layers.{i}", inner.layers[i]) for i in range(split)]
    digest = hashlib.blake2b(model.config.to_json_string(use_diff=False).encode(), digest_size=20)
    for where, module in modules:
        if module is None:
            continue
        for name, t in chain(module.named_parameters(), module.named_buffers()):
            digest.update(f"{where}.{name}:{t.dtype}:{tuple(t.shape)}:{t.device}".encode())
            digest.update(t.detach().reshape(-1).contiguous().cpu().view(torch.uint8).numpy().tobytes())
    return digest.digest()


class PrefixStore:
    """Kept prefixes shared by the runs of one process, one table per frozen state (module docstring)."""

    def __init__(self):
        self.by_state: dict[bytes, dict[bytes, torch.Tensor]] = {}

    def kept_for(self, model, split: int) -> dict[bytes, torch.Tensor]:
        return self.by_state.setdefault(frozen_state(model, split), {})


class FrozenPrefix:
    """`__call__(model, ids, mask, position_ids, split)`: the input to layer `split` (B, L, E), layers
    [0, split) frozen and run without grad (module docstring). `enabled` False: always on the batch.
    `store`: the process's shared prefixes (None: this instance's own)."""

    def __init__(self, enabled: bool = True, store: PrefixStore | None = None):
        self.enabled = enabled
        self.store = store
        self.kept: dict[bytes, torch.Tensor] = {}  # an example's tokens -> its prefix (n, E)
        self._kept_of: tuple[int, int] | None = None  # (id(model), split) that `kept` belongs to (with a store)
        self.computed = 0  # how many examples were run alone here (tests count them)

    def __call__(self, model, ids, mask, position_ids, split: int) -> torch.Tensor:
        if split == 0:
            return embed(model, ids)
        lengths = mask.sum(1)
        right_padded = bool((mask == (torch.arange(ids.shape[1], device=ids.device)[None] < lengths[:, None])).all())
        with torch.no_grad():
            if not (self.enabled and right_padded and model.training) or _has_dropout(model):
                return run_layers(model, model.model.embed_tokens(ids), mask, position_ids, 0, split)
            if self.store is not None and self._kept_of != (id(model), split):
                self.kept, self._kept_of = self.store.kept_for(model, split), (id(model), split)
            rows = [self._example(model, ids[b, : int(n)], split) for b, n in enumerate(lengths.tolist())]
            out = rows[0].new_zeros(ids.shape[0], ids.shape[1], rows[0].shape[-1])
            for b, row in enumerate(rows):
                out[b, : row.shape[0]] = row
        return out

    def _example(self, model, tokens: torch.Tensor, split: int) -> torch.Tensor:
        key = tokens.cpu().numpy().tobytes()
        if key not in self.kept:
            n = tokens.shape[0]
            one = tokens[None]
            position_ids = torch.arange(n, device=tokens.device)[None]
            hidden = run_layers(model, model.model.embed_tokens(one), torch.ones_like(one), position_ids, 0, split)
            self.kept[key] = hidden[0]
            self.computed += 1
        return self.kept[key]
