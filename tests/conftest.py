"""Shared fixtures: tiny random models of each supported family, built from configs."""

import copy
import os
import subprocess
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig, Qwen2Config

from mawt import MAWTConfig, patch_model

MICRO_BASE = Path(__file__).resolve().parents[1] / "assets" / "micro_base"
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


@pytest.fixture(scope="session")
def micro_base() -> Path:
    """The shipped micro base (assets/micro_base): the one pre-trained base of the whole test run.

    Read-only: a test that changes a base copies it first. Only tests of pre-training pre-train.
    """
    if not (MICRO_BASE / "model.safetensors").is_file():
        pytest.fail(f"{MICRO_BASE} is missing: rebuild it with `python -m mawt pretrain-micro --out {MICRO_BASE}`")
    return MICRO_BASE


@pytest.fixture
def cli(capfd):
    """`python -m mawt ARGS` through the real entry point (`mawt.__main__.main`), in this process.

    Returns a CompletedProcess with the exit code and what reached file descriptors 1 and 2 (so a
    logging handler's lines count too). A new interpreter would cost ~5 s of imports per call; the
    tests that need a real process (exit codes, signals, determinism across processes) start one.
    """
    from mawt.__main__ import main

    def run(*args) -> subprocess.CompletedProcess:
        capfd.readouterr()
        argv = [str(a) for a in args]
        try:
            code = main(argv)
        except SystemExit as stop:  # argparse's usage errors
            code = stop.code if isinstance(stop.code, int) else 1
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess(["python", "-m", "mawt", *argv], code, out, err)

    return run
