"""Shared fixtures (tiny random models built from configs, the shipped micro base, the CLI) and the test tiers.

Tiers (pyproject.toml registers the markers; the README gives the commands):
  unit         in-process, tiny models or pure functions: the inner loop, `pytest -m "unit and not slow"`
  integration  a real run of a stage: fine-tuning, evaluation, lm-eval, a CLI in a new process, a benchmark script
  workflow     Snakemake runs as users run it (dry runs, the smoke DAG, kills and resumes)
  slow         any tier, tens of seconds on 2 cores
Every test has exactly one tier: its file's (FILE_TIERS) unless the test names another one.
"""

import copy
import os
import subprocess
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# Under xdist (`-n auto`: one worker per core) each worker's torch, and every process a test starts
# (jobs, benchmark scripts), gets its share of the cores instead of all of them. With 2 workers x 2
# OpenMP threads on 2 cores the threads spin waiting for each other: the suite took 1.4x the CPU time
# of 1 thread each (the in-process training tests 1.8x). A run without xdist keeps torch's default.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig, Qwen2Config

from mawt import MAWTConfig, patch_model

if _WORKERS > 1:
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

TIERS = ("unit", "integration", "workflow")
FILE_TIERS = {
    "test_attention.py": "unit", "test_bad_input.py": "unit", "test_data.py": "unit", "test_grpo.py": "unit", "test_batches.py": "unit",
    "test_honest_eval.py": "unit", "test_patching.py": "unit", "test_policy_worth.py": "unit", "test_divergence.py": "unit", "test_probe.py": "unit", "test_formula.py": "unit", "test_planted.py": "integration",
    "test_precision.py": "unit", "test_routed.py": "unit", "test_scoring.py": "unit", "test_standin.py": "unit",
    "test_stats.py": "unit", "test_stats_calibration.py": "unit", "test_project.py": "unit",
    "test_architecture.py": "unit", "test_run_index.py": "unit",
    "test_training.py": "integration", "test_grpo_cost.py": "integration", "test_evaluate.py": "integration", "test_lmeval.py": "integration",
    "test_benchmarks.py": "integration", "test_fetch.py": "integration", "test_report.py": "integration",
    "test_faults.py": "integration", "test_workflow.py": "workflow", "test_slurm.py": "workflow",
}

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


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        named = [m.name for m in item.iter_markers() if m.name in TIERS]
        if len(set(named)) > 1:
            raise pytest.UsageError(f"{item.nodeid}: more than one tier marker {sorted(set(named))}")
        if not named:
            if item.path.name not in FILE_TIERS:
                raise pytest.UsageError(f"{item.path.name}: no tier; add it to FILE_TIERS in tests/conftest.py "
                                        f"(allowed: {', '.join(TIERS)})")
            item.add_marker(FILE_TIERS[item.path.name])
    # the slow tests first, Snakemake's (the longest) before the others, stable otherwise: with several
    # workers (-n) they start early and the quick ones fill the gaps, instead of one long test at the end
    items.sort(key=lambda item: (item.get_closest_marker("slow") is None, item.get_closest_marker("workflow") is None))


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
