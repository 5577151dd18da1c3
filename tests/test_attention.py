"""MAWTAttention: identity at init, causality, KV cache, fused == materialized, capture."""

import inspect

import pytest
import torch
from conftest import FAMILIES, MIXERS, fixed_index, padded_batch, patched_copy, tiny_model

from mawt import MAWTAttention, capture, mawt_layers


def max_diff(a, b, mask=None):
    d = (a - b).abs()
    return (d[mask.bool()] if mask is not None else d).max().item()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("depth", [1, 2, 4])
@pytest.mark.parametrize("mixer", MIXERS)
def test_zero_noise_reproduces_base_logits(family, depth, mixer, batch):
    base = tiny_model(family)
    with torch.no_grad():
        ref = base(**batch).logits
    model = patched_copy(base, depth=depth, mixer=mixer, init_noise=0.0, **fixed_index(mixer, depth))
    for path in ("fused", "materialized"):
        for m in mawt_layers(model).values():
            m.mawt.path = path
        for training in (False, True):  # train mode: grpo/gumbel sample, still identical
            model.train(training)
            with torch.no_grad():
                out = model(**batch).logits
            assert torch.isfinite(out).all(), "padded rows must stay finite"
            diff = max_diff(out, ref, batch["attention_mask"])
            assert diff <= 1e-5, f"{path} train={training}: max diff {diff:.2e}"


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_identity_with_each_mask_format_and_all_layers_patched(attn, batch):
    """Eager passes an additive float mask, sdpa a bool one; left padding makes fully
    masked rows in layer 0 whose NaNs would reach every position of layer 1."""
    base = tiny_model("qwen2", attn=attn)
    with torch.no_grad():
        ref = base(**batch).logits
        model = patched_copy(base, depth=3, mixer="softmax", init_noise=0.0, layers=[0, 1])
        out = model(**batch).logits
    assert torch.isfinite(out).all()
    assert max_diff(out, ref, batch["attention_mask"]) <= 1e-5


@pytest.mark.parametrize("mixer", MIXERS)
@pytest.mark.parametrize("training", [False, True])
def test_causal_later_tokens_never_change_earlier_outputs(mixer, training):
    base = tiny_model("qwen2")
    model = patched_copy(base, depth=4, mixer=mixer, init_noise=0.2, layers=[0, 1], **fixed_index(mixer, 4))
    model.train(training)
    t = 5
    ids = padded_batch(seed=3, length=12)["input_ids"][1:2].clamp(min=3)
    changed = ids.clone()
    changed[:, t + 1 :] = torch.randint(3, 64, changed[:, t + 1 :].shape, generator=torch.Generator().manual_seed(9))
    outs, weights = [], []
    for x in (ids, changed):
        torch.manual_seed(123)  # same RNG draws for the sampling mixers
        with torch.no_grad():
            outs.append(model(input_ids=x).logits)
        weights.append(mawt_layers(model)[1].last_selection.weights)
    assert max_diff(outs[0][:, : t + 1], outs[1][:, : t + 1]) <= 1e-5
    assert torch.equal(weights[0][:, : t + 1], weights[1][:, : t + 1])
    assert max_diff(outs[0][:, t + 1 :], outs[1][:, t + 1 :]) > 1e-3, "the perturbation must matter"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mixer", ["grpo", "softmax"])
def test_greedy_generate_with_cache_equals_without(family, mixer):
    model = patched_copy(tiny_model(family), depth=4, mixer=mixer, init_noise=0.2)
    batch = padded_batch(seed=5, length=8)
    batch["input_ids"], batch["attention_mask"] = batch["input_ids"][:2], batch["attention_mask"][:2]
    kw = dict(max_new_tokens=10, do_sample=False, pad_token_id=0, eos_token_id=None)
    with torch.no_grad():
        cached = model.generate(**batch, use_cache=True, **kw)
        uncached = model.generate(**batch, use_cache=False, **kw)
    assert cached.shape == (2, 18)
    assert torch.equal(cached, uncached)


def _loss_and_grads(model, batch, seed):
    model.zero_grad()
    torch.manual_seed(seed)
    out = model(**batch).logits
    loss = (out.float().pow(2) * batch["attention_mask"][..., None]).mean()
    loss.backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("mixer", MIXERS)
def test_fused_equals_materialized_outputs_and_gradients(mixer, batch):
    base = tiny_model("qwen2")
    model = patched_copy(base, depth=4, mixer=mixer, init_noise=0.2, layers=[0, 1], query_block=3, **fixed_index(mixer, 4))
    model.train()  # grpo/gumbel sample: both paths must draw the same choices
    results = {}
    for path in ("fused", "materialized"):
        for m in mawt_layers(model).values():
            m.mawt.path = path
        results[path] = _loss_and_grads(model, batch, seed=7)
    (out_f, grads_f), (out_m, grads_m) = results["fused"], results["materialized"]
    assert max_diff(out_f, out_m, batch["attention_mask"]) <= 1e-5
    assert grads_f.keys() == grads_m.keys() and any("depth_query" in n for n in grads_f)
    worst = max((grads_f[n] - grads_m[n]).abs().max().item() for n in grads_f)
    assert worst <= 1e-5, f"max gradient difference {worst:.2e}"


def test_capture_gives_5d_rows_that_sum_to_one(batch):
    model = patched_copy(tiny_model("qwen2"), depth=3, mixer="softmax", init_noise=0.1, layers=[0, -1])
    with torch.no_grad():
        fused = model(**batch).logits
        with capture(model) as cap:
            captured_out = model(**batch).logits
    assert sorted(cap.attentions) == [0, 1]
    probs = cap.attentions[1]
    B, L = batch["input_ids"].shape
    assert probs.shape == (B, 4, L, L, 3)  # (batch, heads, q, k, depth)
    keys = batch["attention_mask"].bool()[:, None, None, :, None]
    causal = torch.ones(L, L, dtype=torch.bool).tril()[None, None, :, :, None]
    valid_q = batch["attention_mask"].bool()
    real_rows = valid_q[:, None, :, None, None]  # a padded query row is fully masked (uniform, finite)
    masked = (~(keys & causal) & real_rows).expand_as(probs)
    assert probs.masked_select(masked).abs().max() == 0, "masked keys get no weight"
    assert torch.isfinite(probs).all()
    row_sums = probs.sum(dim=3).permute(0, 2, 1, 3)[valid_q]  # (valid queries, heads, depth)
    assert torch.allclose(row_sums, torch.ones_like(row_sums), atol=1e-5)
    assert max_diff(fused, captured_out, batch["attention_mask"]) <= 1e-5
    assert all(not m.capture_attention and m.captured is None for m in mawt_layers(model).values())


def test_padded_queries_are_marked_invalid_for_the_selector(batch):
    model = patched_copy(tiny_model("qwen2"), depth=2, mixer="grpo", init_noise=0.1)
    assert not any(m.training for m in model.modules()), "patched modules follow the model's eval mode"
    with torch.no_grad():
        model(**batch)
    sel = mawt_layers(model)[1].last_selection
    assert torch.equal(sel.valid, batch["attention_mask"].bool())


@pytest.mark.parametrize("family", FAMILIES)
def test_forward_signature_matches_installed_transformers(family):
    base_attn = tiny_model(family).model.layers[0].self_attn
    ours = list(inspect.signature(MAWTAttention.forward).parameters)
    theirs = list(inspect.signature(type(base_attn).forward).parameters)
    assert ours == theirs


def test_gradient_checkpointing_gives_the_same_gradients(batch):
    base = tiny_model("qwen2")
    model = patched_copy(base, depth=2, mixer="grpo", init_noise=0.2, layers=[0, 1])
    model.train()
    _, plain = _loss_and_grads(model, batch, seed=11)
    model.activation_checkpointing_enable()
    _, ckpt = _loss_and_grads(model, batch, seed=11)
    assert plain.keys() == ckpt.keys()
    assert max((plain[n] - ckpt[n]).abs().max().item() for n in plain) <= 1e-6


def test_bfloat16_model_runs_finite(batch):
    base = tiny_model("qwen2").to(torch.bfloat16)
    model = patched_copy(base, depth=4, mixer="softmax")
    assert mawt_layers(model)[1].depth_query.dtype == torch.bfloat16
    with torch.no_grad():
        out = model(**batch).logits
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("mixer", ["grpo", "softmax"])
def test_copies_per_row_equal_running_every_rollout(mixer, batch):
    """GRPO rollouts of one example share the attention core: same outputs and gradients."""
    G = 3
    model = patched_copy(tiny_model("qwen2"), depth=4, mixer=mixer, init_noise=0.2)
    model.train()
    layer = mawt_layers(model)[1]
    x = torch.randn(3, 10, 32).repeat_interleave(G, 0)
    rope = model.model.rotary_emb(x, torch.arange(10)[None])
    mask = batch["attention_mask"].repeat_interleave(G, 0)[:, None, None, :].bool() & torch.ones(10, 10).tril().bool()
    results = []
    for groups in (1, G):
        layer.zero_grad()
        layer.copies_per_row = groups
        xi = x.clone().requires_grad_(True)
        torch.manual_seed(5)
        out, _ = layer(xi, rope, mask)
        (out.pow(2) * batch["attention_mask"].repeat_interleave(G, 0)[..., None]).sum().backward()
        # Per-row input gradients differ (q/k/v are taken from one row per group), but
        # their sum over each group, i.e. the gradient of the tensor that was repeated, is the same.
        group_grad = xi.grad.view(3, G, 10, 32).sum(1)
        grads = {n: p.grad.clone() for n, p in layer.named_parameters() if p.grad is not None}
        results.append((out.detach(), group_grad, grads, layer.last_selection.weights))
    layer.copies_per_row = 1
    (o1, g1, p1, w1), (o2, g2, p2, w2) = results
    valid = batch["attention_mask"].repeat_interleave(G, 0).bool()
    assert torch.equal(w1, w2)
    assert max_diff(o1, o2, valid) <= 1e-5 and max_diff(g1, g2) <= 1e-5
    assert p1.keys() == p2.keys() and "depth_query" in p1
    assert max((p1[n] - p2[n]).abs().max().item() for n in p1) <= 1e-5


@pytest.mark.parametrize("depth, mixer", [(1, "fixed"), (4, "softmax")])
def test_head_gate_keeps_the_base_at_init_is_causal_and_trains(depth, mixer, batch, tmp_path):
    """The `gated` baseline (headwise output gate, Qiu et al. 2025): identity at init,
    causal once trained away from it, saved and loaded, and trained by freeze('last')."""
    from mawt import freeze, load_model

    base = tiny_model("qwen2")
    with torch.no_grad():
        ref = base(**batch).logits
    model = patched_copy(base, depth=depth, mixer=mixer, init_noise=0.0, gate="head")
    layer = mawt_layers(model)[1]
    assert layer.output_gate is not None and layer.output_gate.out_features == base.config.num_attention_heads
    with torch.no_grad():
        out = model(**batch).logits
    real = batch["attention_mask"].bool()
    assert (out - ref)[real].abs().max().item() <= 1e-5
    n_gate = sum(p.numel() for p in layer.output_gate.parameters())
    assert n_gate == (base.config.hidden_size + 1) * base.config.num_attention_heads
    trainable = freeze(model, "last")
    assert all(p.requires_grad for p in layer.output_gate.parameters())
    assert trainable == freeze(patched_copy(base, depth=depth, mixer=mixer, init_noise=0.0), "last") + n_gate

    with torch.no_grad():  # a trained gate: outputs move, later tokens still never reach earlier ones
        layer.output_gate.weight.normal_(std=0.5)
    ids = torch.randint(3, 64, (1, 12))
    changed = ids.clone()
    changed[0, 7:] = torch.randint(3, 64, (5,))
    with torch.no_grad():
        a, b = model(input_ids=ids).logits, model(input_ids=changed).logits
        moved = model(**batch).logits
    assert (moved - ref)[real].abs().max().item() > 1e-3
    assert torch.allclose(a[0, :7], b[0, :7], atol=1e-6)
    model.save_pretrained(tmp_path)
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path).eval()(**batch).logits, moved)


def test_gate_value_is_checked():
    from mawt import MAWTConfig

    with pytest.raises(ValueError, match="mawt.gate='elementwise' is invalid: allowed values are none, head"):
        MAWTConfig(gate="elementwise")
