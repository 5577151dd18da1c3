"""`GRPOLoss`: the forward passes of a MAWT model that the GRPO objective of
mawt/training/grpo.py needs, and the loss and logged parts it gives (MAWTTrainer.compute_loss
calls it for the `grpo` mixer).

The loss has three credit forms (`train.credit`, docs/grpo.md): `token` and
`sequence` sample G rollouts per example; `exact` (MAWT in the last layer only)
runs the last layer once per depth d with the selector forced to d
(`DepthMixer.forced`), its attention shared across the D copies
(`MAWTAttention.copies_per_row = D`), and trains on the pi-weighted expected CE.

Frozen-prefix reuse (MAWT_SPEC section 3): when every decoder layer below the
first trainable one is frozen, the prefix runs once per step without grad and
only the trainable suffix runs on the G rollouts, so a GRPO step does not cost G
full forward passes.

`train.reward_control: shuffled` (a negative control, docs/grpo.md) permutes the
rewards within each group before the advantages, with a generator of its own
seeded from train.seed and the optimiser step (`RewardStream`), so the global
RNG (data order, sampled choices) runs as in the unshuffled run.
"""

from __future__ import annotations

import copy
import logging

import torch
import torch.nn.functional as F

from mawt.layer.depthwise import cell_ce, every_depth, float32_suffix, run_layers, upcast_suffix
from mawt.layer.mixers import Selection
from mawt.layer.patching import mawt_layers
from mawt.layer.selection import last_selections, selection_stats
from mawt.training import grpo
from mawt.training.prefix import FrozenPrefix, PrefixStore, first_trainable_layer
from mawt.training.preflight import check_credit
from mawt.training.runconfig import TrainConfig

logger = logging.getLogger(__name__)


def token_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy at every position t < L-1 (predicting t+1): (N, L-1).
    Entries whose label is -100 are meaningless; mask them with labels[:, 1:] != -100."""
    return F.cross_entropy(logits[:, :-1].float().transpose(1, 2), labels[:, 1:].clamp_min(0), reduction="none")


def answer_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over answer tokens, per row: (N,)."""
    return grpo.masked_mean(token_ce(logits, labels), labels[:, 1:] != -100)


def logged_selection(model, cells: torch.Tensor) -> dict[str, float]:
    """The training log's selector statistics of the model's last forward at the answer cells
    `cells` (N, L), the positions the loss reads ({} without MAWT)."""
    stats = selection_stats(last_selections(model), cells)
    return stats.as_dict() if stats is not None else {}


def cell_answer_ce(model, inputs, prefix: FrozenPrefix) -> torch.Tensor:
    """`answer_ce(model(**inputs).logits, labels)`, (N,), computed only where the loss reads: the
    layers below the first trainable one without grad, the last layer at the answer window
    (`run_layers(..., cells=)`: its MLP at the answer cells, a MAWT layer's queries from the first
    answer cell on), and the head in float32 at the answer cells (`cell_ce`), not at L x vocab;
    `prefix`: the frozen layers' output, each example's computed once (mawt/training/prefix.py)."""
    ids, mask, labels = inputs["input_ids"], inputs["attention_mask"], inputs["labels"]
    n_layers = len(model.model.layers)
    split = min(first_trainable_layer(model), n_layers - 1)
    position_ids = torch.arange(ids.shape[1], device=ids.device)[None].expand_as(ids)
    hidden = prefix(model, ids, mask, position_ids, split)
    cells = labels[:, 1:] != -100
    hidden = run_layers(model, hidden, mask, position_ids, split, n_layers, cells=cells)
    return grpo.masked_mean(cell_ce(model, hidden, labels), cells)


class RewardStream:
    """The CPU generators of the reward permutation (`train.reward_control: shuffled`): seeded
    from train.seed and the optimiser step, so the permutations are determined by them (a
    resumed run draws the same ones); further micro-batches of the same step (gradient
    accumulation, or direct compute_loss calls) continue its stream. It is never the global
    RNG. Training and evaluation calls get separate streams."""

    def __init__(self, seed: int):
        self.seed = seed
        self._key: tuple | None = None  # (step, training) of the current generator
        self._generator: torch.Generator | None = None

    def generator(self, step: int, training: bool) -> torch.Generator:
        key = (step, bool(training))
        if self._key != key:
            self._key = key
            self._generator = torch.Generator(device="cpu").manual_seed(self.seed * 1_000_003 + step)
        return self._generator


class GRPOLoss:
    """The GRPO loss of one run: `loss, parts = GRPOLoss(model, run)(model, inputs, generator)`.

    Built once per run (it keeps pi_ref, the selectors as they are before fine-tuning, and
    on the bf16 path upcasts what the rewards depend on); `parts` are the logged numbers
    (loss parts, reward statistics, selector statistics). `generator`: the reward
    permutation's (`RewardStream`), needed only with `train.reward_control: shuffled`."""

    def __init__(self, model, run: TrainConfig, prefixes: PrefixStore | None = None):
        self.run = run
        # pi_ref: the selectors as they are before fine-tuning (frozen copies).
        self.ref = {i: copy.deepcopy(m.mixer.selector).requires_grad_(False)
                    for i, m in mawt_layers(model).items() if m.mixer.selector is not None}
        self.prefix_calls = 0  # how many times the frozen prefix ran (tests count it)
        self.prefix = FrozenPrefix(enabled=run.reuse_prefix, store=prefixes)
        # the last layer's MLP block only at the answer cells (mawt.layer.depthwise.last_layer_at); False: at
        # every position, the reference the tests compare it with
        self.cells_only = True
        n_layers = len(model.model.layers)
        patched = sorted(mawt_layers(model))
        if run.dtype == "bfloat16":  # the rewards' layers in float32 (mawt/layer/depthwise.py)
            upcast_suffix(model, patched[0])
        check_credit(run.credit, patched, n_layers)
        below = [i for i in patched if i != n_layers - 1]
        if run.credit == "token" and below:
            logger.warning("train.credit='token' with MAWT in layer(s) %s below the last (%d): per-token "
                           "credit is an APPROXIMATION there (a choice at t also changes later positions)",
                           below, n_layers - 1)

    def __call__(self, model, inputs, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        if self.run.credit == "exact":
            return self._exact_loss(model, inputs, generator)
        return self._sampled_loss(model, inputs, generator)

    def _prefix(self, model, ids, mask, position_ids, split: int) -> torch.Tensor:
        """Embeddings, then the frozen layers [0, split) once per step without grad (each example's
        kept from its first step on: mawt/training/prefix.py)."""
        if split > 0:
            self.prefix_calls += 1
        return self.prefix(model, ids, mask, position_ids, split)

    def _sampled_loss(self, model, inputs, generator) -> tuple[torch.Tensor, dict[str, float]]:
        """Token and sequence credit: G sampled rollouts per example."""
        G, run = self.run.group_size, self.run
        ids, mask, labels = inputs["input_ids"], inputs["attention_mask"], inputs["labels"]
        n_layers = len(model.model.layers)
        split = first_trainable_layer(model) if run.reuse_prefix else 0
        position_ids = torch.arange(ids.shape[1], device=ids.device)[None].expand_as(ids)
        hidden = self._prefix(model, ids, mask, position_ids, split)

        rep = lambda t: t.repeat_interleave(G, dim=0)  # noqa: E731  (rollouts of an example adjacent)
        layers = mawt_layers(model)
        first_mawt = min(layers)  # MAWT parameters always train: never below `split`
        if run.reuse_prefix:
            # Rollouts only differ from the first MAWT layer's mixing on: run what comes
            # before it once, and let that layer attend once per group.
            if first_mawt > split:
                hidden = run_layers(model, hidden, mask, position_ids, split, first_mawt)
            shared, hidden = layers[first_mawt], rep(hidden)
        else:  # every layer on every rollout (the reference the reuse is tested against)
            shared, hidden = None, run_layers(model, rep(hidden), rep(mask), rep(position_ids), 0, first_mawt)
        if shared is not None:
            shared.copies_per_row = G
        labels = rep(labels)
        cells = grpo.answer_cells(labels)  # (B*G, L): t predicts an answer token
        try:  # what depends on the choices: float32 on the bf16 path (mawt/layer/depthwise.py)
            with float32_suffix(hidden, self.run.dtype == "bfloat16") as h:
                # the last layer's MLP block only at the answer cells, the only rows the loss reads
                # (sequence credit reads the choices at every position up to the last answer cell)
                hidden = run_layers(model, h, rep(mask), rep(position_ids), first_mawt, n_layers,
                                    cells=cells[:, :-1] if self.cells_only else None, window=run.credit != "sequence")
        finally:
            if shared is not None:
                shared.copies_per_row = 1
        tok = cell_ce(model, hidden, labels)  # (B*G, L-1): float32 head at the answer cells, 0 elsewhere
        ce = grpo.masked_mean(tok, cells[:, :-1])  # (B*G,) = answer_ce

        sels = {i: m.last_selection for i, m in layers.items() if m.last_selection.choice is not None}
        zero = ce.new_zeros(())
        log_pi = sum((s.choice_log_prob for s in sels.values()), torch.zeros_like(ce)[:, None])  # (B*G, L)
        if run.credit == "sequence":
            # choices after the last answer cell cannot change the reward, whatever the layer
            acts = rep(mask).bool() & grpo.upto_last_answer(labels)
            r_seq = -ce.detach()
            if run.reward_control == "shuffled":  # negative control: which rollout got which reward, at random
                r_seq = grpo.shuffle_within_groups(r_seq, G, generator)
            advantages = grpo.group_advantages(r_seq, G, mode=run.advantage)
            pg = grpo.policy_loss(advantages, log_pi, acts, run.advantage) if sels else zero
            zero_spread = grpo.zero_spread_frac(-ce.detach(), G)
        else:  # token: reward of the choice at t = -CE at t, answer cells only
            acts = cells
            r_tok = F.pad(-tok.detach(), (0, 1)) * acts  # (B*G, L), 0 off the answer cells
            r_adv = r_tok
            if run.reward_control == "shuffled":  # negative control: a permutation per (group, position)
                r_adv = grpo.shuffle_within_groups(r_tok, G, generator, cells=acts)
            advantages = grpo.group_advantages(r_adv, G, mode=run.advantage, cells=acts)
            pg = grpo.token_policy_loss(advantages, log_pi, acts) if sels else zero
            zero_spread = grpo.zero_spread_frac(r_tok, G, cells=acts)
        kl = sum((grpo.categorical_kl(s.log_probs, F.log_softmax(self.ref[i](s.observation).float(), -1), acts)
                  for i, s in sels.items()), zero)
        entropy = sum((grpo.categorical_entropy(s.log_probs, acts) for s in sels.values()), zero)
        loss = ce.mean() + run.lambda_pg * pg + run.beta * kl - run.eta * entropy

        rewards = -ce.detach().view(-1, G)
        parts = dict(loss_ce=ce.mean().item(), loss_pg=pg.item(), kl=kl.item(), loss_entropy=entropy.item(),
                     reward_mean=rewards.mean().item(), reward_std=rewards.std(1, unbiased=False).mean().item(),
                     zero_spread_frac=zero_spread.item(), **logged_selection(model, cells))
        return loss, parts

    def _every_depth_ce(self, model, inputs):
        """Exact credit's forward: CE_t(d) at every answer cell for every depth, (B, L-1, D) with
        grad, the cells (B, L-1) and the MAWT layer (its selection: the policy, in D copies)."""
        ids, mask, labels = inputs["input_ids"], inputs["attention_mask"], inputs["labels"]
        n_layers = len(model.model.layers)
        D = mawt_layers(model)[n_layers - 1].mawt.depth  # check_credit: the only MAWT layer
        split = min(first_trainable_layer(model), n_layers - 1) if self.run.reuse_prefix else 0
        position_ids = torch.arange(ids.shape[1], device=ids.device)[None].expand_as(ids)
        hidden = self._prefix(model, ids, mask, position_ids, split)
        if n_layers - 1 > split:  # below the MAWT layer nothing depends on the choice: once
            hidden = run_layers(model, hidden, mask, position_ids, split, n_layers - 1)
        with float32_suffix(hidden, self.run.dtype == "bfloat16") as h:  # float32 on the bf16 path
            # copy d of example b: row b*D + d; the last layer's MLP block only at the answer cells
            hidden, layer = every_depth(model, h, mask, position_ids,
                                            cells=(labels[:, 1:] != -100) if self.cells_only else None)
        tok = cell_ce(model, hidden, labels.repeat_interleave(D, dim=0))
        return tok.view(ids.shape[0], D, -1).transpose(1, 2), grpo.answer_cells(labels)[:, :-1], layer

    def depth_rewards(self, model, inputs) -> tuple[torch.Tensor, torch.Tensor]:
        """The rewards r_t(d) = -CE_t(d) exact credit trains on, (B, L-1, D), and the answer cells
        (B, L-1); call it under `MAWTTrainer.autocast()` as the loss does."""
        tok, cells, _ = self._every_depth_ce(model, inputs)
        return -tok.detach(), cells

    def _exact_loss(self, model, inputs, generator) -> tuple[torch.Tensor, dict[str, float]]:
        """Exact credit: every depth at every answer cell, MAWT in the last layer only."""
        run = self.run
        n_layers = len(model.model.layers)
        tok, cells, layer = self._every_depth_ce(model, inputs)
        D = layer.mawt.depth
        sel = layer.last_selection
        log_probs = sel.log_probs[::D]  # (B, L, D): the same policy in every copy
        lp = log_probs[:, :-1]
        rewards = -tok.detach()
        pi = lp.detach().exp()
        r_adv = rewards
        if run.reward_control == "shuffled":  # negative control: r_t(d) permuted across d at each cell
            r_adv = grpo.shuffle_depths(rewards, generator)
        pg = grpo.exact_policy_loss(lp, r_adv, cells, run.advantage)
        ce = grpo.masked_mean((pi * tok).sum(-1), cells)  # (B,): pi-weighted expected answer CE, pi detached
        ref = F.log_softmax(self.ref[n_layers - 1](sel.observation[::D]).float(), -1)[:, :-1]
        kl = grpo.categorical_kl(lp, ref, cells)
        entropy = grpo.categorical_entropy(lp, cells)
        loss = ce.mean() + run.lambda_pg * pg + run.beta * kl - run.eta * entropy

        centred = rewards - (pi * rewards).sum(-1, keepdim=True)
        sigma = (pi * centred ** 2).sum(-1).sqrt()  # std of r_t under pi
        policy = Selection(weights=sel.weights[::D], valid=sel.valid[::D], log_probs=log_probs)  # one copy each
        parts = dict(loss_ce=ce.mean().item(), loss_pg=pg.item(), kl=kl.item(), loss_entropy=entropy.item(),
                     reward_mean=-ce.detach().mean().item(),
                     reward_std=grpo.masked_mean(sigma.flatten(), cells.flatten(), dim=0).item(),
                     reward_spread=grpo.reward_spread(rewards, cells).item(),
                     **selection_stats([policy], F.pad(cells, (0, 1)), policy=True).as_dict())
        return loss, parts
