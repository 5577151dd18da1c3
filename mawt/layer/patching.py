"""Putting MAWT into a transformers model, and getting it back out of a checkpoint.

`patch_model` swaps the chosen self-attention modules for `MAWTAttention` and turns
the model (and its config) into a registered MAWT subclass of the base family,
e.g. `MAWTQwen2ForCausalLM` with `model_type = "mawt_qwen2"`. Consequences:
  * `save_pretrained` writes `model_type: mawt_qwen2` and the MAWT settings into
    config.json, and the MAWT weights into the safetensors file;
  * after `import mawt`, `AutoModelForCausalLM.from_pretrained(dir)` rebuilds the
    MAWT model (the registered class patches itself in `__init__`);
  * without `import mawt`, transformers does not know `mawt_qwen2` and refuses to
    load the checkpoint: it can never silently drop the MAWT weights.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from mawt.layer.attention import MAWTAttention
from mawt.layer.config import nothing_to_train, trainable_tail
from mawt.layer.config import resolve_layers as _resolve_layers  # the checks a run's preflight makes too
from mawt.layer.config import MAWTConfig

# model_type -> (config class, causal-LM class) of the supported base families.
FAMILIES = {
    "qwen2": (Qwen2Config, Qwen2ForCausalLM),
    "mistral": (MistralConfig, MistralForCausalLM),
    "llama": (LlamaConfig, LlamaForCausalLM),
}
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2", "flash_attention_3")


def _make_mawt_classes(family: str, config_cls, model_cls):
    name = config_cls.__name__.removesuffix("Config")

    config_type = type(f"MAWT{name}Config", (config_cls,), {"model_type": f"mawt_{family}"})

    def __init__(self, config):
        model_cls.__init__(self, config)
        _replace_attention(self, MAWTConfig.from_dict(config.mawt))

    model_type = type(
        f"MAWT{name}ForCausalLM",
        (model_cls,),
        {"config_class": config_type, "__init__": __init__, "__module__": __name__},
    )
    config_type.__module__ = __name__
    AutoConfig.register(config_type.model_type, config_type, exist_ok=True)
    AutoModelForCausalLM.register(config_type, model_type, exist_ok=True)
    return config_type, model_type


MAWT_CLASSES = {fam: _make_mawt_classes(fam, *classes) for fam, classes in FAMILIES.items()}
globals().update({cls.__name__: cls for pair in MAWT_CLASSES.values() for cls in pair})


def _decoder_layers(model: nn.Module) -> nn.ModuleList:
    return model.model.layers


def mawt_layers(model: nn.Module) -> dict[int, MAWTAttention]:
    """{layer index: MAWTAttention} of a patched model."""
    return {m.layer_idx: m for m in model.modules() if isinstance(m, MAWTAttention)}


def _replace_attention(model: nn.Module, cfg: MAWTConfig) -> None:
    layers = _decoder_layers(model)
    for i in _resolve_layers(cfg.layers, len(layers)):
        base = layers[i].self_attn
        layers[i].self_attn = MAWTAttention(base, cfg).train(base.training)  # keep eval/train mode


def patch_model(model: nn.Module, cfg: MAWTConfig) -> nn.Module:
    """Replace the attention of `cfg.layers` with MAWT, in place; returns the model.

    The layer indices are stored resolved (absolute) in `model.config.mawt`.
    """
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type is not None and model_type.startswith("mawt_"):
        raise ValueError("patch_model: this model is already patched with MAWT")
    if model_type not in FAMILIES or not isinstance(model, FAMILIES[model_type][1]):
        raise ValueError(
            f"patch_model: unsupported model {type(model).__name__} (model_type={model_type!r}); "
            f"supported are the causal-LM classes of the families {', '.join(FAMILIES)}"
        )
    impl = model.config._attn_implementation
    if impl not in ATTN_IMPLEMENTATIONS:
        raise ValueError(
            f"patch_model: attn_implementation={impl!r} is not supported under MAWT; "
            f"use one of {', '.join(ATTN_IMPLEMENTATIONS)}"
        )
    n_layers = len(_decoder_layers(model))
    cfg = MAWTConfig.from_dict({**cfg.to_dict(), "layers": _resolve_layers(cfg.layers, n_layers)})
    _replace_attention(model, cfg)
    config_type, model_cls = MAWT_CLASSES[model_type]
    # A new config object: the old one may be shared with other models.
    old_config = model.config
    new_config = copy.deepcopy(old_config)
    new_config.__class__ = config_type
    new_config.mawt = cfg.to_dict()
    new_config.architectures = [model_cls.__name__]
    for module in model.modules():
        if getattr(module, "config", None) is old_config:
            module.config = new_config
    model.__class__ = model_cls
    return model


def freeze(model: nn.Module, trainable: str = "last") -> int:
    """Set requires_grad by mode; returns the number of trainable parameter elements.

    Modes: `last` = the last decoder layer; `last:N` = the last N decoder layers;
    `mawt` = MAWT parameters only; `all` = everything. In every mode the MAWT
    parameters of all patched layers train too (a patched layer below the trainable
    block would otherwise keep its random depth transforms forever), except a planted
    control's depth transforms (`mawt.plant`), which never train.
    """
    layers = _decoder_layers(model)
    n_last = trainable_tail(trainable, len(layers))
    if n_last is None:
        keep = list(model.parameters())
    else:
        keep = [p for layer in layers[len(layers) - n_last :] for p in layer.parameters()] if n_last else []
        keep += [p for m in mawt_layers(model).values() for p in m.mawt_parameters()]
        if not keep:
            raise nothing_to_train(trainable)
    planted = {id(p) for m in mawt_layers(model).values() if m.mawt.plant != "none"
               for p in (m.depth_query, m.depth_output)}  # a plant's transforms stay fixed in every mode
    keep_ids = {id(p) for p in keep} - planted
    for p in model.parameters():
        p.requires_grad_(id(p) in keep_ids)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def load_model(path, **kwargs) -> nn.Module:
    """Load a checkpoint written by `save_pretrained` (MAWT or plain base model).

    Every weight in the checkpoint must be used and every weight of the model must
    come from it; anything else is an error, never a warning.
    """
    if Path(path).is_dir() and not any(Path(path).glob("*.safetensors")):
        pickles = sorted(p.name for p in Path(path).glob("*.bin")) + sorted(p.name for p in Path(path).glob("*.pt"))
        raise ValueError(f"load_model({str(path)!r}): no .safetensors weights"
                         + (f" (found {pickles}: pickle files are never loaded; re-save with safetensors)"
                            if pickles else ""))
    kwargs.setdefault("use_safetensors", True)  # never unpickle weights
    model, info = AutoModelForCausalLM.from_pretrained(path, output_loading_info=True, **kwargs)
    problems = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys") and v}
    if problems:
        raise ValueError(f"load_model({str(path)!r}): checkpoint does not match the model: {problems}")
    return model


@dataclass
class Capture:
    """Filled by `capture`: {layer index: (B, H, Lq, Lk, D)} from the last forward."""

    attentions: dict[int, torch.Tensor] = field(default_factory=dict)


@contextlib.contextmanager
def capture(model: nn.Module):
    """Record the 5D attention tensor of every MAWT layer during the block.

    Capturing runs the materialized path (it has to build the tensor anyway);
    its outputs equal the fused path's to 1e-5.
    """
    layers = mawt_layers(model)
    if not layers:
        raise ValueError("capture: the model has no MAWT layers (call patch_model first)")
    cap = Capture()
    for m in layers.values():
        m.capture_attention, m.captured = True, None
    try:
        yield cap
    finally:
        for idx, m in layers.items():
            if m.captured is not None:
                cap.attentions[idx] = m.captured
            m.capture_attention, m.captured = False, None
