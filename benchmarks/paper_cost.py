"""Per-job cost ESTIMATE of the paper setup (the real 1.5B), from a stand-in run scaled by FLOPs.

    snakemake --cores all --config setup=paper_standin      # measure (the stand-in, this machine)
    python benchmarks/paper_cost.py [--results results/paper_standin] [--out results/bench/paper_cost.json]

The stand-in (workflow/setups/paper_standin.yaml) runs the paper path with the
1.5B's layer geometry but 2 of its 28 layers, a 2k vocabulary instead of 152k,
4 optimiser steps instead of 200 and 24 new tokens instead of 2048. Each
measured time (training: run.json's train_seconds, the optimiser steps only;
evaluation: the job's wall time, start-up included, so that estimate is high) is
multiplied by

    FLOPs(real job) / FLOPs(stand-in job)

with FLOPs per token counted from the layer structure (not the total parameter
count, since GRPO runs only the trainable suffix G times):

    train step: tokens x [2 P_layer (L - 1)  +  R (6 P_layer + 4 P_head)]   (frozen prefix once,
                 the trainable last layer forward + backward and the head R times; R = G for GRPO)
    evaluation: tokens x 2 (L P_layer + P_head)    (prompt tokens, and every generated token)

Tokens are counted with the stand-in's tokenizer (a 2k BPE: the real 152k one
is more compact, so this overestimates too). These are ESTIMATES for this CPU; the GPU
column assumes an H200 at 30% of its 989 TFLOP/s dense bf16 for training and
prefill, and decoding bound by reading the bf16 weights (3.6 GB) at 50% of
4.8 TB/s per step of a batch. Prints a Markdown table; writes
results/bench/paper_cost.json, and the table to results/bench/paper_cost.md
(under a line naming the command, machine and commit: benchmarks/markdown.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import markdown  # noqa: E402  (benchmarks/markdown.py)
from mawt.common.atomic import write_text  # noqa: E402
from mawt.bases.standin import GEOMETRY  # noqa: E402

REAL = {"layers": 28, "vocab": 151936, "steps": 200, "max_new_tokens": 2048, "eval_batch": 8}
COLUMNS = ["job (ESTIMATE for the real 1.5B)", "stand-in runs", "stand-in measured (s, mean)", "FLOP ratio",
           "CPU estimate (h)", "H200 estimate (s)"]  # of the printed table (docs/paper.md's copy: tested)
H200_FLOPS, MFU, WEIGHT_BYTES, BANDWIDTH = 989e12, 0.30, 3.55e9, 0.5 * 4.8e12


def layer_params() -> int:
    h, i, heads, kv = (GEOMETRY[k] for k in ("hidden_size", "intermediate_size", "num_attention_heads",
                                              "num_key_value_heads"))
    d = h // heads
    return h * heads * d + 2 * h * kv * d + heads * d + 2 * kv * d + heads * d * h + 3 * h * i + 2 * h


def train_flops(tokens: float, layers: int, vocab: int, rollouts: int) -> float:
    p, head = layer_params(), vocab * GEOMETRY["hidden_size"]
    return tokens * (2 * p * (layers - 1) + rollouts * (6 * p + 4 * head))


def forward_flops(tokens: float, layers: int, vocab: int) -> float:
    return tokens * 2 * (layers * layer_params() + vocab * GEOMETRY["hidden_size"])


def bench_seconds(path: Path) -> float:
    return float(pd.read_csv(path, sep="\t")["s"].iloc[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results/paper_standin")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "paper_cost.json")
    a = ap.parse_args(argv)
    res = Path(a.results)
    bench = Path(str(res).replace("results/", "results/benchmarks/", 1))
    missing = [p for p in (res / "base" / "model" / "config.json", res / "runs") if not p.exists()]
    if missing or not any((res / "data").glob("*/train.jsonl")):
        sys.exit(f"paper_cost: {res} has no finished stand-in run (missing: "
                 f"{', '.join(map(str, missing)) or str(res / 'data' / '*' / 'train.jsonl')}); run "
                 "`snakemake --cores all --config setup=paper_standin` first, or pass --results")
    base = json.loads((res / "base" / "model" / "config.json").read_text())
    L, V = base["num_hidden_layers"], base["vocab_size"]
    from transformers import AutoTokenizer

    from mawt.data.split import read_jsonl
    from mawt.data.prompts import encode_example, prompt_text

    tok = AutoTokenizer.from_pretrained(res / "base" / "model")
    split = next((res / "data").glob("*/train.jsonl")).parent
    per_row = statistics.mean(len(encode_example(tok, r, 10**6)["input_ids"]) for r in read_jsonl(split / "train.jsonl"))
    prompts = [len(tok(prompt_text(tok, r["challenge"]), add_special_tokens=False)["input_ids"])
               for r in read_jsonl(split / "heldout.jsonl")]
    rows = []
    for run in sorted(p for p in (res / "runs").iterdir() if (p / "run.json").exists()):
        info = json.loads((run / "run.json").read_text())
        cfg, t = info["config"], info["config"]["train"]
        grpo = (cfg.get("mawt") or {}).get("mixer") == "grpo" and (cfg["mawt"].get("depth") or 1) > 1
        R = t["group_size"] if grpo else 1
        tokens_step = t["batch_size"] * per_row
        real_step = train_flops(tokens_step, REAL["layers"], REAL["vocab"], R)
        ratio = real_step / train_flops(tokens_step, L, V, R)
        name = f"train, {cfg['mawt'].get('mixer')} D={cfg['mawt'].get('depth')}" + (f" (G={R})" if grpo else "")
        rows.append({"job": f"{name}, {REAL['steps']} steps", "stand-in measured s": info["train_seconds"],
                     "FLOP ratio": ratio,
                     "real CPU estimate h": info["train_seconds"] / t["steps"] * ratio * REAL["steps"] / 3600,
                     "real H200 estimate s": real_step * REAL["steps"] / (H200_FLOPS * MFU)})
    evals = sorted((bench / "eval_heldout").glob("*.tsv"))  # the median job: the typical evaluation
    if evals:
        held = [json.loads(p.read_text()) for p in (res / "runs").glob("*/eval-*/heldout.json")]
        n = held[0]["n"]
        standin = forward_flops(sum(prompts) + statistics.mean(h["mean_output_tokens"] for h in held) * n, L, V)
        seconds = statistics.median(bench_seconds(p) for p in evals)
        for label, budget, samples in (("greedy, 2048 tokens", REAL["max_new_tokens"], 1),
                                       ("DeepSeek protocol: 32768 tokens, n=4", 32768, 4)):
            real = forward_flops((sum(prompts) + budget * n) * samples, REAL["layers"], REAL["vocab"])
            decode_s = budget * samples * -(-n // REAL["eval_batch"]) * WEIGHT_BYTES / BANDWIDTH
            rows.append({"job": f"eval-heldout, {n} items, {label} (every sample to the budget)",
                         "stand-in measured s": seconds, "FLOP ratio": real / standin,
                         "real CPU estimate h": seconds * real / standin / 3600, "real H200 estimate s": decode_s,
                         "runs": len(evals)})
    grouped: dict[str, list[dict]] = {}  # one row per kind of job: the mean over its runs
    for r in rows:
        grouped.setdefault(r["job"], []).append(r)
    rows = [{**g[0], **{k: statistics.mean(x[k] for x in g) for k in g[0] if k not in ("job", "runs")},
             "runs": sum(x.get("runs", 1) for x in g)} for g in grouped.values()]
    write_text(a.out, json.dumps(rows, indent=2) + "\n")
    text = markdown.table(COLUMNS, "lrrrrr", [
        [r["job"], r["runs"], f"{r['stand-in measured s']:.1f}", f"{r['FLOP ratio']:.0f}",
         f"{r['real CPU estimate h']:.1f}", f"{r['real H200 estimate s']:.1f}"] for r in rows])
    markdown.write(markdown.md_path(a.out), "Per-job cost ESTIMATE for the real 1.5B (from the stand-in)", text,
                   markdown.command(__file__, argv))
    print(text)


if __name__ == "__main__":
    main()
