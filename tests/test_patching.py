"""patch_model / freeze / save-load / capture API, and the errors for bad input."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import FAMILIES, patched_copy, tiny_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, GPT2Config

from mawt import MAWTConfig, freeze, load_model, mawt_layers, patch_model


def _backward(model, batch):
    model.zero_grad(set_to_none=True)
    out = model(**batch).logits
    (out.float().pow(2) * batch["attention_mask"][..., None]).mean().backward()


@pytest.mark.parametrize("mixer", ["softmax", "gumbel"])
@pytest.mark.parametrize("mode", ["last", "last:2", "mawt", "all"])
def test_freeze_gradients_reach_exactly_the_reported_parameters(mixer, mode, batch):
    model = patched_copy(tiny_model("qwen2", layers=3), depth=4, mixer=mixer, init_noise=0.1, layers=[-2])
    model.train()
    n = freeze(model, mode)
    _backward(model, batch)
    with_grad = {name for name, p in model.named_parameters() if p.grad is not None}
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert with_grad == trainable
    assert n == sum(p.numel() for p in model.parameters() if p.requires_grad) > 0
    mawt = mawt_layers(model)[1]
    for p in mawt.mawt_parameters():  # selector and depth transforms learn in every mode
        assert p.requires_grad and p.grad.abs().sum() > 0
    layer0 = model.model.layers[0].mlp.up_proj.weight
    assert layer0.requires_grad == (mode == "all")
    last_mlp = model.model.layers[-1].mlp.up_proj.weight
    assert last_mlp.requires_grad == (mode != "mawt")
    middle_mlp = model.model.layers[1].mlp.up_proj.weight
    assert middle_mlp.requires_grad == (mode in ("last:2", "all"))


def test_grpo_policy_loss_reaches_the_selector(batch):
    model = patched_copy(tiny_model("qwen2"), depth=4, mixer="grpo", init_noise=0.1)
    model.train()
    freeze(model, "mawt")
    model(**batch)
    sel = mawt_layers(model)[1].last_selection
    assert sel.choice.shape == batch["input_ids"].shape
    assert torch.equal(sel.weights, torch.nn.functional.one_hot(sel.choice, 4).float())
    (sel.choice_log_prob[sel.valid].mean() + sel.selector_entropy[sel.valid].mean()).backward()
    selector = mawt_layers(model)[1].mixer
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in selector.parameters())


@pytest.mark.parametrize("family", FAMILIES)
def test_save_load_round_trip_gives_identical_logits(family, tmp_path, batch):
    model = patched_copy(tiny_model(family), depth=3, mixer="softmax", init_noise=0.1, layers=[0, -1])
    with torch.no_grad():
        ref = model(**batch).logits
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == f"mawt_{family}"
    assert saved["mawt"]["layers"] == [0, 1] and saved["mawt"]["depth"] == 3
    for loaded in (load_model(tmp_path), AutoModelForCausalLM.from_pretrained(tmp_path)):
        loaded.eval()
        assert sorted(mawt_layers(loaded)) == [0, 1]
        with torch.no_grad():
            assert torch.equal(loaded(**batch).logits, ref)


@pytest.mark.integration
def test_plain_transformers_refuses_a_mawt_checkpoint(tmp_path):
    """Without `import mawt`, AutoModelForCausalLM must fail loudly, not drop weights."""
    patched_copy(tiny_model("qwen2"), depth=2, mixer="grpo").save_pretrained(tmp_path)
    code = (
        "from transformers import AutoModelForCausalLM\n"
        f"AutoModelForCausalLM.from_pretrained({str(tmp_path)!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "mawt_qwen2" in proc.stderr


def test_load_model_refuses_a_checkpoint_missing_mawt_weights(tmp_path):
    patched_copy(tiny_model("qwen2"), depth=2, mixer="softmax").save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    kept = {k: v for k, v in weights.items() if "depth_query" not in k}
    save_file(kept, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match="depth_query"):
        load_model(tmp_path)


def test_patch_model_keeps_other_models_sharing_the_config_intact():
    base = tiny_model("qwen2")
    twin = AutoModelForCausalLM.from_config(base.config)
    patch_model(base, MAWTConfig(depth=2))
    assert twin.config.model_type == "qwen2" and not hasattr(twin.config, "mawt")
    patch_model(twin, MAWTConfig(depth=2))  # still patchable


def test_patched_model_moves_dtype_and_mode_with_the_model(batch):
    model = patched_copy(tiny_model("qwen2"), depth=2, mixer="gumbel")
    model.train()
    assert all(m.training for m in mawt_layers(model).values())
    model.to(torch.float64)
    assert mawt_layers(model)[1].depth_output.dtype == torch.float64


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"depth": 0}, "mawt.depth=0 is invalid: must be an integer >= 1"),
        ({"mixer": "argmax"}, "mawt.mixer='argmax' is invalid: allowed values are softmax, grpo, gumbel, mean, fixed"),
        ({"depth": 2, "mixer": "fixed", "fixed_index": 2}, r"mawt.fixed_index=2 is invalid: must be an integer in 0..1 \(depth=2\)"),
        ({"path": "flash"}, "mawt.path='flash' is invalid: allowed values are auto, fused, materialized, routed"),
        ({"layers": []}, "mawt.layers=.* is invalid"),
        ({"init_noise": -1.0}, "mawt.init_noise=-1.0 is invalid"),
    ],
)
def test_bad_config_values_name_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MAWTConfig(**kwargs)


@pytest.mark.parametrize("layers", [[2], [-3], [0, -2]])
def test_layer_index_out_of_range_or_repeated(layers):
    with pytest.raises(ValueError, match=r"mawt.layers.*(out of range|same layer twice)"):
        patch_model(tiny_model("qwen2"), MAWTConfig(layers=layers))


def test_unsupported_family_is_refused():
    gpt2 = AutoModelForCausalLM.from_config(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64))
    with pytest.raises(ValueError, match=r"unsupported model GPT2LMHeadModel.*qwen2, mistral, llama"):
        patch_model(gpt2, MAWTConfig())


def test_patching_twice_is_refused():
    model = patch_model(tiny_model("qwen2"), MAWTConfig())
    with pytest.raises(ValueError, match="already patched"):
        patch_model(model, MAWTConfig())


@pytest.mark.parametrize(
    "mode, message",
    [
        ("first", "trainable='first' is unknown; allowed are 'last', 'last:N'"),
        ("last:0", r"N in 'last:N' must be an integer in 1..2"),
        ("last:x", r"N in 'last:N' must be an integer in 1..2"),
    ],
)
def test_bad_freeze_mode(mode, message):
    model = patch_model(tiny_model("qwen2"), MAWTConfig())
    with pytest.raises(ValueError, match=message):
        freeze(model, mode)


def test_freeze_mawt_on_an_unpatched_model_leaves_nothing_to_train():
    with pytest.raises(ValueError, match="leaves nothing to train"):
        freeze(tiny_model("qwen2"), "mawt")


@pytest.mark.integration
def test_demo_cli_checks_identity_and_reports_bad_input_without_traceback(cli):
    ok = cli("demo", "--depth", "2")
    assert ok.returncode == 0, ok.stderr
    assert "(batch, heads, q, k, depth) = (2, 4, 16, 16, 2)" in ok.stdout
    bad = cli("demo", "--mixer", "top1")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "mawt.mixer='top1' is invalid" in bad.stderr
