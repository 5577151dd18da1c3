"""Benchmark KV-cache decoding: tokens/s of the base model, MAWT fused and MAWT routed,
side by side in one run.

    python benchmarks/generate.py                    # CPU, ~3 min on 2 cores
    python benchmarks/generate.py --device cuda      # a GPU, bf16

The model has DeepSeek-R1-Distill-Qwen-1.5B's layer geometry (hidden 1536, 12
query heads, 2 KV heads, head_dim 128, MLP 8960) with `--layers` decoder layers
(default 2) and a 2048-token vocabulary, random weights; MAWT replaces the
attention of EVERY layer (the 1.5B's setup patches 1 of 28 layers, where every
ratio below moves toward 1). The MAWT selector is `grpo` over the hidden state in
evaluation mode (argmax: a hard choice), so the same weights run fused (all D
depths, then the one-hot mix) and routed (only the chosen depth). After a prompt of
`--prompt` tokens, `--new` tokens are decoded one at a time with the base model's
own cache (greedy); the time is the decode steps only, the median over
`--repeats` rounds in which the variants alternate.

Writes results/bench/generate.json and results/bench/generate.md (the table, the
target check and a line naming the command, machine and commit).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import markdown  # noqa: E402  (benchmarks/markdown.py)
from attention import R1_DISTILL_QWEN_1_5B  # noqa: E402

from mawt.common.atomic import write_text  # noqa: E402
from mawt.common.environment import environment  # noqa: E402

COLUMNS = ["depth", "base tok/s", "fused tok/s", "fused/base", "routed tok/s", "routed/base"]
TARGET = 0.85  # routed decode throughput at least this share of the base model's


def build(depths: list[int], layers: int, device: str, dtype) -> dict:
    """The base model and, per depth, its fused and routed MAWT versions (same weights)."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    from mawt import MAWTConfig, mawt_layers, patch_model

    torch.manual_seed(0)
    config = Qwen2Config(**{**R1_DISTILL_QWEN_1_5B, "num_hidden_layers": layers, "vocab_size": 2048})
    base = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").to(device, dtype).eval()
    models = {("base", 0): base}
    for depth in depths:
        cfg = MAWTConfig(depth=depth, mixer="grpo", selector_input="hidden", layers=list(range(layers)),
                         init_noise=0.02, path="routed")
        routed = patch_model(copy.deepcopy(base), cfg).to(device, dtype).eval()
        fused = copy.deepcopy(routed)
        for layer in mawt_layers(fused).values():
            layer.mawt = MAWTConfig.from_dict({**layer.mawt.to_dict(), "path": "fused"})
        models[("fused", depth)], models[("routed", depth)] = fused, routed
    return models


@torch.no_grad()
def decode_seconds(model, prompt: torch.Tensor, new: int, device: str) -> float:
    """Prefill the prompt, then `new` greedy single-token steps with the cache: their time."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    logits = model(input_ids=prompt, cache=cache, use_cache=True).logits
    token = logits[:, -1:].argmax(-1)
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(new):
        logits = model(input_ids=token, cache=cache, use_cache=True).logits
        token = logits[:, -1:].argmax(-1)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--depths", type=int, nargs="+", default=[4, 8])
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--prompt", type=int, default=512)
    p.add_argument("--new", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--out", type=Path, default=Path("results/bench/generate.json"))
    a = p.parse_args(argv)
    if a.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is visible", file=sys.stderr)
        return 2
    dtype = torch.bfloat16 if a.device == "cuda" else torch.float32
    models = build(a.depths, a.layers, a.device, dtype)
    prompt = torch.randint(0, 2048, (1, a.prompt), generator=torch.Generator().manual_seed(1)).to(a.device)
    times: dict[tuple, list[float]] = {key: [] for key in models}
    for _ in range(max(a.repeats, 1)):  # variants alternate: drifts of the machine hit them alike
        for key, model in models.items():
            times[key].append(decode_seconds(model, prompt, a.new, a.device))
    rate = {key: a.new / statistics.median(t) for key, t in times.items()}
    base = rate[("base", 0)]
    cells = [[d, f"{base:.1f}", f"{rate[('fused', d)]:.1f}", f"{rate[('fused', d)] / base:.2f}",
              f"{rate[('routed', d)]:.1f}", f"{rate[('routed', d)] / base:.2f}"] for d in a.depths]
    checks = [f"{'ok  ' if rate[('routed', d)] / base >= TARGET else 'MISS'} D={d}: routed/base decode "
              f"throughput {rate[('routed', d)] / base:.2f} (target >= {TARGET})" for d in a.depths]
    text = "\n".join([
        f"KV-cache decoding, batch 1, {a.prompt}-token prompt then {a.new} greedy tokens, the 1.5B's layer "
        f"geometry with {a.layers} layers, MAWT in every layer, {a.device} ({torch.get_num_threads()} threads), "
        f"{'bf16' if a.device == 'cuda' else 'float32'}, median of {a.repeats} rounds:", "",
        markdown.table(COLUMNS, "r" * len(COLUMNS), cells), "", "Targets:", "", "```", *checks, "```"])
    rows = [{"variant": v, "depth": d, "tokens_per_s": rate[(v, d)], "seconds": times[(v, d)]} for v, d in models]
    write_text(a.out, json.dumps({"meta": environment(), "args": {k: str(v) for k, v in vars(a).items()},
                                  "rows": rows}, indent=2))
    markdown.publish(a.out, "Benchmark: KV-cache decoding", text, __file__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
