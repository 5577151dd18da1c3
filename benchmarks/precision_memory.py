"""Memory cost of float32 master weights (`train.dtype: bfloat16`) at the 1.5B's geometry.

    python benchmarks/precision_memory.py            # seconds; computed, not measured

The model is DeepSeek-R1-Distill-Qwen-1.5B's configuration (mawt.standin.GEOMETRY,
28 layers, vocabulary 151936) built on the `meta` device (shapes only, no
memory), patched with MAWT (D=4 and D=8, last layer) and frozen as the paper
setup's studies freeze it. Per trainable parameter the optimiser holds the
weight, its gradient and AdamW's two moments:

  bf16 everywhere (before):   2 + 2 + 2 + 2 =  8 bytes  (updates below half a bf16 ulp are lost)
  float32 masters (now):      4 + 4 + 4 + 4 = 16 bytes

Frozen weights stay bf16 (2 bytes) in both. Activations are not counted (they
are the same: compute runs in bf16 autocast either way). Writes
results/bench/precision_memory.json and prints a Markdown table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mawt import MAWTConfig, freeze, patch_model  # noqa: E402
from mawt.standin import GEOMETRY  # noqa: E402

LAYERS, VOCAB = 28, 151936  # the real model's (config.json)
GIB = 2**30


def footprint(trainable: str, depth: int | None) -> dict:
    config = Qwen2Config(**GEOMETRY, num_hidden_layers=LAYERS, vocab_size=VOCAB)
    with torch.device("meta"):
        model = Qwen2ForCausalLM(config)
        if depth:
            patch_model(model, MAWTConfig(depth=depth, mixer="grpo"))
    n_train = freeze(model, trainable)
    n_all = sum(p.numel() for p in model.parameters())
    frozen = (n_all - n_train) * 2
    return {"trainable": trainable, "depth": depth or 1, "parameters": n_all, "trainable_parameters": n_train,
            "bf16_gib": (frozen + 8 * n_train) / GIB, "fp32_master_gib": (frozen + 16 * n_train) / GIB,
            "extra_gib": 8 * n_train / GIB}


def main() -> None:
    rows = [footprint(t, d) for t, d in (("last", None), ("last", 4), ("last", 8), ("last:2", 4), ("mawt", 4),
                                         ("all", 4))]
    out = ROOT / "results" / "bench" / "precision_memory.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print("| trainable | D | trainable params | weights + grads + AdamW, bf16 | with fp32 masters | extra |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['trainable']} | {r['depth']} | {r['trainable_parameters'] / 1e6:,.2f} M | "
              f"{r['bf16_gib']:.2f} GiB | {r['fp32_master_gib']:.2f} GiB | +{r['extra_gib'] * 1024:,.0f} MiB |")
    print(f"\n(model: {rows[0]['parameters'] / 1e9:.3f} B parameters, 28 layers; written to {out.relative_to(ROOT)})")


if __name__ == "__main__":
    main()
