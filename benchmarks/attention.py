"""Benchmark one attention layer: the base model's own SDPA attention vs MAWT fused,
routed and materialized, forward + backward time and peak memory, side by side in one run.

    python benchmarks/attention.py                      # CPU table, ~5 min on 2 cores
    python benchmarks/attention.py --device cuda --full-model   # + whole 1.5B training step

The layer has the geometry of DeepSeek-R1-Distill-Qwen-1.5B's attention (hidden
1536, 12 query heads, 2 KV heads, head_dim 128), random weights, batch 1, causal.
MAWT fused and materialized use the `softmax` mixer (the one that computes every
selector statistic; with D=1 no selector exists); routed is the `grpo` mixer with a
hidden-state selector in training mode, one depth per token (D > 1 only). Each configuration runs in a process
of its own (on CPU a fork: `_in_subprocess`) so its peak memory is its own: on CPU the growth of the process's peak RSS during the
first forward+backward, on CUDA torch.cuda.max_memory_allocated. Time is the
median of the steps after that first one (at least --repeats, and at least 1 s).

Writes results/bench/attention.json, prints a Markdown table with the ratios the
targets are stated in (time / base time, materialized peak / fused peak) and the
target checks, and writes the same text to results/bench/attention.md (under a
line naming the command, machine and commit: benchmarks/markdown.py).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import markdown  # benchmarks/markdown.py
from mawt.common.atomic import write_text

COLUMNS = ["length", "depth", "base ms", "fused ms", "fused/base", "routed ms", "routed/base", "materialized ms",
           "mat./base", "base MB", "fused MB", "routed MB", "materialized MB", "mat./fused mem"]  # of the printed table (docs/layer.md's copy: tested)

# DeepSeek-R1-Distill-Qwen-1.5B's config.json (architecture only; weights random).
R1_DISTILL_QWEN_1_5B = dict(
    vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
    num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=131072,
    rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=False, use_sliding_window=False,
)


def _qwen2_config(**overrides):
    from transformers import Qwen2Config

    config = Qwen2Config(**{**R1_DISTILL_QWEN_1_5B, **overrides})
    config._attn_implementation = "sdpa"
    return config


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _peak_bytes(device: str) -> int:
    if device == "cuda":
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


GROUP = 4  # GRPO rollouts per example in the GRPO step rows
GRPO_COLUMNS = ["G", "length", "depth", "fused ms", "routed ms", "routed/fused"]


def measure_layer(variant: str, depth: int, length: int, repeats: int, device: str) -> dict:
    """One configuration, in this process. variant: base | fused | materialized | routed.

    fused and materialized use the `softmax` mixer (every selector statistic); routed is
    the grpo mixer with a hidden-state selector in training mode (one depth per token).
    grpo-fused / grpo-routed: a GRPO step's layer, GROUP identical copies of the row with
    `copies_per_row` = GROUP (K, V once per group), the grpo mixer with a hidden-state selector,
    path fused (all D depths) vs routed (each rollout its own depth per token)."""
    from transformers.models.qwen2.modeling_qwen2 import Qwen2Attention, Qwen2RotaryEmbedding

    from mawt import MAWTAttention, MAWTConfig

    torch.manual_seed(0)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    config = _qwen2_config(num_hidden_layers=1)
    layer = Qwen2Attention(config, layer_idx=0)
    batch = 1
    if variant in ("routed", "grpo-routed", "grpo-fused"):
        path = "fused" if variant == "grpo-fused" else "routed"
        layer = MAWTAttention(layer, MAWTConfig(depth=depth, mixer="grpo", selector_input="hidden", path=path))
        if variant.startswith("grpo-"):
            layer.copies_per_row = batch = GROUP
    elif variant != "base":
        layer = MAWTAttention(layer, MAWTConfig(depth=depth, mixer="softmax", path=variant))
    layer = layer.to(device, dtype).train()
    rotary = Qwen2RotaryEmbedding(config).to(device)
    x = torch.randn(1, length, config.hidden_size, device=device, dtype=dtype).expand(batch, -1, -1)
    x = x.contiguous().requires_grad_(True)  # GRPO: the group's identical copies
    rope = rotary(x, torch.arange(length, device=device)[None])

    def step() -> None:
        out, _ = layer(x, rope, None)
        out.float().sum().backward()

    _sync(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated() if device == "cuda" else _peak_bytes(device)
    step()  # first step: peak memory (and warm-up)
    _sync(device)
    peak = _peak_bytes(device) - before
    times = []
    while len(times) < repeats or sum(times) < 1.0:  # short steps: repeat for >= 1 s
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return {"variant": variant, "depth": depth, "length": length, "device": device,
            "time_s": statistics.median(times), "peak_mb": peak / 2**20}


def measure_full_step(depth: int | None, batch: int, length: int, steps: int) -> dict:
    """Whole training step of the 1.5B architecture (random weights, bf16, CUDA):
    last decoder layer trainable, base (depth=None) vs MAWT on the last layer."""
    from transformers import AutoModelForCausalLM

    from mawt import MAWTConfig, freeze, patch_model

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(_qwen2_config(), attn_implementation="sdpa")
    model = model.to("cuda", torch.bfloat16).train()
    if depth is not None:
        patch_model(model, MAWTConfig(depth=depth, mixer="softmax"))
    freeze(model, "last")
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    ids = torch.randint(0, 151936, (batch, length), device="cuda")

    def step() -> None:
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    return {"variant": "base" if depth is None else f"mawt D={depth}", "batch": batch, "length": length,
            "tokens_per_s": batch * length * steps / elapsed,
            "peak_mb": torch.cuda.max_memory_allocated() / 2**20}


def _in_subprocess(kind: str, **kwargs) -> dict:
    """One configuration in a process of its own (its peak memory is its own). On CPU a fork of this
    process, which has imported torch, transformers and mawt but run no operation (so no thread pool
    exists yet): a forked child's peak RSS starts at its RSS at the fork, not at the parent's peak, and it
    skips the ~8 s of imports. CUDA cannot be used in a fork; there a new interpreter runs it."""
    if kwargs.get("device") == "cpu" and kind == "layer":
        return _in_fork(kwargs)
    cmd = [sys.executable, __file__, "--child", json.dumps({"kind": kind, **kwargs})]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child {kwargs} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _in_fork(spec: dict) -> dict:
    import os
    import traceback

    import mawt.layer.attention  # noqa: F401  (imported once, here, before any fork)
    from transformers.models.qwen2 import modeling_qwen2  # noqa: F401

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: measure, send one JSON line (or the traceback), never return into the parent's code
        os.close(read)
        code = 0
        try:
            text = json.dumps(measure_layer(**spec))
        except BaseException:  # noqa: BLE001  (reported to the parent, which raises)
            text, code = traceback.format_exc(), 1
        with os.fdopen(write, "w") as pipe:
            pipe.write(text)
        os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"benchmark child {spec} failed:\n{text[-2000:]}")
    return json.loads(text)


def _table(rows: list[dict]) -> str:
    base = {(r["length"]): r for r in rows if r["variant"] == "base"}
    by_key = {(r["variant"], r["depth"], r["length"]): r for r in rows}
    cells = []
    for (variant, depth, length), fused in sorted(by_key.items(), key=lambda kv: (kv[0][2], kv[0][1])):
        if variant != "fused":
            continue
        b, m = base[length], by_key[("materialized", depth, length)]
        r = by_key.get(("routed", depth, length))  # none at D=1: nothing to route
        cells.append([length, depth, f"{b['time_s'] * 1e3:.0f}", f"{fused['time_s'] * 1e3:.0f}",
                      f"{fused['time_s'] / b['time_s']:.2f}", f"{r['time_s'] * 1e3:.0f}" if r else "-",
                      f"{r['time_s'] / b['time_s']:.2f}" if r else "-", f"{m['time_s'] * 1e3:.0f}",
                      f"{m['time_s'] / b['time_s']:.2f}", f"{b['peak_mb']:.0f}", f"{fused['peak_mb']:.0f}",
                      f"{r['peak_mb']:.0f}" if r else "-", f"{m['peak_mb']:.0f}",
                      f"{m['peak_mb'] / max(fused['peak_mb'], 1e-9):.1f}"])
    return markdown.table(COLUMNS, "r" * len(COLUMNS), cells)


def _grpo_table(rows: list[dict]) -> str:
    get = {(r["variant"], r["depth"], r["length"]): r for r in rows}
    cells = [[GROUP, length, depth, f"{f['time_s'] * 1e3:.0f}", f"{get[('grpo-routed', depth, length)]['time_s'] * 1e3:.0f}",
              f"{get[('grpo-routed', depth, length)]['time_s'] / f['time_s']:.2f}"]
             for (variant, depth, length), f in sorted(get.items(), key=lambda kv: (kv[0][2], kv[0][1]))
             if variant == "grpo-fused" and ("grpo-routed", depth, length) in get]
    return markdown.table(GRPO_COLUMNS, "r" * len(GRPO_COLUMNS), cells) if cells else ""


def _targets(rows: list[dict]) -> list[str]:
    get = {(r["variant"], r["depth"], r["length"]): r for r in rows}
    out = []
    for (variant, depth, length), r in sorted(get.items()):
        if variant != "fused":
            continue
        ratio = r["time_s"] / get[("base", 0, length)]["time_s"]
        limit = 1.5 if depth == 1 else 1.5 * depth
        out.append(f"{'ok  ' if ratio <= limit else 'MISS'} L={length} D={depth}: fused/base time "
                   f"{ratio:.2f} (target <= {limit:g})")
    for (variant, depth, length), r in sorted(get.items()):
        if variant == "routed" and depth == 8 and length in (1024, 2048):
            ratio = r["time_s"] / get[("base", 0, length)]["time_s"]
            out.append(f"{'ok  ' if ratio <= 1.3 else 'MISS'} L={length} D=8: routed/base time {ratio:.2f} "
                       "(target <= 1.3)")
    for length in sorted({k[2] for k in get}):
        fused, routed = get.get(("grpo-fused", 8, length)), get.get(("grpo-routed", 8, length))
        if fused and routed:
            ratio = routed["time_s"] / fused["time_s"]
            out.append(f"{'ok  ' if ratio <= 0.6 else 'MISS'} L={length} D=8 G={GROUP}: GRPO step routed/fused time "
                       f"{ratio:.2f} (target <= 0.6)")
    if ("fused", 4, 2048) in get:
        mem = get[("materialized", 4, 2048)]["peak_mb"] / get[("fused", 4, 2048)]["peak_mb"]
        out.append(f"{'ok  ' if mem >= 4 else 'MISS'} L=2048 D=4: materialized/fused peak memory {mem:.1f} (target >= 4)")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 2048])
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--grpo-depths", type=int, nargs="*", default=[8],
                        help="depths of the GRPO-step rows (fused vs routed, G=4); none: skip them")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--full-model", action="store_true", help="also a whole 1.5B training step (CUDA only)")
    parser.add_argument("--out", type=Path, default=Path("results/bench/attention.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        spec = json.loads(args.child)
        kind = spec.pop("kind")
        result = measure_layer(**spec) if kind == "layer" else measure_full_step(**spec)
        print(json.dumps(result))
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is visible", file=sys.stderr)
        return 2
    if args.full_model and args.device != "cuda":
        print("error: --full-model needs --device cuda (a 1.5B bf16 training step)", file=sys.stderr)
        return 2

    rows = []
    for length in args.lengths:
        configs = [("base", 0)] + [(v, d) for d in args.depths for v in ("fused", "routed", "materialized")
                                   if v != "routed" or d > 1]
        configs += [(v, d) for d in args.grpo_depths for v in ("grpo-fused", "grpo-routed")]
        for variant, depth in configs:
            row = _in_subprocess("layer", variant=variant, depth=depth, length=length,
                                 repeats=args.repeats, device=args.device)
            print(f"  {variant:>12} D={depth} L={length}: {row['time_s'] * 1e3:8.1f} ms  {row['peak_mb']:8.1f} MB",
                  file=sys.stderr)
            rows.append(row)
    full = []
    if args.full_model:
        for depth in (None, 4):
            full.append(_in_subprocess("full", depth=depth, batch=4, length=1024, steps=5))

    import transformers

    meta = {"device": args.device, "platform": platform.platform(), "processor": platform.processor(),
            "cpu_threads": torch.get_num_threads(), "torch": torch.__version__,
            "transformers": transformers.__version__,
            "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None}
    write_text(args.out, json.dumps({"meta": meta, "layer": rows, "full_step": full}, indent=2))

    report = [f"One attention layer, forward+backward, batch 1, {args.device} ({meta['cpu_threads']} threads), "
              f"{'bf16' if args.device == 'cuda' else 'float32'}:", "", _table(rows)]
    if _grpo_table(rows):
        report += ["", f"The layer in a GRPO step: {GROUP} rollouts of one row (K, V once per group), grpo mixer "
                       "over the hidden state, forward+backward:", "", _grpo_table(rows)]
    for row in full:
        report += ["", f"full 1.5B step, {row['variant']}: {row['tokens_per_s']:.0f} tokens/s, "
                       f"peak {row['peak_mb']:.0f} MB"]
    report += ["", "Targets:", "", "```", *_targets(rows), "```"]
    text = "\n".join(report)
    markdown.publish(args.out, "Benchmark: one attention layer", text, __file__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
