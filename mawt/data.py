"""Verbal-reasoning data: loading, the train / held-out split, tokenisation.

Sources (`DataConfig.source`):
  * `synthetic`: the puzzle generator of mawt/puzzles.py (the embedded default);
  * a local file: `.parquet`, `.jsonl` / `.json`, `.csv`;
  * a Hugging Face dataset id (`nuprl/verbal-reasoning-challenge`, split `test`),
    read through `datasets` (the local cache works offline).

Split protocol of the original study: shuffle with seed 42, the first 300 rows
train, the next 50 rows held out (sizes and seed configurable). The held-out rows
never reach training: `split` drops every training row whose content hash is also
held out, and the manifest written next to the split files records both hash lists.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from . import atomic, puzzles


@dataclass
class DataConfig:
    # `synthetic`, a local .parquet/.jsonl/.json/.csv file, or a Hugging Face dataset id.
    source: str = "synthetic"
    split: str = "test"  # hub split (the challenge data ships a single `test` split)
    challenge_column: str = "challenge"
    answer_column: str = "answer"
    seed: int = 42  # shuffle seed of the split protocol
    n_train: int = 300
    n_heldout: int = 50
    # Synthetic generator settings (ignored for other sources).
    families: list[str] = field(default_factory=lambda: list(puzzles.FAMILIES))
    steps: int = 1
    difficulty: int = 2
    synthetic_rows: int = 400  # generated before the split

    def __post_init__(self) -> None:
        for name in ("n_train", "n_heldout", "synthetic_rows"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"data.{name}={value!r} is invalid: must be an integer >= 1")


def content_hash(row: dict) -> str:
    """Hash of a row's content (challenge + answer), whitespace- and case-insensitive."""
    text = " ".join(row["challenge"].split()).lower() + "\x1f" + " ".join(row["answer"].split()).lower()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_file(path: Path):
    import pandas as pd

    readers = {".parquet": pd.read_parquet, ".csv": pd.read_csv, ".jsonl": lambda p: pd.read_json(p, lines=True),
               ".json": pd.read_json}
    if path.suffix not in readers:
        raise ValueError(f"data.source={str(path)!r}: unsupported file type {path.suffix!r}; "
                         f"use one of {', '.join(readers)}")
    try:
        frame = readers[path.suffix](path)
    except ValueError as err:  # pandas: empty or malformed file
        raise ValueError(f"data.source={str(path)!r} could not be read: {err}") from None
    return frame.to_dict("records")


def _read_hub(cfg: DataConfig):
    import datasets

    try:
        ds = datasets.load_dataset(cfg.source, split=cfg.split)
    except Exception as err:  # offline, unknown id, missing split: all the same advice
        raise ValueError(
            f"data.source={cfg.source!r}: the Hugging Face dataset could not be loaded "
            f"({type(err).__name__}: {str(err).splitlines()[0][:200]}). Without network access, "
            "download it elsewhere and point data.source at a local .parquet/.jsonl/.csv file "
            f"with columns {cfg.challenge_column!r} and {cfg.answer_column!r}."
        ) from None
    return list(ds)


def load_rows(cfg: DataConfig) -> list[dict]:
    """All rows of the source as {"challenge", "answer"} dicts (other columns kept)."""
    if cfg.source == "synthetic":
        return puzzles.generate(cfg.synthetic_rows, cfg.families, cfg.steps, cfg.difficulty, seed=cfg.seed)
    path = Path(cfg.source)
    looks_local = path.suffix != "" or path.exists() or cfg.source.startswith((".", "/"))
    if looks_local and not path.exists():
        raise ValueError(f"data.source={cfg.source!r}: no such file")
    raw = _read_file(path) if looks_local else _read_hub(cfg)
    if not raw:
        raise ValueError(f"data.source={cfg.source!r} has no rows")
    missing = [c for c in (cfg.challenge_column, cfg.answer_column) if c not in raw[0]]
    if missing:
        raise ValueError(
            f"data.source={cfg.source!r} lacks column(s) {missing}; it has {sorted(raw[0])}. "
            "Set data.challenge_column / data.answer_column to the right names."
        )
    rows = []
    for i, r in enumerate(raw):
        challenge, answer = r[cfg.challenge_column], r[cfg.answer_column]
        if not isinstance(answer, str) or not answer.strip() or not isinstance(challenge, str) or not challenge.strip():
            raise ValueError(f"data.source={cfg.source!r}: row {i} has an empty challenge or answer")
        rows.append({**r, "challenge": challenge, "answer": answer})
    return rows


def split(rows: list[dict], cfg: DataConfig) -> tuple[list[dict], list[dict]]:
    """Shuffle with `cfg.seed`; first n_train rows train, next n_heldout held out.

    Training rows whose content also occurs in the held-out part are dropped
    (duplicates in the source must not leak the held-out answers).
    """
    need = cfg.n_train + cfg.n_heldout
    if len(rows) < need:
        raise ValueError(
            f"data.source={cfg.source!r} has {len(rows)} rows, fewer than n_train + n_heldout = {need}"
        )
    order = list(range(len(rows)))
    random.Random(cfg.seed).shuffle(order)
    train = [rows[i] for i in order[: cfg.n_train]]
    heldout = [rows[i] for i in order[cfg.n_train : need]]
    held = {content_hash(r) for r in heldout}
    train = [r for r in train if content_hash(r) not in held]
    return train, heldout


def write_split(train: list[dict], heldout: list[dict], cfg: DataConfig, out_dir: Path) -> None:
    """train.jsonl, heldout.jsonl and manifest.json (content hashes of both parts)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("heldout", heldout)):
        atomic.write_text(out_dir / f"{name}.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    manifest = {
        "data": cfg.__dict__,
        "n_train": len(train),
        "n_heldout": len(heldout),
        "train_hashes": sorted(content_hash(r) for r in train),
        "heldout_hashes": sorted(content_hash(r) for r in heldout),
    }
    atomic.write_json(out_dir / "manifest.json", manifest)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]




# ---------------------------------------------------------------- tokenisation


def prompt_text(tokenizer, challenge: str) -> str:
    """The model's prompt: the chat template when the tokenizer has one."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": challenge}], tokenize=False, add_generation_prompt=True
        )
    return f"{challenge}\nAnswer: "


def encode_example(tokenizer, row: dict, max_length: int) -> dict:
    """prompt + answer + eos; labels are -100 on the prompt (loss on the answer only)."""
    prompt = tokenizer(prompt_text(tokenizer, row["challenge"]), add_special_tokens=False)["input_ids"]
    answer = tokenizer(row["answer"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = (prompt + answer)[:max_length]
    labels = ([-100] * len(prompt) + answer)[:max_length]
    return {"input_ids": ids, "labels": labels}


@dataclass
class AnswerCollator:
    """Right-pads a list of encoded examples; padding gets label -100 and mask 0."""

    pad_token_id: int

    def __call__(self, features: list[dict]) -> dict:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(features), width), -100, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n] = torch.tensor(f["input_ids"])
            labels[i, :n] = torch.tensor(f["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}
