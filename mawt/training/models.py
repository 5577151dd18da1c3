"""Loading models: the base of a run (with the pad-token rule and float32 master weights)
and a checkpoint for evaluation (with a plain generation config); the device choice; the
base weights' fingerprint."""

from __future__ import annotations

from pathlib import Path

import torch

from mawt.training.runconfig import RunConfig


def with_pad_token(tokenizer):
    """The pad-token rule: a tokenizer without one pads with its EOS (masked out everywhere)."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def weights_sha256(model_dir: str) -> str | None:
    """sha256 of a local model's safetensors weights (None for a hub id)."""
    import hashlib

    files = sorted(Path(model_dir).glob("*.safetensors")) if Path(model_dir).is_dir() else []
    if not files:
        return None
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.read_bytes())
    return digest.hexdigest()


def device_for(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device='cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    return name


def check_model_source(name: str) -> None:
    """A local-looking model path must be a save_pretrained directory (hub ids are org/name)."""
    looks_local = Path(name).exists() or name.startswith((".", "/", "~")) or name.count("/") >= 2
    if looks_local and not (Path(name) / "config.json").is_file():
        raise ValueError(f"base_model={name!r}: no model there (expected a save_pretrained directory "
                         "with config.json)")


def unloadable(cfg: RunConfig, err: Exception) -> ValueError:
    return ValueError(f"base_model={cfg.base_model!r} could not be loaded ({str(err).splitlines()[0][:200]}); "
                      "offline, point base_model at a local save_pretrained directory")


def upcast_trainable(model) -> str:
    """Hold every trainable parameter in float32 (the master weights); frozen ones keep
    their dtype. Under bf16 (`train.dtype: bfloat16`) the frozen weights stay bf16 and
    compute runs in bf16 autocast (mawt.training.trainer), but the optimiser updates float32
    weights: a bf16 weight would round away every Adam step below half its ulp
    (at lr 1e-5, most of them on A_d = I + noise). Returns the trainable dtype's name."""
    for p in model.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()
    return "float32"


def load_base(cfg: RunConfig, device: str):
    """Tokenizer and base model (safetensors only); `preflight` has checked the source."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = torch.bfloat16 if cfg.train.dtype == "bfloat16" else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(cfg.tokenizer or cfg.base_model,
                                                  trust_remote_code=cfg.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(cfg.base_model, dtype=dtype, use_safetensors=True,
                                                     trust_remote_code=cfg.trust_remote_code)
    except OSError as err:
        raise unloadable(cfg, err) from None
    return model.to(device), with_pad_token(tokenizer)


def plain_generation_config(model, tokenizer):
    """A generation config holding only the token ids (BOS the model's; EOS and pad the
    tokenizer's, as the evaluation stops and pads): no sampling, penalty or length setting.

    transformers fills every field a `generate` call leaves unset (None) from
    `model.generation_config`, i.e. from the checkpoint's generation_config.json, so a
    `repetition_penalty` or `no_repeat_ngram_size` there would silently change "greedy"
    decoding. With this config in its place, what a call does not set falls back to
    transformers' global defaults, which add no logits processor."""
    from transformers import GenerationConfig

    own = getattr(model, "generation_config", None)
    bos = own.bos_token_id if own is not None and own.bos_token_id is not None else model.config.bos_token_id
    return GenerationConfig(bos_token_id=bos, eos_token_id=tokenizer.eos_token_id,
                            pad_token_id=tokenizer.pad_token_id)


def load_checkpoint(model_dir: Path, device: str = "auto"):
    """Tokenizer and model of a checkpoint (MAWT or plain), in the dtype its config names
    (a bf16 run's float32 master weights are evaluated in bf16, as they were trained).
    The checkpoint's own generation_config.json is replaced by `plain_generation_config`:
    evaluation decodes with its EvalConfig's settings only (mawt.evaluation.evaluate, mawt.evaluation.lmeval)."""
    from transformers import AutoTokenizer

    from mawt.layer.patching import load_model

    check_model_source(str(model_dir))
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = load_model(model_dir, dtype="auto")
    except OSError as err:
        raise ValueError(f"model {str(model_dir)!r} could not be loaded ({str(err).splitlines()[0][:200]}); "
                         "offline, run `python -m mawt fetch` where there is network first") from None
    tokenizer = with_pad_token(tokenizer)
    model.generation_config = plain_generation_config(model, tokenizer)
    return model.to(device_for(device)), tokenizer
