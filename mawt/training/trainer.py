"""`MAWTTrainer`: the transformers Trainer with the MAWT loss.

Only documented hooks are overridden: `compute_loss` (cross-entropy, or for the
`grpo` mixer the GRPO loss of mawt/training/grpo_loss.py, under bf16 autocast on
the bf16 path), `log` (adds the loss parts and selector statistics averaged since
the last log) and `_save_checkpoint` (marks a checkpoint complete once saved).
`JsonlLogger` writes every log line to the run's metrics file.

`train.reward_control: shuffled` draws its permutations from a generator seeded
from train.seed and the optimiser step (`RewardStream`), which compute_loss hands
to the GRPO loss; the global RNG runs as in the unshuffled run."""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback

from mawt.common import atomic
from mawt.training.checkpoints import COMPLETE
from mawt.training import grpo
from mawt.training.grpo_loss import GRPOLoss, RewardStream, answer_ce, cell_answer_ce, logged_selection
from mawt.training.prefix import FrozenPrefix, PrefixStore
from mawt.training.runconfig import TrainConfig

logger = logging.getLogger(__name__)


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
    def __init__(self, *args, run: TrainConfig, use_grpo: bool, prefixes: PrefixStore | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.run = run
        self._parts: dict[str, list[float]] = defaultdict(list)
        self.grpo_loss = GRPOLoss(self.model, run, prefixes) if use_grpo else None
        # the cross-entropy loss only where it reads (mawt.training.grpo_loss.cell_answer_ce); False: the
        # model's own forward at every position, the reference the tests compare it with
        self.cells_only = True
        # the frozen layers' output, kept per example (`prefixes`: shared with the other runs of this process)
        self.prefix = FrozenPrefix(enabled=run.reuse_prefix, store=prefixes)
        self._rewards = RewardStream(run.seed)  # the reward permutation's generators (reward_control)
        if run.reward_control != "none" and not use_grpo:
            logger.warning("train.reward_control=%r has no effect: only the GRPO objective (mixer grpo) reads "
                           "rewards", run.reward_control)

    # ------------------------------------------------------------------ loss
    def autocast(self):
        """train.dtype bfloat16: bf16 autocast over every path (the Trainer's own mixed precision
        wraps only model.forward, which the GRPO losses bypass); the trainable weights are float32
        masters (mawt.training.models.upcast_trainable), the frozen ones stay bf16, and the GRPO paths run
        what depends on the depth choices in float32 (mawt/layer/depthwise.py)."""
        return torch.autocast(device_type=self.model.device.type, dtype=torch.bfloat16,
                              enabled=self.run.dtype == "bfloat16")

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        with self.autocast():
            if self.grpo_loss is not None:
                generator = None
                if self.run.reward_control == "shuffled":
                    generator = self._rewards.generator(self.state.global_step, self.model.training)
                loss, parts = self.grpo_loss(model, inputs, generator)
                self._record(**parts)
                return (loss, None) if return_outputs else loss
            if self.cells_only and not return_outputs:
                outputs, ce = None, cell_answer_ce(model, inputs, self.prefix).mean()
            else:
                outputs = model(**inputs)
                ce = answer_ce(outputs.logits, inputs["labels"]).mean()
            self._record(loss_ce=ce.item(), **logged_selection(model, grpo.answer_cells(inputs["labels"])))
            return (ce, outputs) if return_outputs else ce

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
