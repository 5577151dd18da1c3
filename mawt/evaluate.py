"""Held-out evaluation: batched greedy generation with the KV cache, both scores per item."""

from __future__ import annotations

import torch

from .data import prompt_text
from .scoring import challenge_correct, exact_match


@torch.no_grad()
def generate_answers(model, tokenizer, challenges: list[str], batch_size: int = 32,
                     max_new_tokens: int = 32) -> list[str]:
    """Greedy answers, left-padded batches, KV cache on; text after the prompt, up to eos."""
    model.eval()
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    answers = []
    try:
        for i in range(0, len(challenges), batch_size):
            prompts = [prompt_text(tokenizer, c) for c in challenges[i : i + batch_size]]
            enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            answers += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
    return [a.strip() for a in answers]


def score_items(rows: list[dict], predictions: list[str]) -> dict:
    """Per-item records and the two aggregate scores (fractions in [0, 1])."""
    items = [
        {"challenge": r["challenge"], "answer": r["answer"], "prediction": p,
         "exact_match": exact_match(p, r["answer"]), "challenge_correct": challenge_correct(p, r["answer"]),
         **({"family": r["family"]} if "family" in r else {})}
        for r, p in zip(rows, predictions, strict=True)
    ]
    n = max(len(items), 1)
    return {
        "n": len(items),
        "exact_match": sum(i["exact_match"] for i in items) / n,
        "challenge_metric": sum(i["challenge_correct"] for i in items) / n,
        "items": items,
    }
