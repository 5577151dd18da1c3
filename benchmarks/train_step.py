"""Benchmark one optimizer step of fine-tuning, side by side in one run:

  plain         last-layer fine-tuning, no MAWT
  softmax       MAWT D=4, softmax mixer
  grpo+reuse    MAWT D=4, GRPO with G=4, frozen prefix run once per step
  grpo-reuse    the same without frozen-prefix reuse (G full forward passes)

    python benchmarks/train_step.py            # CPU, ~1.5 minutes on 2 cores
    python benchmarks/train_step.py --device cuda

The model is deep enough that the frozen prefix dominates: micro Qwen2s (128
wide, random weights) of 12 and 28 layers (28 = the 1.5B target's depth) with
only the last decoder layer trainable
(plus MAWT parameters), batch 16 synthetic puzzles. Steps run through the real
`MAWTTrainer`; the time of each optimizer step is taken by a TrainerCallback and
the median over the steps after --warmup is reported. Writes
results/bench/train_step.json, and the printed table and target checks to
results/bench/train_step.md (under a line naming the command, machine and
commit: benchmarks/markdown.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import TrainerCallback, TrainingArguments, set_seed

import markdown  # benchmarks/markdown.py
from mawt import MAWTConfig, freeze, patch_model
from mawt.common.atomic import write_text
from mawt.data.prompts import AnswerCollator, encode_example
from mawt.bases.micro import MicroConfig, build_model, train_tokenizer
from mawt.data.puzzles import generate
from mawt.training.runconfig import TrainConfig
from mawt.training.trainer import MAWTTrainer

VARIANTS = {
    "plain": (None, True),
    "softmax": (MAWTConfig(depth=4, mixer="softmax"), True),
    "grpo+reuse": (MAWTConfig(depth=4, mixer="grpo"), True),
    "grpo-reuse": (MAWTConfig(depth=4, mixer="grpo"), False),
}
COLUMNS = ["layers"] + [f"{v} ms (x plain)" for v in VARIANTS]  # of the printed table (docs/grpo.md's copy: tested)


class StepTimer(TrainerCallback):
    def __init__(self):
        self.times: list[float] = []
        self._t0 = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self._t0)


def measure(variant: str, layers: int, steps: int, warmup: int, batch: int, device: str, tmp: Path) -> dict:
    mawt_cfg, reuse = VARIANTS[variant]
    set_seed(0)
    tok = train_tokenizer()
    model = build_model(MicroConfig(num_layers=layers), tok).to(device)
    if mawt_cfg is not None:
        patch_model(model, mawt_cfg)
    n_trainable = freeze(model, "last")
    rows = generate(batch * (steps + warmup), ["reverse", "shift_two"], seed=0)
    examples = [encode_example(tok, r, 128) for r in rows]
    run = TrainConfig(group_size=4, reuse_prefix=reuse)
    args = TrainingArguments(output_dir=str(tmp / variant), max_steps=steps + warmup,
                             per_device_train_batch_size=batch, learning_rate=1e-3, save_strategy="no",
                             report_to=[], logging_steps=10_000, use_cpu=device == "cpu", disable_tqdm=True,
                             dataloader_num_workers=0, remove_unused_columns=False)
    timer = StepTimer()
    use_grpo = mawt_cfg is not None and mawt_cfg.mixer == "grpo"
    trainer = MAWTTrainer(model=model, args=args, train_dataset=examples,
                          data_collator=AnswerCollator(tok.pad_token_id), run=run, use_grpo=use_grpo,
                          callbacks=[timer])
    trainer.train()
    return {"variant": variant, "step_s": statistics.median(timer.times[warmup:]), "trainable": n_trainable,
            "prefix_calls": trainer.grpo_loss.prefix_calls if trainer.grpo_loss is not None else 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, nargs="+", default=[12, 28],
                        help="model depths (28 = DeepSeek-R1-Distill-Qwen-1.5B's); targets are checked at the last")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--out", type=Path, default=Path("results/bench/train_step.json"))
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is visible", file=sys.stderr)
        return 2

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rows = [{**measure(v, n, args.steps, args.warmup, args.batch, args.device, Path(tmp)), "layers": n}
                for n in args.layers for v in VARIANTS]
    by = {(r["layers"], r["variant"]): r for r in rows}
    write_text(args.out, json.dumps({"device": args.device, "layers": args.layers, "batch": args.batch,
                                     "torch": torch.__version__, "rows": rows}, indent=2))
    cells = []
    for n in args.layers:
        plain = by[(n, "plain")]["step_s"]
        cells.append([n] + [f"{by[(n, v)]['step_s'] * 1e3:.1f} ({by[(n, v)]['step_s'] / plain:.2f})"
                            for v in VARIANTS])
    checks = []
    for n in args.layers:
        reuse_ratio = by[(n, "grpo+reuse")]["step_s"] / by[(n, "plain")]["step_s"]
        speedup = by[(n, "grpo-reuse")]["step_s"] / by[(n, "grpo+reuse")]["step_s"]
        checks.append(f"{'ok  ' if reuse_ratio <= 1.6 else 'MISS'} {n} layers: GRPO (G=4) with reuse / plain = "
                      f"{reuse_ratio:.2f} (target <= 1.6)")
        checks.append(f"{'ok  ' if speedup >= 2 else 'MISS'} {n} layers: GRPO without reuse / with reuse = "
                      f"{speedup:.2f} (target >= 2)")
    text = "\n".join([
        f"One optimizer step, micro Qwen2 (128 wide), last layer trainable, batch {args.batch}, "
        f"{args.device} ({torch.get_num_threads()} threads), median of {args.steps} steps:", "",
        markdown.table(COLUMNS, "r" * len(COLUMNS), cells), "", "Targets:", "", "```", *checks, "```"])
    markdown.publish(args.out, "Benchmark: one optimizer step", text, __file__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
