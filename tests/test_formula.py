"""The layer against the spec's formula, written here from scratch (float64, loops over heads and depths):

    q_d = RoPE(q A_d),  P_d = softmax_k(q_d RoPE(k)^T / sqrt(hd) + mask),  O = sum_d w[b, q, d] (P_d v) B_d,  y = O W_O

from the base layer's own projections (q, k, v with their biases, o), RoPE computed from the config's
rope_theta (rotate-half convention), the causal and padding mask built from the 2D attention mask, and the
mixer's weights computed from the selector's parameters. A_d and B_d are far from the identity (init noise
0.5, so neither is symmetric nor near I): a transposed A_d, or A_d after RoPE, fails (tested below).
GQA with 2 KV heads for 4 query heads, left and right padding, the fixed, mean, softmax and grpo mixers on
the fused, materialized and routed paths.
"""

import math

import pytest
import torch

from conftest import padded_batch, patched_copy, tiny_model


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def rope(x, positions, theta):
    """x (L, hd) at integer positions: x cos + rotate_half(x) sin, frequencies theta^(-2i/hd)."""
    hd = x.shape[-1]
    inv = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    angles = positions.double()[:, None] * inv[None, :]
    cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)
    return x * cos + rotate_half(x) * sin


def weights_of(layer, x, valid_rows):
    """w (L, D) for one row x (L, E): the mixer's rule, from its parameters (selector_input: hidden)."""
    cfg, D = layer.mawt, layer.mawt.depth
    if cfg.mixer == "fixed":
        return torch.nn.functional.one_hot(torch.full((x.shape[0],), cfg.fixed_index), D).double()
    if cfg.mixer == "mean":
        return torch.full((x.shape[0], D), 1.0 / D, dtype=torch.float64)
    first, second = layer.mixer.selector[0], layer.mixer.selector[2]
    logits = torch.tanh(x @ first.weight.double().T + first.bias.double()) @ second.weight.double().T + second.bias.double()
    if cfg.mixer == "softmax":
        return torch.softmax(logits / cfg.tau, -1)
    return torch.nn.functional.one_hot(logits.argmax(-1), D).double()  # grpo at evaluation: the argmax


def spec_output(layer, x, mask, theta, transpose_a=False, a_after_rope=False):
    """The spec's y for a batch x (B, L, E) with a 2D mask (B, L), in float64."""
    B, L, _ = x.shape
    H, Hkv, hd, D = layer.num_heads, layer.num_key_value_heads, layer.head_dim, layer.mawt.depth
    lin = lambda m, t: t @ m.weight.double().T + (m.bias.double() if m.bias is not None else 0)  # noqa: E731
    A, Bt = layer.depth_query.double(), layer.depth_output.double()
    if transpose_a:
        A = A.transpose(-1, -2)
    positions = torch.arange(L)  # a forward without a cache: positions 0..L-1, padding or not
    ys = []
    for b in range(B):
        xb = x[b].double()
        q, k, v = lin(layer.q_proj, xb), lin(layer.k_proj, xb), lin(layer.v_proj, xb)
        w = weights_of(layer, xb, mask[b])
        allowed = torch.tril(torch.ones(L, L, dtype=torch.bool)) & mask[b].bool()[None, :]
        heads = []
        for h in range(H):
            g = h // (H // Hkv)  # the query head's KV head
            qh, kh, vh = q[:, h * hd:(h + 1) * hd], k[:, g * hd:(g + 1) * hd], v[:, g * hd:(g + 1) * hd]
            kr = rope(kh, positions, theta)
            out = torch.zeros(L, hd, dtype=torch.float64)
            for d in range(D):
                qd = rope(qh, positions, theta) @ A[d] if a_after_rope else rope(qh @ A[d], positions, theta)
                scores = (qd @ kr.T / math.sqrt(hd)).masked_fill(~allowed, -math.inf)
                p = torch.softmax(scores, -1)
                out = out + w[:, d:d + 1] * ((p @ vh) @ Bt[d])
            heads.append(out)
        ys.append(lin(layer.o_proj, torch.cat(heads, -1)))
    return torch.stack(ys)


def layer_run(model, batch):
    """The patched last layer's input and output in a real forward of the whole model."""
    layer = model.model.layers[-1].self_attn
    seen = {}

    def hook(module, args, kwargs, output):
        seen["x"], seen["y"] = kwargs.get("hidden_states", args[0] if args else None), output[0]

    handle = layer.register_forward_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            model(**batch)
    finally:
        handle.remove()
    return layer, seen["x"], seen["y"]


CASES = [("fixed", "fused"), ("fixed", "materialized"), ("mean", "fused"),
         ("softmax", "fused"), ("softmax", "materialized"), ("grpo", "fused"), ("grpo", "routed")]


@pytest.mark.parametrize("mixer, path", CASES, ids=[f"{m}-{p}" for m, p in CASES])
def test_the_layer_is_the_specs_formula_with_transforms_far_from_the_identity(mixer, path):
    base = tiny_model("qwen2", seed=3)
    with torch.no_grad():  # peaked attention rows (a random tiny model's are near uniform): the maps matter
        for proj in (base.model.layers[-1].self_attn.q_proj, base.model.layers[-1].self_attn.k_proj):
            proj.weight.mul_(12.0)
    cfg = dict(depth=3, mixer=mixer, path=path, init_noise=0.5, selector_input="hidden")
    if mixer == "fixed":
        cfg["fixed_index"] = 1
    torch.manual_seed(5)
    model = patched_copy(base, **cfg).eval()
    if mixer in ("softmax", "grpo"):  # a selector that is not near-uniform, so that the weights matter
        with torch.no_grad():
            for p in model.model.layers[-1].self_attn.mixer.selector.parameters():
                p.normal_(0, 1.0)
    batch = padded_batch()
    layer, x, y = layer_run(model, batch)
    theta = base.config.rope_parameters["rope_theta"] if hasattr(base.config, "rope_parameters") \
        else base.config.rope_theta
    want = spec_output(layer, x, batch["attention_mask"], theta)
    rows = batch["attention_mask"].bool()  # padded query rows attend to nothing: no defined output
    scale = want[rows].abs().max()  # a tiny random model's outputs are ~1e-2: errors relative to them
    err = (y.double()[rows] - want[rows]).abs().max() / scale
    assert err < 1e-4, err  # float32 against float64
    # the test can fail: the same comparison against a transposed A_d, or A_d applied after RoPE
    for wrong in (dict(transpose_a=True), dict(a_after_rope=True)):
        bad = spec_output(layer, x, batch["attention_mask"], theta, **wrong)
        assert (y.double()[rows] - bad[rows]).abs().max() / scale > 1e-2, wrong
    if mixer in ("softmax", "grpo"):  # and the weights vary: the mixing is tested, not one constant depth
        w = weights_of(layer, x[0].double(), None)
        assert w.std(0).max() > 0.05
