"""One fine-tuning run: checks before any weight loads, the data split, training, saving."""

from __future__ import annotations

import time
from pathlib import Path

from mawt.common import atomic, layout
from mawt.training import ownership
from mawt.training.checkpoints import begin_metrics, finish_metrics, mean_logged_loss, resume_point, truncate_metrics
from mawt.data.sources import load_rows
from mawt.data.split import read_jsonl, split, write_split
from mawt.data.prompts import AnswerCollator, encode_example
from mawt.common.environment import environment
from mawt.training.models import check_model_source, device_for, load_base, unloadable, upcast_trainable, weights_sha256
from mawt.layer.patching import freeze, patch_model
from mawt.training.preflight import check_against
from mawt.training.runconfig import RunConfig


def check_base_config(cfg: RunConfig) -> None:
    """Checks that need only the base model's config (cheap): patched layers and trainable
    layers exist, something trains, exact credit only in the last layer, the depth's memory
    estimate (mawt/training/preflight.py, the checks the workflow makes before any job). Runs before any
    weight is loaded or any file written."""
    from transformers import AutoConfig

    check_model_source(cfg.base_model)
    try:
        conf = AutoConfig.from_pretrained(cfg.base_model, trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError) as err:
        raise unloadable(cfg, err) from None
    check_against(cfg, conf)


def train_run(cfg: RunConfig, out: Path, split_dir: Path | None = None, restart: bool = False,
              prefixes=None) -> dict:
    """Split the data (or read a prepared split), patch, freeze, fine-tune, save;
    returns the run summary (also written to run.json). The held-out evaluation is its
    own step (`eval_heldout`): its settings (`eval:`) are not part of the training run.
    `out` belongs to one config (mawt/training/ownership.py): a folder of another config is refused
    before anything is touched, unless `restart` (start over there). `prefixes`: a
    mawt.training.prefix.PrefixStore the runs of one process share (the frozen layers' output)."""
    from mawt.training.trainer import JsonlLogger, MAWTTrainer

    out = Path(out)
    device = device_for(cfg.train.device)
    check_base_config(cfg)
    if split_dir is not None and not (Path(split_dir) / layout.TRAIN_SPLIT).is_file():
        raise ValueError(f"train --split {str(split_dir)!r}: no {layout.TRAIN_SPLIT} there; give a folder written by "
                         "`python -m mawt prepare-data --out`, or leave --split out to split here")
    ownership.check(out, cfg.training_dict(), restart)
    model, tokenizer, examples, n_trainable, trainable_dtype = _prepare_model(cfg, out, split_dir, device)
    ownership.record(out, cfg.training_dict())
    partial = begin_metrics(out)
    trainer = MAWTTrainer(model=model, args=_training_arguments(cfg.train, out, device), train_dataset=examples,
                          data_collator=AnswerCollator(tokenizer.pad_token_id), run=cfg.train,
                          use_grpo=cfg.uses_grpo, prefixes=prefixes, callbacks=[JsonlLogger(partial)])
    last = resume_point(out / "checkpoints")
    if last:
        truncate_metrics(partial, int(Path(last).name.split("-")[-1]))
    elif partial.exists():
        partial.unlink()
    started = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=last)
    except FloatingPointError:  # diverged: no metrics file at all, so nothing downstream can average it
        partial.unlink(missing_ok=True)
        raise
    train_seconds = time.perf_counter() - started

    with atomic.atomic_path(out / layout.MODEL) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    finish_metrics(out)
    summary = {
        "config": cfg.training_dict(),  # eval settings live with each evaluation (eval-<id>/heldout.json)
        "seed": cfg.train.seed,
        "trainable_parameters": n_trainable,
        "trainable_dtype": trainable_dtype,  # master weights the optimiser updates
        "compute_dtype": cfg.train.dtype,  # bf16: autocast over frozen bf16 weights
        "base_model_sha256": weights_sha256(cfg.base_model),  # which base (machines pre-train different ones)
        "train_loss": mean_logged_loss(out / layout.METRICS),
        "train_seconds": train_seconds,
        "resumed_from": Path(last).name if last else None,
        "environment": environment(),
    }
    atomic.write_json(out / layout.RUN_JSON, summary)
    return summary


def _prepare_model(cfg: RunConfig, out: Path, split_dir: Path | None, device: str):
    """The train rows encoded, the base loaded, patched and frozen (trainable masters in float32);
    a run without a prepared split writes its own split under out/data."""
    from transformers import set_seed

    if split_dir is not None:
        train_rows = read_jsonl(Path(split_dir) / layout.TRAIN_SPLIT)
    else:
        parts = split(load_rows(cfg.data), cfg.data)
        train_rows = parts.train
    set_seed(cfg.train.seed)
    model, tokenizer = load_base(cfg, device)
    examples = _encode_train(cfg, tokenizer, train_rows)
    if cfg.mawt is not None:
        patch_model(model, cfg.mawt)
        model.to(device)
    n_trainable = freeze(model, cfg.trainable)
    trainable_dtype = upcast_trainable(model)
    if split_dir is None:
        write_split(*parts, cfg.data, out / "data", duplicates_removed=parts.duplicates_removed)
    return model, tokenizer, examples, n_trainable, trainable_dtype


def _encode_train(cfg: RunConfig, tokenizer, rows: list[dict]) -> list[dict]:
    """Every train row encoded. One longer than train.max_length is refused before anything is written,
    named by its row in the source (file order), which a user can find; the split's order is shuffled."""
    examples = []
    for r in rows:
        try:
            examples.append(encode_example(tokenizer, r, cfg.train.max_length, "train.max_length"))
        except ValueError:
            source = load_rows(cfg.data)  # the error path only
            k = next((i for i, s in enumerate(source) if (s["challenge"], s["answer"]) == (r["challenge"], r["answer"])),
                     None)
            which = f"data.source={cfg.data.source!r}: " + (f"source row {k} (counting from 0, in file order)"
                                                             if k is not None else "a row not in the source now")
            encode_example(tokenizer, r, cfg.train.max_length, "train.max_length", which=which)  # raises, named
            raise
    return examples


def _training_arguments(t, out: Path, device: str):
    """transformers' TrainingArguments of a run (TrainConfig `t`)."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(out / "checkpoints"), max_steps=t.steps, per_device_train_batch_size=t.batch_size,
        learning_rate=t.learning_rate, weight_decay=t.weight_decay, warmup_steps=t.warmup_steps,
        lr_scheduler_type="cosine", logging_steps=t.logging_steps,
        save_strategy="steps" if t.save_steps else "no", save_steps=t.save_steps or 1, save_total_limit=1,
        report_to=["tensorboard"] if _has("tensorboard") else [], seed=t.seed, data_seed=t.seed,
        # bf16: MAWTTrainer runs the loss in bf16 autocast itself (every path, GRPO's included);
        # the Trainer's own mixed precision stays off so nothing casts twice
        use_cpu=device == "cpu", bf16=False, dataloader_num_workers=0,
        remove_unused_columns=False,
    )


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
