"""Command line: `python -m mawt --help` lists the commands."""

from __future__ import annotations

import argparse
import sys


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mawt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="patch a tiny random model and print the 5D attention")
    demo.add_argument("--depth", type=int, default=4)
    demo.add_argument("--mixer", default="grpo")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:  # user mistakes: one clear line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
