"""Memory cost of float32 master weights (`train.dtype: bfloat16`) at the 1.5B's geometry.

    python benchmarks/precision_memory.py            # seconds; computed, not measured
    python benchmarks/precision_memory.py --out DIR/precision_memory.json

The model is DeepSeek-R1-Distill-Qwen-1.5B's configuration (mawt.bases.standin.GEOMETRY,
28 layers, vocabulary 151936) built on the `meta` device (shapes only, no
memory), patched with MAWT (D=4 and D=8, last layer) and frozen as the paper
setup's studies freeze it. Per trainable parameter the optimiser holds the
weight, its gradient and AdamW's two moments:

  bf16 everywhere (before):   2 + 2 + 2 + 2 =  8 bytes  (updates below half a bf16 ulp are lost)
  float32 masters (now):      4 + 4 + 4 + 4 = 16 bytes

Frozen weights stay bf16 (2 bytes) in both. Activations are not counted (they
are the same: compute runs in bf16 autocast either way). Writes
results/bench/precision_memory.json, prints a Markdown table and writes the
same text to results/bench/precision_memory.md (under a line naming the
command, machine and commit: benchmarks/markdown.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import markdown  # noqa: E402  (benchmarks/markdown.py)
from mawt import MAWTConfig, freeze, patch_model  # noqa: E402
from mawt.common.atomic import write_text  # noqa: E402
from mawt.bases.standin import GEOMETRY  # noqa: E402

LAYERS, VOCAB = 28, 151936  # the real model's (config.json)
GIB = 2**30
COLUMNS = ["trainable", "D", "trainable params", "weights + grads + AdamW, bf16", "with fp32 masters",
           "extra"]  # of the printed table (docs/paper.md's copy: tested line for line)


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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "precision_memory.json")
    a = ap.parse_args(argv)
    rows = [footprint(t, d) for t, d in (("last", None), ("last", 4), ("last", 8), ("last:2", 4), ("mawt", 4),
                                         ("all", 4))]
    write_text(a.out, json.dumps(rows, indent=2) + "\n")
    cells = [[r["trainable"], r["depth"], f"{r['trainable_parameters'] / 1e6:,.2f} M", f"{r['bf16_gib']:.2f} GiB",
              f"{r['fp32_master_gib']:.2f} GiB", f"+{r['extra_gib'] * 1024:,.0f} MiB"] for r in rows]
    text = (markdown.table(COLUMNS, "l" * len(COLUMNS), cells)
            + f"\n\n(model: {rows[0]['parameters'] / 1e9:.3f} B parameters, {LAYERS} layers)")
    md = markdown.write(markdown.md_path(a.out), "Memory of float32 master weights at the 1.5B's geometry", text,
                        markdown.command(__file__, argv))
    print(text)
    print(f"\nwrote {markdown.shown(a.out)} and {markdown.shown(md)}")


if __name__ == "__main__":
    main()
