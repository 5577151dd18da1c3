"""`MAWTTrainer`: the transformers Trainer with the MAWT loss.

Only documented hooks are overridden: `compute_loss` (cross-entropy, plus the
GRPO objective of mawt/training/grpo.py for the `grpo` mixer) and `log` (adds the loss
parts and selector statistics averaged since the last log) and `_save_checkpoint`
(marks a checkpoint complete once saved). `JsonlLogger` writes every log line to
the run's metrics file.

The GRPO loss has three credit forms (`train.credit`, mawt/training/grpo.py): `token`
and `sequence` sample G rollouts per example; `exact` (MAWT in the last layer
only) runs the last layer once per depth d with the selector forced to d
(`DepthMixer.forced`), its attention shared across the D copies
(`MAWTAttention.copies_per_row = D`), and trains on the pi-weighted expected CE.

Frozen-prefix reuse (MAWT_SPEC section 3): when every decoder layer below the
first trainable one is frozen, the prefix runs once per step without grad and
only the trainable suffix runs on the G rollouts, so a GRPO step does not cost G
full forward passes.

`train.reward_control: shuffled` (a negative control, mawt/training/grpo.py) permutes
the rewards within each group before the advantages, with a generator of its
own seeded from train.seed and the optimiser step (`reward_generator`), so the
global RNG (data order, sampled choices) runs as in the unshuffled run.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import Trainer, TrainerCallback

from mawt.common import atomic
from mawt.training import grpo
from mawt.training.checkpoints import COMPLETE
from mawt.layer.depthwise import cell_ce, every_depth, float32_suffix, run_layers, upcast_suffix
from mawt.layer.patching import mawt_layers
from mawt.training.preflight import check_credit
from mawt.training.runconfig import TrainConfig

logger = logging.getLogger(__name__)


def first_trainable_layer(model) -> int:
    """Index of the first decoder layer with a trainable parameter (0 if embeddings train)."""
    inner = model.model
    if any(p.requires_grad for p in inner.embed_tokens.parameters()):
        return 0
    for i, layer in enumerate(inner.layers):
        if any(p.requires_grad for p in layer.parameters()):
            return i
    return len(inner.layers)


def token_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy at every position t < L-1 (predicting t+1): (N, L-1).
    Entries whose label is -100 are meaningless; mask them with labels[:, 1:] != -100."""
    return F.cross_entropy(logits[:, :-1].float().transpose(1, 2), labels[:, 1:].clamp_min(0), reduction="none")


def answer_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over answer tokens, per row: (N,)."""
    return grpo.masked_mean(token_ce(logits, labels), labels[:, 1:] != -100)


def selection_stats(model) -> dict[str, float]:
    """Mean depth usage and selector entropy over the MAWT layers' last decisions."""
    sels = [m.last_selection for m in mawt_layers(model).values() if m.last_selection is not None]
    if not sels:
        return {}
    usage = torch.stack([grpo.masked_mean(s.weights.detach().float().transpose(1, 2), s.valid[:, None]).mean(0)
                         for s in sels]).mean(0)  # (D,)
    out = {f"depth_usage_{d}": float(u) for d, u in enumerate(usage)}
    ent = [grpo.categorical_entropy(s.log_probs.detach(), s.valid) for s in sels if s.log_probs is not None]
    if ent:
        out["selector_entropy"] = float(torch.stack(ent).mean())
    return out


def policy_stats(log_probs: torch.Tensor, valid: torch.Tensor) -> dict[str, float]:
    """`selection_stats` keys from a policy (N, L, D) instead of sampled weights: the
    expected usage (mean pi) and the entropy (exact credit evaluates every depth)."""
    log_probs = log_probs.detach().float()
    usage = grpo.masked_mean(log_probs.exp().transpose(1, 2), valid[:, None]).mean(0)  # (D,)
    out = {f"depth_usage_{d}": float(u) for d, u in enumerate(usage)}
    out["selector_entropy"] = float(grpo.categorical_entropy(log_probs, valid))
    return out


# Trainer log keys kept out of the metrics file: timings measure the machine, not the model,
# and the Trainer's final `train_loss` averages only the steps of the last process (after a
# resume, a different number). Without them the same config and seed give byte-identical
# metrics, interrupted or not; run.json has the time and the whole run's mean loss.
SUMMARY_KEYS = frozenset({"train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos",
                          "train_loss"})


class JsonlLogger(TrainerCallback):
    """Appends every Trainer log line (with its step) to a JSONL file (the run's
    `metrics.jsonl.partial` while it trains; `train_run` renames it when the run ends)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = {k: v for k, v in (logs or {}).items() if k not in SUMMARY_KEYS}
        if state.is_world_process_zero and logs:
            with self.path.open("a") as f:
                f.write(json.dumps({"step": state.global_step, **logs}, sort_keys=True) + "\n")
                f.flush()
                os.fsync(f.fileno())


class MAWTTrainer(Trainer):
    def __init__(self, *args, run: TrainConfig, use_grpo: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.run = run
        self.use_grpo = use_grpo
        self._parts: dict[str, list[float]] = defaultdict(list)
        # pi_ref: the selectors as they are before fine-tuning (frozen copies).
        self._ref = {i: copy.deepcopy(m.mixer.selector).requires_grad_(False)
                     for i, m in mawt_layers(self.model).items() if m.mixer.selector is not None}
        self.prefix_calls = 0  # how many times the frozen prefix ran (tests count it)
        self._control_key: tuple | None = None  # (step, training) of the current reward-control generator
        self._control_gen: torch.Generator | None = None
        if run.reward_control != "none" and not use_grpo:
            logger.warning("train.reward_control=%r has no effect: only the GRPO objective (mixer grpo) reads "
                           "rewards", run.reward_control)
        if use_grpo:
            n_layers = len(self.model.model.layers)
            patched = sorted(mawt_layers(self.model))
            if run.dtype == "bfloat16":  # the rewards' layers in float32 (mawt/layer/depthwise.py)
                upcast_suffix(self.model, patched[0])
            check_credit(run.credit, patched, n_layers)
            below = [i for i in patched if i != n_layers - 1]
            if run.credit == "token" and below:
                logger.warning("train.credit='token' with MAWT in layer(s) %s below the last (%d): per-token "
                               "credit is an APPROXIMATION there (a choice at t also changes later positions)",
                               below, n_layers - 1)

    # ------------------------------------------------------------------ loss
    def reward_generator(self) -> torch.Generator:
        """The CPU generator of the reward permutation (`train.reward_control: shuffled`):
        seeded from train.seed and the optimiser step, so the permutations are determined
        by them (a resumed run draws the same ones); further micro-batches of the same step
        (gradient accumulation, or direct compute_loss calls) continue its stream. It is
        never the global RNG. Training and evaluation calls get separate streams."""
        key = (self.state.global_step, bool(self.model.training))
        if self._control_key != key:
            self._control_key = key
            self._control_gen = torch.Generator(device="cpu").manual_seed(
                self.run.seed * 1_000_003 + self.state.global_step)
        return self._control_gen

    def autocast(self):
        """train.dtype bfloat16: bf16 autocast over every path (the Trainer's own mixed precision
        wraps only model.forward, which the GRPO losses bypass); the trainable weights are float32
        masters (mawt.training.models.upcast_trainable), the frozen ones stay bf16, and the GRPO paths run
        what depends on the depth choices in float32 (mawt/layer/depthwise.py)."""
        return torch.autocast(device_type=self.model.device.type, dtype=torch.bfloat16,
                              enabled=self.run.dtype == "bfloat16")

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        with self.autocast():
            return self._loss(model, inputs, return_outputs)

    def _loss(self, model, inputs, return_outputs=False):
        if self.use_grpo:
            loss = self._grpo_loss(model, inputs)
            return (loss, None) if return_outputs else loss
        outputs = model(**inputs)
        ce = answer_ce(outputs.logits, inputs["labels"]).mean()
        self._record(loss_ce=ce.item(), **selection_stats(model))
        return (ce, outputs) if return_outputs else ce

    def _embed(self, model, ids: torch.Tensor) -> torch.Tensor:
        frozen_embed = not any(p.requires_grad for p in model.model.embed_tokens.parameters())
        with torch.set_grad_enabled(not frozen_embed):
            return model.model.embed_tokens(ids)

    def _prefix(self, model, ids, mask, position_ids, split: int) -> torch.Tensor:
        """Embeddings, then the frozen layers [0, split) once per step without grad."""
        hidden = self._embed(model, ids)
        if split > 0:
            with torch.no_grad():
                hidden = run_layers(model, hidden, mask, position_ids, 0, split)
            self.prefix_calls += 1
        return hidden

    def _grpo_loss(self, model, inputs) -> torch.Tensor:
        if self.run.credit == "exact":
            return self._exact_loss(model, inputs)
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
        try:  # what depends on the choices: float32 on the bf16 path (mawt/layer/depthwise.py)
            with float32_suffix(hidden, self.run.dtype == "bfloat16") as h:
                hidden = run_layers(model, h, rep(mask), rep(position_ids), first_mawt, n_layers)
        finally:
            if shared is not None:
                shared.copies_per_row = 1
        labels = rep(labels)
        tok = cell_ce(model, hidden, labels)  # (B*G, L-1): float32 head at the answer cells, 0 elsewhere
        cells = grpo.answer_cells(labels)  # (B*G, L): t predicts an answer token
        ce = grpo.masked_mean(tok, cells[:, :-1])  # (B*G,) = answer_ce

        sels = {i: m.last_selection for i, m in layers.items() if m.last_selection.choice is not None}
        zero = ce.new_zeros(())
        log_pi = sum((s.choice_log_prob for s in sels.values()), torch.zeros_like(ce)[:, None])  # (B*G, L)
        if run.credit == "sequence":
            # choices after the last answer cell cannot change the reward, whatever the layer
            acts = rep(mask).bool() & grpo.upto_last_answer(labels)
            r_seq = -ce.detach()
            if run.reward_control == "shuffled":  # negative control: which rollout got which reward, at random
                r_seq = grpo.shuffle_within_groups(r_seq, G, self.reward_generator())
            advantages = grpo.group_advantages(r_seq, G, mode=run.advantage)
            pg = grpo.policy_loss(advantages, log_pi, acts, run.advantage) if sels else zero
            zero_spread = grpo.zero_spread_frac(-ce.detach(), G)
        else:  # token: reward of the choice at t = -CE at t, answer cells only
            acts = cells
            r_tok = F.pad(-tok.detach(), (0, 1)) * acts  # (B*G, L), 0 off the answer cells
            r_adv = r_tok
            if run.reward_control == "shuffled":  # negative control: a permutation per (group, position)
                r_adv = grpo.shuffle_within_groups(r_tok, G, self.reward_generator(), cells=acts)
            advantages = grpo.group_advantages(r_adv, G, mode=run.advantage, cells=acts)
            pg = grpo.token_policy_loss(advantages, log_pi, acts) if sels else zero
            zero_spread = grpo.zero_spread_frac(r_tok, G, cells=acts)
        kl = sum((grpo.categorical_kl(s.log_probs, F.log_softmax(self._ref[i](s.observation).float(), -1), acts)
                  for i, s in sels.items()), zero)
        entropy = sum((grpo.categorical_entropy(s.log_probs, acts) for s in sels.values()), zero)
        loss = ce.mean() + run.lambda_pg * pg + run.beta * kl - run.eta * entropy

        rewards = -ce.detach().view(-1, G)
        self._record(loss_ce=ce.mean().item(), loss_pg=pg.item(), kl=kl.item(), loss_entropy=entropy.item(),
                     reward_mean=rewards.mean().item(), reward_std=rewards.std(1, unbiased=False).mean().item(),
                     zero_spread_frac=zero_spread.item(), **selection_stats(model))
        return loss

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
            hidden, layer = every_depth(model, h, mask, position_ids)  # copy d of example b: row b*D + d
        tok = cell_ce(model, hidden, labels.repeat_interleave(D, dim=0))
        return tok.view(ids.shape[0], D, -1).transpose(1, 2), grpo.answer_cells(labels)[:, :-1], layer

    def depth_rewards(self, model, inputs) -> tuple[torch.Tensor, torch.Tensor]:
        """The rewards r_t(d) = -CE_t(d) exact credit trains on, (B, L-1, D), and the answer cells
        (B, L-1); call it under `autocast()` as the loss does."""
        tok, cells, _ = self._every_depth_ce(model, inputs)
        return -tok.detach(), cells

    def _exact_loss(self, model, inputs) -> torch.Tensor:
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
            r_adv = grpo.shuffle_depths(rewards, self.reward_generator())
        pg = grpo.exact_policy_loss(lp, r_adv, cells, run.advantage)
        ce = grpo.masked_mean((pi * tok).sum(-1), cells)  # (B,): pi-weighted expected answer CE, pi detached
        ref = F.log_softmax(self._ref[n_layers - 1](sel.observation[::D]).float(), -1)[:, :-1]
        kl = grpo.categorical_kl(lp, ref, cells)
        entropy = grpo.categorical_entropy(lp, cells)
        loss = ce.mean() + run.lambda_pg * pg + run.beta * kl - run.eta * entropy

        centred = rewards - (pi * rewards).sum(-1, keepdim=True)
        sigma = (pi * centred ** 2).sum(-1).sqrt()  # std of r_t under pi
        self._record(loss_ce=ce.mean().item(), loss_pg=pg.item(), kl=kl.item(), loss_entropy=entropy.item(),
                     reward_mean=-ce.detach().mean().item(),
                     reward_std=grpo.masked_mean(sigma.flatten(), cells.flatten(), dim=0).item(),
                     reward_spread=grpo.reward_spread(rewards, cells).item(),
                     **policy_stats(log_probs, sel.valid[::D]))
        return loss

    # ------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, model, trial) -> None:
        """The Trainer's checkpoint, then a COMPLETE marker: a kill mid-save leaves an
        unmarked folder, which resuming ignores (transformers writes the files in place)."""
        super()._save_checkpoint(model, trial)
        folder = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
        if folder.is_dir():
            for f in folder.rglob("*"):
                if f.is_file():
                    with open(f, "rb") as fh:
                        os.fsync(fh.fileno())
            atomic.write_text(folder / COMPLETE, f"{self.state.global_step}\n")

    # --------------------------------------------------------------- logging
    def _record(self, **values: float) -> None:
        if self.model.training:
            for k, v in values.items():
                if not torch.isfinite(torch.tensor(v)):
                    raise FloatingPointError(
                        f"non-finite {k}={v} at step {self.state.global_step}: stopping (no metrics written)"
                    )
                self._parts[k].append(v)

    def log(self, logs: dict, *args, **kwargs) -> None:
        if self._parts and "loss" in logs:
            logs = {**logs, **{k: sum(v) / len(v) for k, v in self._parts.items()}}
            self._parts.clear()
        super().log(logs, *args, **kwargs)
