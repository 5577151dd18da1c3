"""MAWT: Multi-Attention-Weight Transformer layers for pretrained causal LMs.

    from mawt import MAWTConfig, patch_model, freeze, load_model, capture

Importing the package registers the MAWT model classes with transformers'
AutoConfig / AutoModelForCausalLM, so MAWT checkpoints load with either.
"""

from .attention import MAWTAttention
from .config import MAWTConfig
from .patching import capture, freeze, load_model, mawt_layers, patch_model
from .selectors import Selection

__all__ = [
    "MAWTAttention",
    "MAWTConfig",
    "Selection",
    "capture",
    "freeze",
    "load_model",
    "mawt_layers",
    "patch_model",
]
__version__ = "0.1.0"
