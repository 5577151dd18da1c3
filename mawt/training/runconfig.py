"""`RunConfig`: everything one fine-tuning run needs, read from a YAML file.

    base_model: assets/micro_base       # a save_pretrained directory or a hub id
    data: {source: synthetic, families: [reverse, drop_first], difficulty: 2}
    mawt: {depth: 4, mixer: grpo}        # null: unpatched (the base's own attention, fine-tuned)
    trainable: last
    train: {steps: 200, learning_rate: 1e-3, group_size: 4, seed: 0}

Unknown keys, wrong types and impossible values are rejected before any work,
with the file and the key in the message.

The one way in is `load(source, cls)`: a YAML path, a mapping (a setup's section, a run.json's
`config`) or None (the defaults) gives the validated dataclass (`RunConfig`, `EvalConfig`,
`DataConfig`, `MAWTConfig`, `TrainConfig`, `MicroConfig`). Rules between fields are checked
once, in each class's `__post_init__`; rules that need the base model's shape, once, in
`mawt.training.preflight.check_against(run, model_config)` (which imports this module, never the reverse).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from mawt.common import yamlfile
from mawt.layer.config import FREEZE_MODES, MAWTConfig, refuse_renamed, trainable_tail
from mawt.data.sources import DataConfig
from mawt.common.ranges import check_ranges, refuse_unknown


@dataclass
class TrainConfig:
    steps: int = 200  # optimiser steps: more fits the train split better, at linear cost
    batch_size: int = 16  # examples per step (x group_size rollouts with GRPO): memory vs. gradient noise
    learning_rate: float = 1e-3  # AdamW peak rate; the 1.5B's full setup uses 1e-5 (pretrained weights move)
    weight_decay: float = 0.0  # AdamW decoupled decay: it pulls A_d, B_d toward 0, away from I, hence 0
    warmup_steps: int = 10  # linear warm-up, then the cosine decay to 0: avoids a first-step jump
    seed: int = 0  # everything random in the run (init noise, data order, rollouts): one seed, one run
    max_length: int = 128  # tokens of prompt + answer: longer rows are refused, not truncated
    # GRPO (mixer: grpo only), see mawt/training/grpo.py.
    group_size: int = 4  # G rollouts per example: a better baseline for the advantage, G x the compute
    lambda_pg: float = 1.0  # weight of the policy-gradient loss against the answer cross-entropy
    # KL(pi || pi_ref) weight: holds the policy near its start (stability vs. learning). In reward units
    # (rloo): 0.01 was the weight for unit-scale grpo advantages, times a typical reward std of ~0.1 nats
    # between depths; 0, 0.001 and 0.01 learn the same here (benchmarks/policy_beta.py, docs/grpo.md).
    beta: float = 0.001
    eta: float = 0.001  # entropy bonus weight: keeps exploring the depths (too high: stays uniform)
    reuse_prefix: bool = True  # run the frozen prefix once, the trainable suffix G times (same result, faster)
    # Which reward a depth choice is credited with: token (per-position CE, exact for MAWT in the
    # last layer, an approximation below it) | sequence (mean answer CE of the rollout) | exact
    # (every depth evaluated at every answer position, last layer only). See mawt/training/grpo.py.
    credit: str = "token"
    # Advantage: rloo (leave-one-out baseline, in reward units: a bigger gap pushes harder; with exact
    # credit the gradient is exactly that of the expected reward) | dr_grpo (r - mean, Liu et al. 2025)
    # | grpo ((r - mean) / std: scale-free, a 0.001-nat gap pushes almost as hard as a 1-nat one).
    advantage: str = "rloo"
    # none | shuffled. Negative control: a policy trained on rewards permuted within each group learns nothing
    # about which depth helps; compare the learned policy with it (GRPO only; mawt/training/grpo.py).
    reward_control: str = "none"
    logging_steps: int = 10  # steps between metrics.jsonl lines: resolution of the curves vs. file size
    save_steps: int = 50  # Trainer checkpoints (resume after a kill); 0 = none, a kill restarts the run
    device: str = "auto"  # auto | cpu | cuda: where training runs (auto: cuda when visible)
    dtype: str = "float32"  # float32 | bfloat16: compute dtype; trainable masters stay float32 (mawt/training/models.py)

    # allowed values (class constants, not fields: no annotation); numbers: mawt/common/ranges.py
    RANGES = {"steps": ">= 1", "batch_size": ">= 1", "learning_rate": "> 0", "weight_decay": ">= 0",
              "warmup_steps": ">= 0", "seed": ">= 0", "max_length": ">= 1", "group_size": ">= 1",
              "lambda_pg": ">= 0", "beta": ">= 0", "eta": ">= 0", "logging_steps": ">= 1",
              "save_steps": ">= 0; 0 = none"}
    CREDITS = ("token", "sequence", "exact")
    ADVANTAGES = ("grpo", "dr_grpo", "rloo")
    REWARD_CONTROLS = ("none", "shuffled")

    def __post_init__(self) -> None:
        check_ranges(self, "train.")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"train.device={self.device!r} is invalid: allowed are auto, cpu, cuda")
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"train.dtype={self.dtype!r} is invalid: allowed are float32, bfloat16")
        if self.credit not in self.CREDITS:
            raise ValueError(f"train.credit={self.credit!r} is invalid: allowed are {', '.join(self.CREDITS)}")
        if self.advantage not in self.ADVANTAGES:
            raise ValueError(f"train.advantage={self.advantage!r} is invalid: allowed are "
                             f"{', '.join(self.ADVANTAGES)}")
        if self.reward_control not in self.REWARD_CONTROLS:
            raise ValueError(f"train.reward_control={self.reward_control!r} is invalid: allowed are "
                             f"{', '.join(self.REWARD_CONTROLS)}")


@dataclass
class EvalConfig:
    """How a checkpoint is evaluated: the single source of every evaluation setting
    (`eval-heldout`, the answer loss and the lm-eval tasks all read it). It is not
    part of the training run id: editing it re-runs evaluation, not training."""

    batch_size: int = 32  # prompts per generation / answer-loss batch: memory vs. speed
    # New tokens per answer, thinking included: the thinking budget of a reasoning model (the
    # published task: 2048). A sample that reaches it without EOS is counted as truncated.
    max_new_tokens: int = 24
    temperature: float = 0.0  # 0 = greedy (deterministic); > 0 samples (DeepSeek's protocol: 0.6)
    top_p: float = 1.0  # nucleus sampling mass (DeepSeek: 0.95); ignored when greedy
    n_samples: int = 1  # samples per item; the score is pass@1 averaged over them (needs temperature > 0)
    seed: int = 0  # sampling seed (a run is determined by its configs and seeds)
    # For chat templates that open a <think> block: `empty` answers after an empty think block
    # (the format runs are fine-tuned in), `native` lets the model think first (its own mode).
    thinking: str = "empty"
    max_length: int = 128  # tokens of prompt + answer + EOS in the answer-loss pass (longer: refused)

    RANGES = {"batch_size": ">= 1", "max_new_tokens": ">= 1", "temperature": ">= 0; 0 = greedy",
              "top_p": "(0, 1]", "n_samples": ">= 1", "seed": ">= 0", "max_length": ">= 1"}  # mawt/common/ranges.py
    THINKING = ("empty", "native")

    def __post_init__(self) -> None:
        check_ranges(self, "eval.")
        if self.n_samples > 1 and self.temperature == 0:
            raise ValueError(f"eval.n_samples={self.n_samples} needs eval.temperature > 0: greedy samples are "
                             "all the same answer")
        if self.thinking not in self.THINKING:
            raise ValueError(f"eval.thinking={self.thinking!r} is invalid: allowed are {', '.join(self.THINKING)}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class RunConfig:
    base_model: str = "assets/micro_base"  # a save_pretrained directory or a hub id (default: the shipped micro base)
    tokenizer: str | None = None  # default: the base model's directory / id
    trust_remote_code: bool = False  # runs code from the model's repository: never on unless a run file says so
    data: DataConfig = field(default_factory=DataConfig)  # the split trained and evaluated on (mawt/data/sources.py)
    mawt: MAWTConfig | None = field(default_factory=MAWTConfig)  # the layer (mawt/layer/config.py); null: unpatched
    # Which parameters train: last | last:N (the last N decoder layers) | mawt (MAWT parameters
    # only) | all. MAWT parameters always train. More layers: more capacity and memory.
    trainable: str = "last"
    train: TrainConfig = field(default_factory=TrainConfig)  # the optimisation (above)
    eval: EvalConfig = field(default_factory=EvalConfig)  # how checkpoints are evaluated; not in the run id

    def __post_init__(self) -> None:
        if not isinstance(self.trainable, str):
            raise ValueError(f"trainable={self.trainable!r} is invalid: allowed are {FREEZE_MODES}")
        trainable_tail(self.trainable, n_layers=None)  # the form; the layer count is checked in preflight
        if self.uses_grpo and self.train.group_size < 2:
            raise ValueError(
                f"train.group_size={self.train.group_size} is invalid for mixer grpo: "
                "group-relative advantages need at least 2 rollouts"
            )
        if (self.uses_grpo and self.train.credit == "exact" and any(i < 0 and i != -1 for i in self.mawt.layers)):
            # negative indices are known to be below the last layer without the model (absolute: preflight)
            raise ValueError(f"train.credit='exact' needs MAWT only in the last layer, but mawt.layers="
                             f"{self.mawt.layers}: use train.credit 'token' or 'sequence'")

    @property
    def uses_grpo(self) -> bool:
        """Whether the depth choice is a sampled policy trained with GRPO (mawt/training/grpo.py)."""
        return self.mawt is not None and self.mawt.uses_grpo

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def training_dict(self) -> dict:
        """The config without `eval`: what the training run id hashes (an eval-only edit keeps it)."""
        return training_part(self.to_dict())


def training_part(config: dict) -> dict:
    """A resolved run config's mapping without its `eval` section: what training reads and the run id
    hashes (the one builder: `RunConfig.training_dict` and the workflow's run index use it)."""
    return {k: v for k, v in config.items() if k != "eval"}


_SECTIONS = {"data": DataConfig, "mawt": MAWTConfig, "train": TrainConfig, "eval": EvalConfig}


def _build(cls, data, where: str, section: str | None = None):
    """A mapping -> `cls`, recursing into RunConfig's sections; errors name `where` and the YAML key.
    In a section (`section`: its key), a misplaced key is named at `where.section`, and a bad value
    by its own YAML key after `where` (`file: key variants.v: mawt.depth=0 is invalid ...`)."""
    here = f"{where}.{section}" if section else where
    if not isinstance(data, dict):
        raise ValueError(f"{here}: expected a mapping, got {type(data).__name__}")
    if cls is MAWTConfig:
        refuse_renamed(data, here)
    refuse_unknown(data, cls, here)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key in _SECTIONS and cls is RunConfig:
            kwargs[key] = None if (key == "mawt" and value is None) else _build(_SECTIONS[key], value, where, key)
        else:
            default = fields[key].default
            if isinstance(default, bool) and not isinstance(value, bool):
                name = f"{section}.{key}" if section else key
                raise ValueError(f"{where}: {name}={value!r} is invalid: must be true or false")
            if isinstance(default, float) and isinstance(value, str):
                try:  # YAML 1.1 reads 1e-3 as a string
                    value = float(value)
                except ValueError:
                    pass  # refused by the class's RANGES (mawt/common/ranges.py), like every other bad number
            if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            kwargs[key] = value
    try:
        return cls(**kwargs)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def _read_config(path: Path, kind: str) -> dict:
    """A config YAML's mapping (mawt.common.yamlfile: duplicate keys, size, aliases, encoding checked);
    a missing file or bad YAML is one line naming it."""
    data = yamlfile.load(path, f"{kind} config")
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"{kind} config {str(path)!r}: expected a mapping of settings, got {type(data).__name__}")
    return data or {}


_KINDS = {RunConfig: "run", EvalConfig: "eval", DataConfig: "data"}  # what a YAML file of the class is called


def load(source, cls=RunConfig, where: str | None = None):
    """The validated `cls` from a YAML file's path (read safely, mawt.common.yamlfile), a mapping, or
    None (the defaults). Errors name `where` (default: the file, or the class) and the key."""
    if source is None:
        return cls()
    if isinstance(source, (str, Path)):
        kind = _KINDS.get(cls, cls.__name__)
        data = _read_config(Path(source), kind)
        return _build(cls, data, where or (str(source) if cls is RunConfig else f"{source} ({kind})"))
    return _build(cls, source, where or cls.__name__)
