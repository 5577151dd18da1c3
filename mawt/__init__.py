"""MAWT: Multi-Attention-Weight Transformer layers for pretrained causal LMs.

    from mawt import MAWTConfig, patch_model, freeze, load_model, capture

Importing the layer API registers the MAWT model classes with transformers'
AutoConfig / AutoModelForCausalLM, so MAWT checkpoints load with either. The
names are resolved lazily, so light modules (e.g. `mawt.studies.study`, read by the
Snakefile at every invocation) do not pay for importing torch and transformers.
"""

import importlib

_API = {
    "MAWTAttention": "layer.attention",
    "MAWTConfig": "layer.config",
    "Selection": "layer.mixers",
    "capture": "layer.patching",
    "freeze": "layer.patching",
    "load_model": "layer.patching",
    "mawt_layers": "layer.patching",
    "patch_model": "layer.patching",
}
__all__ = sorted(_API)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'mawt' has no attribute {name!r}")
