"""One fine-tuning run and one held-out evaluation, as the CLI and the workflow call them."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import torch

from . import atomic
from .data import AnswerCollator, encode_example, load_rows, read_jsonl, split, write_split
from .patching import freeze, patch_model
from .runconfig import EvalConfig, RunConfig

PACKAGES = ("torch", "transformers", "accelerate", "datasets", "tokenizers", "lm-eval", "numpy", "pandas",
            "snakemake", "mawt")


def environment() -> dict:
    """Versions, git commit and hardware, for every run's metadata."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    try:
        root = Path(__file__).resolve().parents[1]
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
        # uncommitted edits to tracked files mean the commit alone does not reproduce the run
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                    capture_output=True, text=True, timeout=10).stdout.strip()) if commit else None
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {"versions": versions, "git_commit": commit, "git_dirty": dirty, "python": platform.python_version(),
            "machine": platform.machine(), "cpu_model": cpu_model(),
            # float results depend on the kernels torch picked (AVX2 vs AVX-512 ...), so record them
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_threads": torch.get_num_threads(),
            "kernel_env": {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR") if k in os.environ},
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def weights_sha256(model_dir: str) -> str | None:
    """sha256 of a local model's safetensors weights (None for a hub id)."""
    import hashlib

    files = sorted(Path(model_dir).glob("*.safetensors")) if Path(model_dir).is_dir() else []
    if not files:
        return None
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.read_bytes())
    return digest.hexdigest()


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device='cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    return name


def _check_model_source(name: str) -> None:
    """A local-looking model path must be a save_pretrained directory (hub ids are org/name)."""
    looks_local = Path(name).exists() or name.startswith((".", "/", "~")) or name.count("/") >= 2
    if looks_local and not (Path(name) / "config.json").is_file():
        raise ValueError(f"base_model={name!r}: no model there (expected a save_pretrained directory "
                         "with config.json)")


def _unloadable(cfg: RunConfig, err: Exception) -> ValueError:
    return ValueError(f"base_model={cfg.base_model!r} could not be loaded ({str(err).splitlines()[0][:200]}); "
                      "offline, point base_model at a local save_pretrained directory")


def upcast_trainable(model) -> str:
    """Hold every trainable parameter in float32 (the master weights); frozen ones keep
    their dtype. Under bf16 (`train.dtype: bfloat16`) the frozen weights stay bf16 and
    compute runs in bf16 autocast (mawt.trainer), but the optimiser updates float32
    weights: a bf16 weight would round away every Adam step below half its ulp
    (at lr 1e-5, most of them on A_d = I + noise). Returns the trainable dtype's name."""
    for p in model.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()
    return "float32"


def load_base(cfg: RunConfig, device: str):
    """Tokenizer and base model (safetensors only); `preflight` has checked the source."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = torch.bfloat16 if cfg.train.dtype == "bfloat16" else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(cfg.tokenizer or cfg.base_model,
                                                  trust_remote_code=cfg.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(cfg.base_model, dtype=dtype, use_safetensors=True,
                                                     trust_remote_code=cfg.trust_remote_code)
    except OSError as err:
        raise _unloadable(cfg, err) from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device), tokenizer


def preflight(cfg: RunConfig) -> None:
    """Checks that need only the base model's config (cheap): patched layers and trainable
    layers exist, something trains. Runs before any weight is loaded or any file written."""
    from transformers import AutoConfig

    from .patching import _resolve_layers, nothing_to_train, trainable_tail

    _check_model_source(cfg.base_model)
    try:
        conf = AutoConfig.from_pretrained(cfg.base_model, trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError) as err:
        raise _unloadable(cfg, err) from None
    n = getattr(conf, "num_hidden_layers", None)
    if n is None:
        return
    if cfg.mawt is not None:
        layers = _resolve_layers(cfg.mawt.layers, n)  # the same checks patch_model makes
        if cfg.uses_grpo:
            from .grpo import check_credit

            check_credit(cfg.train.credit, layers, n)
    if trainable_tail(cfg.trainable, n) == 0 and cfg.mawt is None:
        raise nothing_to_train(cfg.trainable)


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop log lines written after the checkpoint we resume from (and a torn last line)."""
    if path.exists():
        keep = []
        for line in path.read_text().splitlines():
            try:
                if json.loads(line)["step"] <= step:
                    keep.append(line)
            except (json.JSONDecodeError, KeyError):
                break  # the line being written when the run was killed, and nothing after it
        atomic.write_text(path, "".join(line + "\n" for line in keep))


def _resume_point(checkpoints: Path) -> str | None:
    """The last complete checkpoint; folders a kill left half-written are removed."""
    from .trainer import COMPLETE, complete_checkpoints

    done = complete_checkpoints(checkpoints)
    if checkpoints.is_dir():
        for p in checkpoints.iterdir():
            if p.is_dir() and p.name.startswith("checkpoint-") and not (p / COMPLETE).is_file():
                shutil.rmtree(p)
    return str(done[-1]) if done else None


def _mean_logged_loss(path: Path) -> float | None:
    """Mean training loss over every logged step of the whole run (resumed or not)."""
    losses = [line["loss"] for line in map(json.loads, path.read_text().splitlines()) if "loss" in line]
    return sum(losses) / len(losses) if losses else None


def prepare_data(cfg, out_dir: Path) -> tuple[list[dict], list[dict]]:
    """Load and split the data (study protocol); write train/heldout JSONL + manifest."""
    parts = split(load_rows(cfg), cfg)
    write_split(*parts, cfg, Path(out_dir), duplicates_removed=parts.duplicates_removed)
    return parts.train, parts.heldout


def train_run(cfg: RunConfig, out: Path, split_dir: Path | None = None) -> dict:
    """Split the data (or read a prepared split), patch, freeze, fine-tune, save;
    returns the run summary (also written to run.json). The held-out evaluation is its
    own step (`eval_heldout`): its settings (`eval:`) are not part of the training run."""
    from transformers import TrainingArguments, set_seed

    from .trainer import JsonlLogger, MAWTTrainer

    out = Path(out)
    device = _device(cfg.train.device)
    preflight(cfg)
    if split_dir is not None:
        train_rows = read_jsonl(Path(split_dir) / "train.jsonl")
    else:
        parts = split(load_rows(cfg.data), cfg.data)
        train_rows = parts.train
    set_seed(cfg.train.seed)
    model, tokenizer = load_base(cfg, device)
    # every example must fit train.max_length: refused (naming the row) before anything is written
    examples = [encode_example(tokenizer, r, cfg.train.max_length, "train.max_length", i)
                for i, r in enumerate(train_rows)]
    if cfg.mawt is not None:
        patch_model(model, cfg.mawt)
        model.to(device)
    n_trainable = freeze(model, cfg.trainable)
    trainable_dtype = upcast_trainable(model)
    if split_dir is None:
        write_split(*parts, cfg.data, out / "data", duplicates_removed=parts.duplicates_removed)

    # metrics are appended here while training and become metrics.jsonl only when the run ends
    partial = out / "metrics.jsonl.partial"
    out.mkdir(parents=True, exist_ok=True)
    if (out / "metrics.jsonl").exists():  # a finished (or nearly finished) run: its log becomes the partial
        if partial.exists():                 # again, cut back to the checkpoint we resume from, or dropped
            (out / "metrics.jsonl").unlink()
        else:
            os.replace(out / "metrics.jsonl", partial)
    t = cfg.train
    report_to = ["tensorboard"] if _has("tensorboard") else []
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"), max_steps=t.steps, per_device_train_batch_size=t.batch_size,
        learning_rate=t.learning_rate, weight_decay=t.weight_decay, warmup_steps=t.warmup_steps,
        lr_scheduler_type="cosine", logging_steps=t.logging_steps,
        save_strategy="steps" if t.save_steps else "no", save_steps=t.save_steps or 1, save_total_limit=1,
        report_to=report_to, seed=t.seed, data_seed=t.seed,
        # bf16: MAWTTrainer runs the loss in bf16 autocast itself (every path, GRPO's included);
        # the Trainer's own mixed precision stays off so nothing casts twice
        use_cpu=device == "cpu", bf16=False, dataloader_num_workers=0,
        remove_unused_columns=False,
    )
    trainer = MAWTTrainer(model=model, args=args, train_dataset=examples,
                          data_collator=AnswerCollator(tokenizer.pad_token_id), run=t, use_grpo=cfg.uses_grpo,
                          callbacks=[JsonlLogger(partial)])
    last = _resume_point(out / "checkpoints")
    if last:
        _truncate_metrics(partial, int(Path(last).name.split("-")[-1]))
    elif partial.exists():
        partial.unlink()
    started = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=last)
    except FloatingPointError:  # diverged: no metrics file at all, so nothing downstream can average it
        partial.unlink(missing_ok=True)
        raise
    train_seconds = time.perf_counter() - started

    with atomic.atomic_path(out / "model") as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    partial.touch()  # (a run of 0 logged steps still gets its file)
    os.replace(partial, out / "metrics.jsonl")
    summary = {
        "config": cfg.training_dict(),  # eval settings live with each evaluation (eval-<id>/heldout.json)
        "seed": t.seed,
        "trainable_parameters": n_trainable,
        "trainable_dtype": trainable_dtype,  # master weights the optimiser updates
        "compute_dtype": t.dtype,  # bf16: autocast over frozen bf16 weights
        "base_model_sha256": weights_sha256(cfg.base_model),  # which base (machines pre-train different ones)
        "train_loss": _mean_logged_loss(out / "metrics.jsonl"),
        "train_seconds": train_seconds,
        "resumed_from": Path(last).name if last else None,
        "environment": environment(),
    }
    atomic.write_json(out / "run.json", summary)
    return summary


def load_checkpoint(model_dir: Path, device: str = "auto"):
    """Tokenizer and model of a checkpoint (MAWT or plain), in the dtype its config names
    (a bf16 run's float32 master weights are evaluated in bf16, as they were trained)."""
    from transformers import AutoTokenizer

    from .patching import load_model

    _check_model_source(str(model_dir))
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = load_model(model_dir, dtype="auto")
    except OSError as err:
        raise ValueError(f"model {str(model_dir)!r} could not be loaded ({str(err).splitlines()[0][:200]}); "
                         "offline, run `python -m mawt fetch` where there is network first") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(_device(device)), tokenizer


def eval_heldout(model_dir: Path, heldout: Path, out: Path, cfg: EvalConfig | None = None,
                 device: str = "auto") -> dict:
    """Scores per item, answer loss, reasoning quantities, held-out selector statistics -> JSON
    (mawt.evaluate). Bad settings are refused before anything is written."""
    from .evaluate import evaluate_heldout

    cfg = cfg or EvalConfig()
    rows = read_jsonl(heldout)
    model, tokenizer = load_checkpoint(model_dir, device)
    result = evaluate_heldout(model, tokenizer, rows, cfg)
    result["model"] = str(model_dir)
    result["environment"] = environment()
    atomic.write_json(out, result)
    return result


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def attention_example(model_dir: Path, heldout: Path, out: Path, index: int = 0, head: int | None = None) -> dict:
    """The 5D attention of one held-out prompt (+ gold answer) -> .npz for the report's heatmaps.

    Saves the first MAWT layer's (H, L, L, D) maps as float16, the token strings,
    the layer index and a head: `head`, or the one whose D maps differ most
    (largest mean absolute deviation from the slices' mean) -- the head where
    the depth dimension is doing something.
    """
    import numpy as np

    from .data import prompt_text
    from .patching import capture

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
