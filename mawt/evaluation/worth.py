"""What a depth choice is worth, on the held-out set (`heldout.json` `worth`).

A policy's entropy says how sure it is, not whether its choices help: a scale-free
advantage sharpens a policy on reward gaps of a few hundredths of a nat. The evidence
that a learned depth policy is useful is what its choices buy against other policies
of the same trained layer, at the positions that predict answer tokens (the answer
tokens and the final EOS, teacher-forced on the gold answer):

* ``learned``: the trained policy's greedy choice, argmax_d pi(d | x_t) (what the model
  does in eval mode: its answer loss is the run's held-out answer loss);
* ``policy``: the trained policy itself, d ~ pi(d | x_t), the distribution GRPO trains.
  Where the depths' inputs to the selector barely differ, the greedy choice of an untrained
  selector is one constant depth (whichever its init prefers), so greedy worth cannot tell
  a trained policy from chance there; the policy's own probabilities can (the planted
  control, docs/grpo.md, reads this one);
* ``probe``: an input-only policy fit to the per-position best depth, cross-fitted over halves of
  the held-out items (mawt/evaluation/probe.py): what of the oracle's gap is predictable from
  the selector's input;
* ``uniform``: each depth with probability 1/D at every position;
* ``best``: one depth for every position, the one with the lowest held-out answer loss
  (chosen on the held-out set itself: an optimistic reference, like the oracle);
* ``oracle``: per position the best depth, every depth enumerated: the lowest
  cross-entropy for the answer loss, and "some depth gives the gold token" for exact
  match. An upper bound on what any policy of this layer can reach.

With MAWT in the last layer (the only case measured here) the choice at position t
changes only the logits at t, so each depth's outcome at every position comes from one
pass with the last layer run once per depth (`mawt.layer.depthwise.every_depth`), and the
expectations are exact, not sampled:

    answer loss of item i under a policy q:  mean_t sum_d q_t(d) CE_t(d)
    exact match of item i under q:           prod_t sum_d q_t(d) ok_t(d)

where ok_t(d) says that depth d's argmax is the gold token, strictly (a tie with another
token is not a match). The last is the probability that greedy decoding with choices
drawn from q reproduces the gold answer: each greedy step sees the teacher-forced prefix
as long as every earlier step was right, and the draws at different positions are
independent. Columns in table.csv: `worth_loss_<policy>`, `worth_em_<policy>`,
`worth_best_depth`; the report shows them next to the entropy, which stays a diagnostic.

Measured only where the comparison means something: one MAWT layer, the model's last,
with a hard choice (mixers grpo and gumbel) and D >= 2. Other runs have no `worth`.
"""

from __future__ import annotations

import torch

from mawt.evaluation.probe import cross_fit
from mawt.layer.depthwise import answer_logits, every_depth, run_layers
from mawt.layer.patching import mawt_layers
from mawt.data.prompts import AnswerCollator, encode_example

POLICIES = ("learned", "policy", "probe", "uniform", "best", "oracle")
HARD_MIXERS = ("grpo", "gumbel")


def applies(model) -> bool:
    """Whether `model` has exactly one MAWT layer, the last, with a hard choice over D >= 2 depths."""
    layers = mawt_layers(model)
    last = len(model.model.layers) - 1
    if set(layers) != {last}:
        return False
    cfg = layers[last].mawt
    return cfg.mixer in HARD_MIXERS and cfg.depth >= 2


@torch.no_grad()
def outcomes(model, batch: dict, prefix: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per (row, answer position, depth) of one collated batch: CE (B, T, D) and strict top-1 match
    (B, T, D) bool, the policy's greedy depth (B, T) long, and the answer-position mask (B, T)
    (T = L-1; positions outside the mask hold zeros). `prefix`: the batch's input to the last
    layer, if already computed (the teacher-forced pass's)."""
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    n_layers = len(model.model.layers)
    position_ids = torch.arange(ids.shape[1], device=ids.device)[None].expand_as(ids)
    hidden = prefix if prefix is not None else run_layers(model, model.model.embed_tokens(ids), mask,
                                                          position_ids, 0, n_layers - 1)
    hidden, layer = every_depth(model, hidden, mask, position_ids, cells=labels[:, 1:] != -100)  # answer cells only
    B, D = ids.shape[0], layer.mawt.depth
    logits, cells_rep, gold = answer_logits(model, hidden, labels.repeat_interleave(D, dim=0))
    ce_flat = torch.nn.functional.cross_entropy(logits, gold, reduction="none")
    gold_logit = logits.gather(1, gold[:, None])
    others = logits.scatter(1, gold[:, None], float("-inf"))
    ok_flat = gold_logit.squeeze(1) > others.amax(1)  # strictly above every other token
    ce = torch.zeros(cells_rep.shape, device=ids.device).index_put((cells_rep,), ce_flat)
    ok = torch.zeros(cells_rep.shape, dtype=torch.bool, device=ids.device).index_put((cells_rep,), ok_flat)
    ce = ce.view(B, D, -1).transpose(1, 2)
    ok = ok.view(B, D, -1).transpose(1, 2)
    answer = labels[:, 1:] != -100
    log_probs = layer.last_selection.log_probs[::D][:, :-1]  # (B, T, D): pi at each position, unforced
    greedy = log_probs.argmax(-1).masked_fill(~answer, 0)  # eval mode's choice
    return ce, ok, greedy, answer, log_probs.exp() * answer[..., None]  # zeros off the answer cells, as greedy


def item_worth(ce: torch.Tensor, ok: torch.Tensor, greedy: torch.Tensor, cells: torch.Tensor,
               probs: torch.Tensor | None = None) -> dict:
    """Per item (row) answer loss and exact match of the learned and uniform policies, the oracle,
    of the policy `probs` (B, T, D) where given, and of every single depth: {"loss_learned": (B,), ...,
    "loss_depth": (B, D), "em_depth": (B, D)}."""
    m = cells.float()
    n = m.sum(1).clamp_min(1.0)

    def loss(per_pos):  # (B, T) -> (B,)
        return (per_pos * m).sum(1) / n

    def em(prob):  # (B, T) probability of the gold token per position -> (B,)
        return torch.where(cells, prob, torch.ones_like(prob)).prod(1)

    okf = ok.float()
    pick = lambda x: x.gather(-1, greedy[..., None]).squeeze(-1)  # noqa: E731
    return {
        "loss_learned": loss(pick(ce)), "em_learned": em(pick(okf)),
        "loss_uniform": loss(ce.mean(-1)), "em_uniform": em(okf.mean(-1)),
        "loss_oracle": loss(ce.amin(-1)), "em_oracle": em(okf.amax(-1)),
        "loss_depth": (ce * m[..., None]).sum(1) / n[:, None],
        "em_depth": torch.where(cells[..., None], okf, torch.ones_like(okf)).prod(1),
        **({"loss_policy": loss((probs * ce).sum(-1)), "em_policy": em((probs * okf).sum(-1))}
           if probs is not None else {}),
    }


@torch.no_grad()
def depth_worth(model, tokenizer, rows: list[dict], max_length: int, batch_size: int = 32,
                prefixes: list | None = None) -> dict | None:
    """The `worth` record of heldout.json (module docstring); None when it does not apply.
    `prefixes`: each batch's input to the last layer, as `teacher_forced` collected them on the
    same rows and batch size (else computed here)."""
    if not applies(model):
        return None
    model.eval()
    collate = AnswerCollator(tokenizer.pad_token_id)
    examples = [encode_example(tokenizer, r, max_length, "eval.max_length", j) for j, r in enumerate(rows)]
    parts: dict[str, list[torch.Tensor]] = {}
    cells_of: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # per item: the probe's features, CE, ok
    layer = mawt_layers(model)[len(model.model.layers) - 1]
    for j, i in enumerate(range(0, len(examples), batch_size)):
        batch = {k: v.to(model.device) for k, v in collate(examples[i : i + batch_size]).items()}
        ce, ok, greedy, cells, probs = outcomes(model, batch, prefixes[j] if prefixes else None)
        seen = layer.last_selection.observation[:: ce.shape[-1]][:, :-1]  # (B, T, F): the selector's input
        cells_of += [(seen[b][cells[b]].double().cpu(), ce[b][cells[b]].double().cpu(), ok[b][cells[b]].cpu())
                     for b in range(ce.shape[0])]
        for key, value in item_worth(ce, ok, greedy, cells, probs).items():
            parts.setdefault(key, []).append(value.double().cpu())
    per_item = {k: torch.cat(v) for k, v in parts.items()}
    depth_loss = per_item.pop("loss_depth").mean(0)  # (D,)
    depth_em = per_item.pop("em_depth").mean(0)
    best = int(depth_loss.argmin())
    out = {k: float(v.mean()) for k, v in per_item.items()}
    out.update(loss_best=float(depth_loss[best]), em_best=float(depth_em[best]), best_depth=best,
               loss_depth=[float(x) for x in depth_loss], em_depth=[float(x) for x in depth_em],
               **cross_fit(*(list(part) for part in zip(*cells_of, strict=True))))  # mawt/evaluation/probe.py
    return out
