"""The routed path (mawt/layer/attention.py): with a hidden-state selector and a hard choice, each
token computes only its chosen depth, and must equal the fused path with the same one-hot
weights: outputs and gradients (float32, 1e-5), causality, the KV cache, left padding, the
three families, and the GRPO loss with its gradients."""

import copy

import pytest
import torch
from conftest import FAMILIES, padded_batch, tiny_model
from transformers import DynamicCache, TrainingArguments

from mawt import MAWTConfig, mawt_layers, patch_model
from mawt.training.runconfig import TrainConfig
from mawt.training.trainer import MAWTTrainer

TOL = dict(atol=1e-5, rtol=1e-5)


def _pair(family="qwen2", mixer="grpo", depth=4, layers=(-1,), n_layers=2, **extra):
    """The same weights twice: path routed and path fused (hidden-state selector)."""
    cfg = dict(depth=depth, mixer=mixer, selector_input="hidden", init_noise=0.3, layers=list(layers), **extra)
    routed = patch_model(tiny_model(family, layers=n_layers), MAWTConfig(path="routed", **cfg))
    fused = copy.deepcopy(routed)
    for layer in mawt_layers(fused).values():
        layer.mawt = MAWTConfig.from_dict({**layer.mawt.to_dict(), "path": "fused"})
    assert all(m.routes for m in mawt_layers(routed).values()) is (mixer == "grpo" or not routed.training)
    assert not any(m.routes for m in mawt_layers(fused).values())
    return routed, fused


def _force(model, choice):
    for layer in mawt_layers(model).values():
        layer.mixer.forced = choice


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("family", FAMILIES)
def test_outputs_and_gradients_equal_the_fused_path_with_the_same_one_hot_weights(family):
    routed, fused = _pair(family, layers=(0, 1))
    batch = padded_batch()  # left and right padding
    choice = torch.randint(0, 3, batch["input_ids"].shape, generator=torch.Generator().manual_seed(3))  # never 3
    weights = torch.randn(*batch["input_ids"].shape, 64, generator=torch.Generator().manual_seed(4))
    real = batch["attention_mask"].bool()
    outs = []
    for model in (routed, fused):
        model.train()
        _force(model, choice)
        logits = model(**batch).logits
        (logits * weights)[real].sum().backward()
        outs.append((logits, _grads(model)))
    (lr, gr), (lf, gf) = outs
    torch.testing.assert_close(lr[real], lf[real], **TOL)
    assert set(gr) == set(gf) and any("depth_query" in n for n in gr) and any("depth_output" in n for n in gr)
    for name in gf:
        torch.testing.assert_close(gr[name], gf[name], **TOL, msg=name)
    # only the chosen depths' transforms moved: depth 3, which no token chose, gets exactly zero gradient
    assert choice[real].unique().tolist() == [0, 1, 2]
    for layer in (0, 1):
        for name in ("depth_query", "depth_output"):
            grad = gr[f"model.layers.{layer}.self_attn.{name}"]
            assert grad[3].abs().max() == 0 and grad[:3].abs().amax((1, 2)).min() > 0


def test_sampled_grpo_choices_are_the_same_and_so_are_the_outputs():
    routed, fused = _pair()
    batch = padded_batch()
    real = batch["attention_mask"].bool()
    results = []
    for model in (routed.train(), fused.train()):
        torch.manual_seed(7)  # the selector's Gumbel draw: the same grid in both
        logits = model(**batch).logits
        results.append((logits, mawt_layers(model)[1].last_selection.choice))
    torch.testing.assert_close(results[0][0][real], results[1][0][real], **TOL)
    assert torch.equal(results[0][1], results[1][1]) and results[0][1][real].unique().numel() > 1


@pytest.mark.parametrize("mixer", ["grpo", "gumbel"])
def test_evaluation_routes_argmax_choices_and_is_causal(mixer):
    routed, fused = _pair(mixer=mixer)
    routed.eval(), fused.eval()
    assert mawt_layers(routed)[1].routes
    ids = torch.randint(3, 64, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = routed(input_ids=ids).logits, fused(input_ids=ids).logits
        torch.testing.assert_close(a, b, **TOL)
        later = ids.clone()
        later[:, 7:] = torch.randint(3, 64, (2, 5), generator=torch.Generator().manual_seed(2))
        c = routed(input_ids=later).logits
    torch.testing.assert_close(a[:, :7], c[:, :7], **TOL)  # positions before the change: unchanged
    assert not torch.allclose(a[:, 7:], c[:, 7:])


@pytest.mark.parametrize("family", FAMILIES)
def test_kv_cache_decoding_equals_the_full_forward(family):
    routed, fused = _pair(family)
    routed.eval(), fused.eval()
    ids = torch.randint(3, 64, (2, 11), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        full = routed(input_ids=ids).logits
        torch.testing.assert_close(full, fused(input_ids=ids).logits, **TOL)
        cache = DynamicCache(config=routed.config)
        steps = [routed(input_ids=ids[:, :6], cache=cache, use_cache=True).logits]
        for t in range(6, 11):
            steps.append(routed(input_ids=ids[:, t:t + 1], cache=cache, use_cache=True).logits)
    torch.testing.assert_close(torch.cat(steps, 1), full, **TOL)
    assert cache.get_seq_length() == 11  # the base model's own cache: plain k, v of every token


@pytest.mark.parametrize("family", ["mistral", "qwen2"])
def test_a_sliding_window_cache_decodes_as_the_fused_path(family):
    """Past the window the cache returns fewer keys than past + new: the mask follows it."""
    from conftest import tiny_config
    from transformers import AutoModelForCausalLM

    config = tiny_config(family)
    config.sliding_window = 4
    if family == "qwen2":
        config.use_sliding_window, config.max_window_layers = True, 0
        config.layer_types = ["sliding_attention"] * config.num_hidden_layers
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").eval()
    cfg = dict(depth=4, mixer="grpo", selector_input="hidden", init_noise=0.3)
    routed = patch_model(copy.deepcopy(base), MAWTConfig(path="routed", **cfg)).eval()
    fused = patch_model(copy.deepcopy(base), MAWTConfig(path="fused", **cfg)).eval()
    fused.load_state_dict(routed.state_dict())
    ids = torch.randint(3, 64, (2, 10), generator=torch.Generator().manual_seed(6))
    outs = []
    with torch.no_grad():
        for model in (routed, fused):
            cache = DynamicCache(config=model.config)
            steps = [model(input_ids=ids[:, :6], cache=cache, use_cache=True).logits]
            for t in range(6, 10):
                steps.append(model(input_ids=ids[:, t:t + 1], cache=cache, use_cache=True).logits)
            outs.append(torch.cat(steps, 1))
        full = routed(input_ids=ids).logits
    torch.testing.assert_close(outs[0], outs[1], **TOL)
    torch.testing.assert_close(outs[0], full, **TOL)


def test_left_padded_rows_equal_the_rows_alone():
    routed, _ = _pair()
    routed.eval()
    batch = padded_batch()
    with torch.no_grad():
        together = routed(**batch).logits
        for row in range(2):  # the two left-padded rows
            real = batch["attention_mask"][row].bool()
            alone = routed(input_ids=batch["input_ids"][row][real][None]).logits[0]
            torch.testing.assert_close(together[row][real], alone, **TOL)


def _trainer(model):
    args = TrainingArguments(output_dir="unused", report_to=[], use_cpu=True)
    run = TrainConfig(group_size=4, beta=0.01, eta=0.001)
    return MAWTTrainer(model=model.train(), args=args, run=run, use_grpo=True)


def _labelled():
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(3, 64, (2, 10), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    labels = ids.masked_fill(mask == 0, 0).clone()
    labels[0, :6] = -100
    labels[1, :4] = -100
    labels[1, 7:] = -100
    return {"input_ids": ids.masked_fill(mask == 0, 0), "attention_mask": mask, "labels": labels}


@pytest.mark.parametrize("family, layers, n_layers", [("qwen2", (-1,), 2), ("qwen2", (0, 2), 3), ("mistral", (-1,), 2),
                                                      ("llama", (0, 2), 3)])
def test_grpo_loss_and_gradients_equal_the_fused_path_with_the_same_sampled_choices(family, layers, n_layers):
    routed, fused = _pair(family, layers=layers, n_layers=n_layers)
    results = []
    for model in (routed, fused):
        trainer = _trainer(model)
        torch.manual_seed(0)
        loss = trainer.compute_loss(model, _labelled())
        loss.backward()
        choices = [m.last_selection.choice for m in mawt_layers(model).values()]
        results.append((loss.detach(), _grads(model), choices))
    (l1, g1, c1), (l2, g2, c2) = results
    assert all(torch.equal(a, b) for a, b in zip(c1, c2, strict=True))
    assert c1[0].shape[0] == 2 * 4  # G rollouts per row
    torch.testing.assert_close(l1, l2, **TOL)
    assert set(g1) == set(g2) and any("selector" in n for n in g1)
    for name in g2:
        torch.testing.assert_close(g1[name], g2[name], **TOL, msg=name)


@pytest.mark.parametrize("cfg, reason", [
    (dict(mixer="softmax", selector_input="hidden"), "mixer 'softmax' mixes every depth"),
    (dict(mixer="mean", selector_input="hidden"), "mixer 'mean' mixes every depth"),
    (dict(mixer="grpo", selector_input="stats"), "selector_input='stats' reads the attention maps"),
    (dict(mixer="grpo", selector_input="both"), "selector_input='both' reads the attention maps"),
    (dict(mixer="grpo", selector_input="hidden", depth=1), "needs depth > 1"),
])
def test_routed_is_refused_where_it_cannot_apply(cfg, reason):
    with pytest.raises(ValueError, match=rf"mawt.path='routed' is invalid: .*{reason}"):
        MAWTConfig(path="routed", **cfg)
    assert MAWTConfig(path="auto", **cfg).path == "auto"  # auto: fused there, no error


def test_auto_routes_where_it_applies_and_gumbel_trains_fused():
    model = patch_model(tiny_model(), MAWTConfig(depth=4, mixer="gumbel", selector_input="hidden"))
    layer = mawt_layers(model)[1]
    assert layer.mawt.path == "auto" and layer.routes  # eval: argmax, a hard choice
    assert not layer.train().routes  # training: straight-through needs every depth's output
    stats = patch_model(tiny_model(), MAWTConfig(depth=4, mixer="grpo"))
    assert not mawt_layers(stats)[1].train().routes  # selector_input stats (default): fused


def test_the_old_selector_key_is_refused_with_the_new_one(tmp_path):
    from mawt.training.runconfig import load

    with pytest.raises(ValueError, match="selector_hidden_state was replaced by selector_input"):
        MAWTConfig.from_dict({"depth": 4, "selector_hidden_state": True})
    run = tmp_path / "run.yaml"
    run.write_text("mawt: {depth: 4, selector_hidden_state: true}\n")
    with pytest.raises(ValueError, match=r"run.yaml.mawt.selector_hidden_state was replaced by selector_input"):
        load(run)
