"""Command line: `python -m mawt --help` lists the commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    """Patch a tiny random Qwen2, show the 5D attention, check the identity property."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from . import MAWTConfig, capture, freeze, patch_model

    torch.manual_seed(args.seed)
    config = Qwen2Config(
        vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
    )
    base = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").eval()
    ids = torch.randint(0, config.vocab_size, (2, 16))
    mask = torch.ones_like(ids)
    mask[0, :5] = 0  # left padding in the first row
    with torch.no_grad():
        ref = base(input_ids=ids, attention_mask=mask).logits
        model = patch_model(base, MAWTConfig(depth=args.depth, mixer=args.mixer, init_noise=0.0))
        with capture(model) as cap:
            out = model(input_ids=ids, attention_mask=mask).logits
    diff = (out - ref)[mask.bool()].abs().max().item()
    (layer, probs), = cap.attentions.items()
    print(model.model.layers[layer].self_attn)
    print(f"5D attention of layer {layer}: (batch, heads, q, k, depth) = {tuple(probs.shape)}")
    print(f"max |patched - base| logits with init_noise=0: {diff:.2e} (must be <= 1e-5)")
    print(f"trainable parameters with freeze('last'): {freeze(model, 'last'):,}")
    return 0 if diff <= 1e-5 else 1


def _pretrain_micro(args: argparse.Namespace) -> int:
    from .micro import MicroConfig, pretrain
    from .runconfig import _build

    cfg = MicroConfig()
    if args.config:
        import yaml

        cfg = _build(MicroConfig, yaml.safe_load(Path(args.config).read_text()) or {}, args.config)
    pretrain(cfg, Path(args.out))
    print(f"micro base model written to {args.out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from .run import train_run
    from .runconfig import load_run_config

    summary = train_run(load_run_config(args.config), Path(args.out))
    print(json.dumps({k: summary[k] for k in ("trainable_parameters", "train_loss", "heldout_answer_loss",
                                              "train_seconds")}, indent=2))
    return 0


def _eval_heldout(args: argparse.Namespace) -> int:
    from .run import eval_heldout

    result = eval_heldout(Path(args.model), Path(args.heldout), Path(args.out), args.batch_size,
                          args.max_new_tokens)
    print(json.dumps({k: result[k] for k in ("n", "exact_match", "challenge_metric", "heldout_answer_loss")},
                     indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mawt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="patch a tiny random model and print the 5D attention")
    demo.add_argument("--depth", type=int, default=4)
    demo.add_argument("--mixer", default="grpo")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)

    pre = sub.add_parser("pretrain-micro", help="pre-train the micro base model on synthetic puzzles")
    pre.add_argument("--config", help="YAML with MicroConfig fields (default: built-in)")
    pre.add_argument("--out", required=True, help="directory for save_pretrained")
    pre.set_defaults(func=_pretrain_micro)

    train = sub.add_parser("train", help="fine-tune one run (patch, freeze, train, save)")
    train.add_argument("--config", required=True, help="run YAML (see mawt/runconfig.py)")
    train.add_argument("--out", required=True, help="run directory (resumes from its last checkpoint)")
    train.set_defaults(func=_train)

    ev = sub.add_parser("eval-heldout", help="greedy answers and both scores on the held-out split")
    ev.add_argument("--model", required=True, help="save_pretrained directory (MAWT or plain)")
    ev.add_argument("--heldout", required=True, help="held-out rows (JSONL, e.g. RUN/data/heldout.jsonl)")
    ev.add_argument("--out", required=True, help="JSON with per-item predictions and scores")
    ev.add_argument("--batch-size", type=int, default=32)
    ev.add_argument("--max-new-tokens", type=int, default=24)
    ev.set_defaults(func=_eval_heldout)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:  # user mistakes: one clear line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    except FloatingPointError as err:  # a diverging run: say where, write no metrics
        print(f"error: {err}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
