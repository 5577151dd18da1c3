"""Mixed precision (train.dtype: bfloat16): trainable weights are float32 masters.

A bf16 weight cannot hold an Adam step at lr 1e-5: the step (~1e-5 for the first
step, whatever the gradient's size) is below half a bf16 ulp for any |w| > ~2.6e-3
(bf16 keeps 8 significant bits), so it rounds away. With float32 masters the bf16
run's first step must move the trainable weights as the float32 run's does.
"""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import Qwen2Config, Qwen2ForCausalLM, set_seed

from mawt import patch_model
from mawt.data import puzzles
from mawt.bases.micro import train_tokenizer
from mawt.training.models import load_base
from mawt.training.train import train_run
from mawt.training.runconfig import RunConfig, load

LR = 1e-5
# Tolerance: the two runs' gradients differ by bf16 rounding of the compute (~1e-2 relative),
# and Adam's first step is lr * g / (|g| + eps) ~ lr * sign(g), so they agree entry by entry
# except where a tiny gradient's sign flips. Measured: relative L2 difference ~0.05.
REL_TOL = 0.25


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("precision")
    tok = train_tokenizer()
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None,
                         tie_word_embeddings=False)
    base = Qwen2ForCausalLM(config).to(torch.bfloat16)  # bf16 weights on disk: both runs start identical
    base.save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    split = root / "split"
    split.mkdir()
    rows = puzzles.generate(16, ["reverse"], seed=3)
    for name in ("train", "heldout"):
        (split / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = {}
    for dtype in ("float32", "bfloat16"):
        cfg = load({
            "base_model": str(root / "base"), "mawt": {"depth": 2, "mixer": "grpo", "init_noise": 0.02},
            "train": {"steps": 1, "batch_size": 8, "learning_rate": LR, "warmup_steps": 0, "save_steps": 0,
                      "device": "cpu", "dtype": dtype, "max_length": 64}}, RunConfig, "test")
        summary = train_run(cfg, root / dtype, split)
        out[dtype] = (summary, load_file(root / dtype / "model" / "model.safetensors"), _initial(cfg))
    return out


def _initial(cfg):
    """The run's weights before its first step: the base plus the seeded MAWT initialisation."""
    set_seed(cfg.train.seed)
    model, _ = load_base(cfg, "cpu")
    patch_model(model, cfg.mawt)
    return {n: t.detach().float().clone() for n, t in model.state_dict().items()}


def _moves(after, before):
    """Updates of the parameters that trained: the last layer's (MAWT ones included)."""
    return {n: after[n].float() - before[n] for n in after if "layers.1." in n}


def test_bf16_run_holds_trainable_weights_in_float32_and_says_so(runs):
    summary, weights, _ = runs["bfloat16"]
    assert summary["trainable_dtype"] == "float32" and summary["compute_dtype"] == "bfloat16"
    assert all(weights[n].dtype == torch.float32 for n in weights if "layers.1." in n)
    assert all(weights[n].dtype == torch.bfloat16 for n in weights if "layers.0." in n)  # frozen: as loaded


def test_one_bf16_step_at_lr_1e_5_moves_the_weights_as_the_float32_step(runs):
    d32 = _moves(runs["float32"][1], runs["float32"][2])
    d16 = _moves(runs["bfloat16"][1], runs["bfloat16"][2])
    assert {"model.layers.1.self_attn.depth_query", "model.layers.1.self_attn.depth_output"} <= set(d16)  # A_d, B_d
    for name in d32:
        a, b = d32[name].flatten(), d16[name].flatten()
        assert a.abs().max() <= 1.01 * LR, name  # Adam's first step: at most lr per entry
        assert (a != 0).float().mean() > 0.95, name
        assert (b != 0).float().mean() > 0.95, f"{name}: bf16 updates were rounded away"
    flat32 = torch.cat([d.flatten() for d in d32.values()])
    flat16 = torch.cat([d.flatten() for d in d16.values()])
    rel = (flat16 - flat32).norm() / flat32.norm()
    assert rel < REL_TOL, f"relative difference of the updates {rel:.3f} >= {REL_TOL}"
