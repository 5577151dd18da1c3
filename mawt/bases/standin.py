"""A faithful CPU stand-in for the `paper` setup (DeepSeek-R1-Distill-Qwen-1.5B on
nuprl/verbal-reasoning-challenge), to run the paper code path offline on a few cores.

Kept from the real model and data (what the code path depends on):
  * the attention geometry and numerics: hidden 1536, 12 query heads, 2 KV heads
    (GQA 6:1), head_dim 128, RoPE theta 10000, RMSNorm eps 1e-6, SiLU MLP of 8960,
    untied embeddings, no sliding window, bfloat16 weights (`GEOMETRY`);
  * the tokenizer's pipeline and files: byte-level BPE with Qwen2's NFC normaliser and
    split regex, R1-Distill's added tokens in their order with their `special` flags,
    a post-processor that prepends the bos, `tokenizer_config.json` laid out as
    R1-Distill's (so `AutoTokenizer` takes the same class-resolution path), and a
    chat template that renders our conversations exactly as R1-Distill's does,
    including the forced opening `<think>\\n` of the generation prompt;
  * the dataset's file schema: one parquet file with `ID` int64 and `url`, `date`,
    `challenge`, `answer` strings, Sunday-Puzzle-style rows.
Changed (what must change to fit a 2-core CPU with no network):
  * layers: 1-2 instead of 28; vocabulary: a 2048-entry BPE trained here instead of
    151643 entries (the embedding is padded to a multiple of 64, as the real one is
    padded from 151665 tokens to 151936 rows); weights: random (transformers' own init);
  * the puzzles: 360 generated rows (templates in `mawt.bases.standin_puzzles`) instead of the 582
    real ones.

Shipped: `assets/paper_standin/` (tokenizer + puzzles, built by `build_assets`);
built on demand: the model (`build`), never stored in git.

The tokenizer (pipeline, added tokens, chat template, training text, files) is
`mawt.bases.standin_tokenizer` and the puzzles are `mawt.bases.standin_puzzles`; this module keeps the
geometry and the model and builds the shipped assets.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from mawt.common import atomic

if TYPE_CHECKING:
    from transformers import Qwen2ForCausalLM

# torch, transformers and the tokenizer's module (tokenizers) are imported where they are used:
# `GEOMETRY` alone (the workflow's shape check at every start, mawt/training/preflight.py) must stay cheap.

# ---------------------------------------------------------------- geometry

# DeepSeek-R1-Distill-Qwen-1.5B's config.json (679 bytes at
# huggingface.co/deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B), as found by search: the
# identical field values appear in the config.json of every copy derived from it
# (e.g. huggingface.co/rohinm/model, bluryar/DeepSeek-R1-Distill-Qwen-1.5B-sft,
# onnx-community/DeepSeek-R1-Distill-Qwen-1.5B-ONNX, all "_name_or_path":
# "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"). Only what a layer's shape or numerics
# depend on is kept; num_hidden_layers (28) and vocab_size (151936) are set by `build_model`.
GEOMETRY = dict(
    hidden_size=1536,  # config.json "hidden_size": 1536
    intermediate_size=8960,  # "intermediate_size": 8960
    num_attention_heads=12,  # "num_attention_heads": 12
    num_key_value_heads=2,  # "num_key_value_heads": 2
    # Not in config.json: Qwen2 derives it as hidden_size // num_attention_heads = 128;
    # written out so that a change of either number cannot silently change it.
    head_dim=128,
    hidden_act="silu",  # "hidden_act": "silu"
    max_position_embeddings=131072,  # "max_position_embeddings": 131072
    rms_norm_eps=1e-6,  # "rms_norm_eps": 1e-06
    # "rope_theta": 10000, "rope_scaling": null, in transformers 5's form.
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    tie_word_embeddings=False,  # "tie_word_embeddings": false
    use_sliding_window=False,  # "use_sliding_window": false
    sliding_window=None,  # "sliding_window": null
    max_window_layers=21,  # "max_window_layers": 21 (inert: sliding window off)
    attention_dropout=0.0,  # "attention_dropout": 0.0
    initializer_range=0.02,  # "initializer_range": 0.02
    use_cache=True,  # "use_cache": true
    dtype="bfloat16",  # "torch_dtype": "bfloat16"
)

# generation_config.json of the real model (181 bytes, "Add generation_config.json"):
# {"bos_token_id": 151646, "eos_token_id": 151643, "do_sample": true,
#  "temperature": 0.6, "top_p": 0.95}; the ids are the stand-in tokenizer's.
SAMPLING = dict(do_sample=True, temperature=0.6, top_p=0.95)
RECIPE = dict(num_layers=2, seed=0)  # a setup's `standin:` over these builds the stand-in (build-standin)

# ---------------------------------------------------------------- model


def padded_vocab(tokenizer) -> int:
    """Embedding rows: the tokenizer's size rounded up to a multiple of 64 (GPU-friendly
    shapes; the real model pads 151665 tokens to 151936 rows the same way)."""
    return -(-len(tokenizer) // 64) * 64


def build_model(tokenizer, num_layers: int = RECIPE["num_layers"], seed: int = RECIPE["seed"]) -> Qwen2ForCausalLM:
    """R1-Distill's geometry with `num_layers` layers and random weights, in bfloat16.

    transformers' own init (normal, std initializer_range = 0.02) under
    `torch.manual_seed(seed)`, in float32, then cast: the same numbers on every machine
    with the same torch, whatever the default dtype.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        **GEOMETRY, num_hidden_layers=num_layers, vocab_size=padded_vocab(tokenizer),
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    with _default_dtype(torch.float32):
        model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, **SAMPLING)
    return model.to(torch.bfloat16).eval()


@contextlib.contextmanager
def _default_dtype(dtype):
    """Parameters are created (and initialised) in the torch default dtype."""
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def build(out: Path, num_layers: int = RECIPE["num_layers"], seed: int = RECIPE["seed"],
          assets: Path | None = None) -> Path:
    """A `save_pretrained` stand-in model in `out`: bf16 safetensors, config, generation
    config, and the shipped tokenizer files copied verbatim (`assets`: default the shipped
    ones). Byte-identical for the same arguments (same torch and transformers)."""
    from mawt.bases.standin_tokenizer import ASSETS, load_tokenizer

    tokenizer_dir = Path(assets or ASSETS) / "tokenizer"
    model = build_model(load_tokenizer(tokenizer_dir), num_layers=num_layers, seed=seed)
    with atomic.atomic_path(Path(out)) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        for f in sorted(tokenizer_dir.iterdir()):
            shutil.copyfile(f, tmp / f.name)
    return Path(out)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------- shipped assets


def build_assets(dest: Path | None = None) -> Path:
    """The shipped stand-in assets (default: where they ship): `dest/puzzles.parquet` (360 rows) and
    `dest/tokenizer/` (trained on those rows and GENERIC_TEXT). Deterministic."""
    from mawt.bases.standin_puzzles import puzzle_rows, write_puzzles
    from mawt.bases.standin_tokenizer import ASSETS, build_tokenizer, save_tokenizer, training_texts

    dest = Path(dest or ASSETS)
    write_puzzles(dest / "puzzles.parquet")
    save_tokenizer(build_tokenizer(training_texts(puzzle_rows())), dest / "tokenizer")
    return dest
