"""Held-out evaluation: per-item scores, answer loss, selector statistics, and
the reasoning-model quantities (output length, closed thinking, truncation).

Everything is set by one `EvalConfig` (mawt/training/runconfig.py): budget, sampling,
thinking mode, batch size, answer-loss length.

Generation runs to EOS or the budget (`eval.max_new_tokens`), nothing else stops
it: a reasoning model's thinking holds newlines. Per sample it records the
generated tokens (EOS included), whether EOS came before the budget (else the
sample is *truncated*) and whether its thinking closed; the scores are those of
mawt.evaluation.scoring: `challenge_metric` (the published checker), `challenge_strict`
(wrong unless the thinking closed) and `exact_match`. With `n_samples` > 1
(temperature > 0) an item's score is the mean over its samples: pass@1
estimated from n samples (DeepSeek-R1's protocol), which the tables then treat
as the item's score (mawt/statistics/intervals.py: the samples' noise is inside the item means).

Decoding (`generate`: the settings of every call) is mawt/evaluation/generation.py.

Greedy exact match is decided by ONE teacher-forced forward pass when the prompt
leaves no thinking open: greedy decoding reproduces the gold answer exactly iff
the argmax at every answer position (the final EOS included) is the gold token,
because each greedy step then sees the same prefix as the teacher-forced pass.
The gold token must be the UNIQUE argmax: where its logit equals the largest
other one (exact top-1 ties happen in bf16), which token wins depends on the
kernel (the cached decoding step need not round like the full forward pass), and
accepting the tie would only ever inflate a score; such an item is generated.
Generation runs only for the items where that fails. `tests/test_evaluate.py`
checks that both give the same decisions on every item. With sampling, or with
native thinking, every item is generated.

The same forward pass gives each item's answer cross-entropy (in the training
prompt format: after an empty think block for a reasoning model) and, for MAWT
models, the selector's statistics over every held-out item at the positions that
predict answer tokens (what the tables label "depth usage (held-out)").
"""

from __future__ import annotations

from pathlib import Path

import torch

from mawt.common import atomic
from mawt.data.split import read_jsonl
from mawt.data.prompts import AnswerCollator, encode_example, prompt_text, think_open
from mawt.common.environment import environment
from mawt.training.models import load_checkpoint
from mawt.training.prefix import frozen_state
from mawt.training.runconfig import EvalConfig
from mawt.evaluation.divergence import depth_divergence
from mawt.evaluation.worth import depth_worth
from mawt.layer.depthwise import run_layers
from mawt.layer.selection import last_selections, selection_stats
from mawt.evaluation.generation import generate
from mawt.evaluation.scoring import SCORES, challenge_metric, challenge_strict, exact_match, think_closed


@torch.no_grad()
def teacher_forced(model, tokenizer, rows: list[dict], max_length: int, batch_size: int = 32,
                   prefixes: list | None = None, shared: dict | None = None):
    """Per item: answer CE (nats/token) and whether greedy decoding surely reproduces the gold
    answer (the gold token the unique argmax at every answer position: a tie is left to
    generation); plus the held-out selector statistics over answer-predicting positions
    ({} without MAWT).

    The model's own layers, final norm and head in its own dtype (the logits greedy decoding
    reads), computed only where these read: the last layer at the answer cells
    (`mawt.layer.depthwise.run_layers(..., cells=)`), the head at the answer cells. `prefixes`:
    a list that receives each batch's input to the last layer (the worth pass reuses them). `shared`:
    those inputs kept for the other models of an eval batch, keyed by the frozen state of the layers
    below the last (mawt.training.prefix.frozen_state) and the batch's tokens: a model reads them only
    where both are the same bytes, so it reads what it would compute (the seeds of a config that trains
    only its last layer)."""
    model.eval()
    collate = AnswerCollator(tokenizer.pad_token_id)
    losses, greedy = [], []
    selection = None  # pooled over every batch (mawt/layer/selection.py)
    n_layers = len(model.model.layers)
    # every row is encoded (a row longer than eval.max_length refused) before any forward pass
    examples = [encode_example(tokenizer, r, max_length, "eval.max_length", j) for j, r in enumerate(rows)]
    state = frozen_state(model, n_layers - 1) if shared is not None else None
    for i in range(0, len(rows), batch_size):
        encoded = examples[i : i + batch_size]
        batch = {k: v.to(model.device) for k, v in collate(encoded).items()}
        ids, mask = batch["input_ids"], batch["attention_mask"]
        labels = batch["labels"][:, 1:]  # position t predicts token t + 1
        answer = labels != -100  # (B, L-1)
        position_ids = torch.arange(ids.shape[1], device=ids.device)[None].expand_as(ids)
        key = (state, tuple(ids.shape), ids.cpu().numpy().tobytes(), mask.cpu().numpy().tobytes())
        hidden = shared.get(key) if shared is not None else None
        if hidden is None:
            hidden = run_layers(model, model.model.embed_tokens(ids), mask, position_ids, 0, n_layers - 1)
            if shared is not None:
                shared[key] = hidden
        if prefixes is not None:
            prefixes.append(hidden)
        hidden = run_layers(model, hidden, mask, position_ids, n_layers - 1, n_layers, cells=answer)  # (K, E)
        logits = model.lm_head(model.model.norm(hidden)).float()  # (K, V): the answer cells, row-major
        gold = labels[answer]
        tok = torch.zeros(answer.shape, device=ids.device).index_put(
            (answer,), torch.nn.functional.cross_entropy(logits, gold, reduction="none"))
        losses += ((tok * answer).sum(1) / answer.sum(1)).tolist()
        top = logits.topk(2, dim=-1)  # (K, 2): a top-1 tie is no greedy decision
        unique_gold = (top.indices[:, 0] == gold) & (top.values[:, 0] > top.values[:, 1])
        greedy += torch.ones_like(answer).index_put((answer,), unique_gold).all(1).tolist()
        stats = selection_stats(last_selections(model), torch.nn.functional.pad(answer, (0, 1)), pooled=True)
        if stats is not None:
            selection = stats if selection is None else selection + stats
    return losses, greedy, selection.as_dict() if selection is not None else {}


def check_budget(tokenizer, rows: list[dict], cfg: EvalConfig) -> None:
    """The budget must at least fit every gold answer and its EOS (checked before any work)."""
    longest = max((len(tokenizer(r["answer"], add_special_tokens=False)["input_ids"]) + 1 for r in rows), default=0)
    if cfg.max_new_tokens < longest:
        raise ValueError(f"eval.max_new_tokens={cfg.max_new_tokens} is below the longest held-out answer "
                         f"({longest} tokens with EOS): no sample could finish; raise eval.max_new_tokens")


def evaluate_heldout(model, tokenizer, rows: list[dict], cfg: EvalConfig, shared: dict | None = None) -> dict:
    """Scores, reasoning quantities and answer loss per item, their means, and the selector statistics
    (`shared`: teacher_forced's)."""
    check_budget(tokenizer, rows, cfg)
    prefixes: list = []  # each batch's input to the last layer, for the worth pass
    losses, greedy, selection = teacher_forced(model, tokenizer, rows, cfg.max_length, cfg.batch_size, prefixes,
                                               shared)
    opened = think_open(tokenizer, cfg.thinking)
    shortcut = cfg.greedy and not opened  # greedy == gold is then decided by the teacher-forced pass
    todo = [i for i, ok in enumerate(greedy) if not (shortcut and ok)]
    prompts = [prompt_text(tokenizer, rows[i]["challenge"], cfg.thinking) for i in todo]
    generated = dict(zip(todo, generate(model, tokenizer, prompts, cfg), strict=True))
    items = []
    for i, r in enumerate(rows):
        if i in generated:
            samples = generated[i]
        else:  # greedy decoding emits exactly the gold tokens, then EOS
            ids = tokenizer(r["answer"], add_special_tokens=False)["input_ids"]
            samples = [{"text": tokenizer.decode(ids, skip_special_tokens=True).strip(), "tokens": len(ids) + 1,
                        "eos": True}]
        items.append(score_samples(r, samples, opened))
    for item, loss, ok in zip(items, losses, greedy, strict=True):
        item.update(answer_loss=loss, greedy_gold=ok)
    result = aggregate(items)
    result.update(heldout_answer_loss=sum(losses) / max(len(losses), 1), generated=len(todo) * cfg.n_samples,
                  selection=selection, think_open=opened, eval=dict(cfg.__dict__))
    worth = depth_worth(model, tokenizer, rows, cfg.max_length, cfg.batch_size, prefixes)
    if worth is not None:  # what the depth choice is worth (mawt/evaluation/worth.py): hard choices in the last layer
        result["worth"] = worth
    divergence = depth_divergence(model, tokenizer, rows, cfg.max_length, prefixes[0] if prefixes else None)
    if divergence is not None:  # how far the depths moved apart (mawt/evaluation/divergence.py)
        result["divergence"] = divergence
    return result


def score_samples(row: dict, samples: list[dict], opened: bool) -> dict:
    """One item's record: its samples scored, and per-item means over the samples."""
    gold = row["answer"]
    scored = [{"prediction": s["text"], "tokens": s["tokens"], "eos": s["eos"],
               "think_closed": think_closed(s["text"], opened),
               "exact_match": exact_match(s["text"], gold), "challenge_metric": challenge_metric(s["text"], gold),
               "challenge_strict": challenge_strict(s["text"], gold, opened)} for s in samples]
    n = len(scored)
    item = {"challenge": row["challenge"], "answer": gold, "prediction": scored[0]["prediction"],
            **{k: row[k] for k in ("family", "ID") if k in row}}
    item.update({k: sum(float(s[k]) for s in scored) / n for k in SCORES})
    item.update(think_closed=sum(s["think_closed"] for s in scored) / n,
                truncated=sum(not s["eos"] for s in scored) / n,
                output_tokens=sum(s["tokens"] for s in scored) / n)
    if n > 1:
        item["samples"] = scored
    return item


# aggregate key in heldout.json -> per-item key
AGGREGATES = {**{k: k for k in SCORES}, "closed_think_rate": "think_closed",
              "truncation_rate": "truncated", "mean_output_tokens": "output_tokens"}


def aggregate(items: list[dict]) -> dict:
    n = max(len(items), 1)
    return {"n": len(items), **{k: sum(i[v] for i in items) / n for k, v in AGGREGATES.items()}, "items": items}


def score_items(rows: list[dict], predictions: list[str], opened: bool = False) -> dict:
    """Per-item records and aggregates for given single answers (each counted as finished)."""
    return aggregate([score_samples(r, [{"text": p, "tokens": 0, "eos": True}], opened)
                      for r, p in zip(rows, predictions, strict=True)])


def eval_heldout(model_dir: Path, heldout: Path, out: Path, cfg: EvalConfig | None = None,
                 device: str = "auto", shared: dict | None = None) -> dict:
    """Scores per item, answer loss, reasoning quantities, held-out selector statistics -> JSON
    (mawt.evaluation.evaluate). Bad settings are refused before anything is written. `shared`: the
    frozen prefixes an eval batch's models share (teacher_forced)."""
    cfg = cfg or EvalConfig()
    rows = read_jsonl(heldout)
    model, tokenizer = load_checkpoint(model_dir, device)
    result = evaluate_heldout(model, tokenizer, rows, cfg, shared)
    result["model"] = str(model_dir)
    result["environment"] = environment()
    atomic.write_json(out, result)
    return result


def eval_batch(models: list[Path], heldout: Path, outs: list[Path], cfg: EvalConfig | None = None,
               device: str = "auto", manifest: Path | None = None) -> list[dict]:
    """`eval_heldout` of every model (`models[i]` into `outs[i]`) on the same rows and settings, one after
    the other in this process (a workflow batch: mawt/studies/batches.py), sharing the frozen prefix
    where it is the same bytes (teacher_forced); then write `manifest`."""
    if len(models) != len(outs):
        raise ValueError(f"eval-heldout: {len(models)} --model but {len(outs)} --out; give one --out per --model")
    shared = {} if len(models) > 1 else None
    results = [eval_heldout(Path(m), Path(heldout), Path(o), cfg, device, shared)
               for m, o in zip(models, outs, strict=True)]
    if manifest is not None:
        atomic.write_json(manifest, {"evaluations": [str(o) for o in outs]})
    return results


def attention_example(model_dir: Path, heldout: Path, out: Path, index: int = 0, head: int | None = None) -> dict:
    """The 5D attention of one held-out prompt (+ gold answer) -> .npz for the report's heatmaps.

    Saves the first MAWT layer's (H, L, L, D) maps as float16, the token strings,
    the layer index and a head: `head`, or the one whose D maps differ most
    (largest mean absolute deviation from the depths' mean) -- the head where
    the depth dimension is doing something.
    """
    import numpy as np

    from mawt.layer.patching import capture

    rows = read_jsonl(heldout)
    if not 0 <= index < len(rows):
        raise ValueError(f"attention: --index {index} is out of range: {heldout} has {len(rows)} rows")
    model, tokenizer = load_checkpoint(model_dir, "cpu")
    model.eval()
    text = prompt_text(tokenizer, rows[index]["challenge"]) + rows[index]["answer"]
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    try:
        with torch.no_grad(), capture(model) as cap:
            model(**ids)
    except ValueError as err:
        raise ValueError(f"attention: {model_dir} has no MAWT layer to capture ({err})") from None
    layer = min(cap.attentions)
    att = cap.attentions[layer][0].float()  # (H, L, L, D)
    spread = (att - att.mean(dim=-1, keepdim=True)).abs().mean(dim=(1, 2, 3))
    chosen = int(spread.argmax()) if head is None else head
    if not 0 <= chosen < att.shape[0]:
        raise ValueError(f"attention: --head {head} is out of range: the layer has {att.shape[0]} heads")
    tokens = [tokenizer.decode([t]) for t in ids["input_ids"][0].tolist()]
    with atomic.atomic_path(out) as tmp:
        np.savez_compressed(tmp, attention=att.numpy().astype(np.float16), tokens=np.array(tokens, dtype=str),
                            layer=layer, head=chosen, challenge=rows[index]["challenge"], answer=rows[index]["answer"])
    return {"layer": layer, "head": chosen, "shape": list(att.shape), "tokens": len(tokens)}
