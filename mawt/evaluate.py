"""Held-out evaluation: per-item scores, answer loss and selector statistics.

Greedy exact match is decided by ONE teacher-forced forward pass: greedy decoding
reproduces the gold answer exactly iff the argmax at every answer position (the
final EOS included) is the gold token, because each greedy step then sees the
same prefix as the teacher-forced pass. Generation (batched, left-padded, KV
cache) runs only for the items where that fails: their text is what the lenient
challenge metric, and the strict exact match after normalisation, must read.
`tests/test_evaluate.py` checks that both give the same exact-match decision on
every item.

The same forward pass gives each item's answer cross-entropy and, for MAWT
models, the selector's statistics over every held-out item at the positions that
predict answer tokens (what the tables label "held-out slice usage").
"""

from __future__ import annotations

import torch

from .data import AnswerCollator, encode_example, prompt_text
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


def _selection_sums(model, predicts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int] | None:
    """Summed slice weights (D,), summed policy entropy and the count over `predicts` positions,
    averaged over the model's MAWT layers; None for a model without a learned or mixed selector."""
    from .patching import mawt_layers

    sels = [m.last_selection for m in mawt_layers(model).values() if m.last_selection is not None]
    if not sels:
        return None
    mask = predicts.float()  # (B, L)
    usage = torch.stack([(s.weights.float() * mask[..., None]).sum((0, 1)) for s in sels]).mean(0)  # (D,)
    ents = [(s.policy_entropy.float() * mask).sum() for s in sels if s.log_probs is not None]
    entropy = torch.stack(ents).mean() if ents else None
    return usage, entropy, int(mask.sum())


@torch.no_grad()
def teacher_forced(model, tokenizer, rows: list[dict], max_length: int, batch_size: int = 32):
    """Per item: answer CE (nats/token) and whether greedy decoding reproduces the gold answer;
    plus the held-out selector statistics over answer-predicting positions ({} without MAWT)."""
    model.eval()
    collate = AnswerCollator(tokenizer.pad_token_id)
    losses, greedy = [], []
    usage, entropy, count = None, None, 0
    for i in range(0, len(rows), batch_size):
        encoded = [encode_example(tokenizer, r, max_length) for r in rows[i : i + batch_size]]
        for j, e in enumerate(encoded):
            if all(label == -100 for label in e["labels"]):
                raise ValueError(f"held-out row {i + j}: the prompt alone is longer than max_length={max_length} "
                                 "tokens, so its answer would not be scored; raise train.max_length")
        batch = {k: v.to(model.device) for k, v in collate(encoded).items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
        labels = batch["labels"][:, 1:]  # position t predicts token t + 1
        answer = labels != -100  # (B, L-1)
        tok = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels.clamp_min(0), reduction="none")
        losses += ((tok * answer).sum(1) / answer.sum(1)).tolist()
        greedy += ((logits.argmax(-1) == labels) | ~answer).all(1).tolist()
        sums = _selection_sums(model, torch.nn.functional.pad(answer, (0, 1)))
        if sums is not None:
            u, e, n = sums
            usage = u if usage is None else usage + u
            entropy = e if entropy is None else (entropy + e if e is not None else entropy)
            count += n
    selection = {}
    if usage is not None and count:
        selection = {f"depth_usage_{d}": float(u / count) for d, u in enumerate(usage)}
        if entropy is not None:
            selection["selector_entropy"] = float(entropy / count)
    return losses, greedy, selection


def evaluate_heldout(model, tokenizer, rows: list[dict], max_length: int, batch_size: int = 32,
                     max_new_tokens: int = 24) -> dict:
    """Both scores per item (generation only where the teacher-forced pass says greedy != gold)."""
    losses, greedy, selection = teacher_forced(model, tokenizer, rows, max_length, batch_size)
    todo = [i for i, ok in enumerate(greedy) if not ok]
    generated = dict(zip(todo, generate_answers(model, tokenizer, [rows[i]["challenge"] for i in todo],
                                                batch_size, max_new_tokens), strict=True))
    predictions = []
    for i, r in enumerate(rows):
        if i in generated:
            predictions.append(generated[i])
        else:  # greedy decoding emits exactly the gold tokens, then EOS
            ids = tokenizer(r["answer"], add_special_tokens=False)["input_ids"]
            predictions.append(tokenizer.decode(ids, skip_special_tokens=True).strip())
    result = score_items(rows, predictions)
    for item, loss, ok in zip(result["items"], losses, greedy, strict=True):
        item.update(answer_loss=loss, greedy_gold=ok)
    result.update(heldout_answer_loss=sum(losses) / max(len(losses), 1), generated=len(todo), selection=selection)
    return result


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
