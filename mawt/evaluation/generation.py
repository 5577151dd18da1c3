"""Generation for held-out evaluation: `generate` (n samples per prompt, to EOS or the
budget) and the explicit settings of every call (`generation_config`).

Decoding settings come from the EvalConfig only, never from the checkpoint's
generation_config.json: greedy is the plain argmax (`do_sample=False`, no logits
processor: no repetition penalty, n-gram ban, minimum length, banned words, top-k /
top-p / temperature); sampling uses `eval.temperature` and `eval.top_p` with no
top-k cut. transformers fills every field a `generate` call leaves unset (None in
its GenerationConfig) from `model.generation_config`, so passing explicit settings
alone would still inherit, say, a `repetition_penalty: 1.3` of the checkpoint:
the items evaluate.py's teacher-forced shortcut accepts would be scored as argmax
decoding, the others as penalised decoding. So both: `generate` passes one explicit
`generation_config` and, for the call, swaps the model's own config for
`mawt.training.models.plain_generation_config` (token ids only), whatever model it is
given; and `load_checkpoint` installs that plain config on every model it loads
for evaluation, which also covers lm-eval (mawt.evaluation.lmeval), whose HFLM calls
`model.generate` itself. `tests/test_honest_eval.py` checks this against a
hand-written argmax loop on a base whose file sets `repetition_penalty` and
`no_repeat_ngram_size`.
"""

from __future__ import annotations

import contextlib

import torch

from mawt.data.prompts import prompt_text
from mawt.training.models import plain_generation_config
from mawt.training.runconfig import EvalConfig


def generation_config(tokenizer, cfg: EvalConfig):
    """The explicit settings of every `generate` call: greedy is `do_sample=False` and nothing
    else (plain argmax); sampling is `cfg.temperature` and `cfg.top_p`, no top-k cut. The
    budget, `cfg.n_samples` per prompt, stopping at the tokenizer's EOS only."""
    from transformers import GenerationConfig

    sampling = {"do_sample": False} if cfg.greedy else {
        "do_sample": True, "temperature": float(cfg.temperature), "top_p": float(cfg.top_p), "top_k": 0}
    return GenerationConfig(max_new_tokens=cfg.max_new_tokens, num_return_sequences=cfg.n_samples, use_cache=True,
                            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **sampling)


@contextlib.contextmanager
def _plain_defaults(model, tokenizer):
    """The model's own generation config replaced by `plain_generation_config` for the block, so
    that what `generation_config` leaves unset is never filled from the checkpoint's file."""
    own = model.generation_config
    model.generation_config = plain_generation_config(model, tokenizer)
    try:
        yield
    finally:
        model.generation_config = own


@torch.no_grad()
def generate(model, tokenizer, prompts: list[str], cfg: EvalConfig) -> list[list[dict]]:
    """`cfg.n_samples` answers per prompt: left-padded batches, KV cache on, stopped by EOS or
    the budget only, with `generation_config` and nothing from the model's own generation
    config. Each sample: {"text": decoded answer (special tokens dropped, stripped),
    "tokens": generated tokens incl. EOS, "eos": whether EOS came within the budget}."""
    model.eval()
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    eos = tokenizer.eos_token_id
    settings = generation_config(tokenizer, cfg)
    samples: list[list[dict]] = []
    try:
        with _plain_defaults(model, tokenizer):
            for i in range(0, len(prompts), cfg.batch_size):
                enc = tokenizer(prompts[i : i + cfg.batch_size], return_tensors="pt", padding=True,
                                add_special_tokens=False).to(model.device)
                if not cfg.greedy:
                    torch.manual_seed(cfg.seed * 1_000_003 + i)  # a batch's draws depend only on the config
                out = model.generate(**enc, generation_config=settings)
                new = out[:, enc["input_ids"].shape[1] :].tolist()
                for j in range(0, len(new), cfg.n_samples):
                    group = []
                    for ids in new[j : j + cfg.n_samples]:
                        ended = eos in ids
                        ids = ids[: ids.index(eos) + 1] if ended else ids
                        text = tokenizer.decode(ids, skip_special_tokens=True).strip()
                        group.append({"text": text, "tokens": len(ids), "eos": ended})
                    samples.append(group)
    finally:
        tokenizer.padding_side = side
    return samples


def generate_answers(model, tokenizer, challenges: list[str], cfg: EvalConfig | None = None) -> list[str]:
    """The first sample's answer text per challenge, in the evaluation's prompt format."""
    cfg = cfg or EvalConfig()
    prompts = [prompt_text(tokenizer, c, cfg.thinking) for c in challenges]
    return [group[0]["text"] for group in generate(model, tokenizer, prompts, cfg)]
