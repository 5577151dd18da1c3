"""Shared fixtures: tiny random models of each supported family, built from configs."""

import copy
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig, Qwen2Config

from mawt import MAWTConfig, patch_model

FAMILIES = ("qwen2", "mistral", "llama")
MIXERS = ("softmax", "grpo", "gumbel", "mean", "fixed")
VOCAB = 64


def tiny_config(family: str, layers: int = 2):
    cls = {"qwen2": Qwen2Config, "mistral": MistralConfig, "llama": LlamaConfig}[family]
    return cls(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        pad_token_id=0, eos_token_id=1, bos_token_id=2,
    )


def tiny_model(family: str = "qwen2", attn: str = "sdpa", seed: int = 0, layers: int = 2):
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(family, layers), attn_implementation=attn)
    return model.eval()


def patched_copy(base, **cfg):
    """A MAWT-patched deep copy of `base` (the base model stays untouched)."""
    return patch_model(copy.deepcopy(base), MAWTConfig(**cfg))


def padded_batch(seed: int = 1, length: int = 10):
    """Two left-padded rows and one right-padded row (0 in the mask = padding)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (3, length), generator=g)
    mask = torch.ones_like(ids)
    mask[0, :4] = 0
    mask[1, :1] = 0
    mask[2, -3:] = 0
    ids = ids.masked_fill(mask == 0, 0)
    return {"input_ids": ids, "attention_mask": mask}


def fixed_index(mixer: str, depth: int) -> dict:
    return {"fixed_index": depth - 1} if mixer == "fixed" else {}


@pytest.fixture
def batch():
    return padded_batch()
