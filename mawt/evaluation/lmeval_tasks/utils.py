"""Helpers of the local lm-eval tasks `verbal_heldout` and `verbal_choice` (see the YAMLs).

Both read the held-out JSONL named by the task metadata and render every prompt with
`mawt.data.prompts.prompt_text(tokenizer, challenge, thinking)`, the one prompt format of
mawt's training and evaluation. The metadata keys (lm-eval hands a task's metadata
to its `custom_dataset` loader, merged with the model arguments on the lm_eval
command line):

* `heldout`: the JSONL file (default: `data/heldout.jsonl` in the working directory);
* `tokenizer` (else `pretrained`, the model directory of `--model_args`): whose chat
  template renders the prompts;
* `thinking`: `empty` (default) or `native`, as `EvalConfig.thinking`.

Importing this module imports `mawt.layer.patching`, which registers the MAWT model classes
(model_type `mawt_*`) with transformers' Auto classes. The lm_eval CLI imports it before
it loads the model only when the task is given as a YAML path (see README.md).
"""

from __future__ import annotations

import random
import string
from pathlib import Path
from typing import Any

import datasets

import mawt.layer.patching  # noqa: F401  (registers the mawt_* model types)
from mawt.data.split import read_jsonl
from mawt.data.prompts import prompt_text, think_open
from mawt.training.runconfig import EvalConfig
from mawt.evaluation.evaluate import score_samples
from mawt.evaluation.scoring import exact_match

N_DISTRACTORS = 3  # verbal_choice: the gold answer among 3 distractors


def _heldout_path(heldout: str | None, data_files: Any) -> Path:
    if heldout:
        return Path(heldout)
    if isinstance(data_files, dict) and data_files.get("test"):
        return Path(data_files["test"])
    if isinstance(data_files, str):
        return Path(data_files)
    raise ValueError("verbal_heldout / verbal_choice: no held-out file; pass the task metadata `heldout`")


def _tokenizer(tokenizer: Any, pretrained: Any):
    source = tokenizer if tokenizer is not None else pretrained
    if source is None:
        raise ValueError(
            "verbal_heldout / verbal_choice render prompts with the model's tokenizer (its chat template): "
            "pass the task metadata `tokenizer` (the model directory), or run with "
            "`--model_args pretrained=MODEL_DIR`")
    if not isinstance(source, (str, Path)):  # a tokenizer object
        return source
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(source))


def prompt_rows(heldout: str | None = None, data_files: Any = None, tokenizer: Any = None,
                pretrained: Any = None, thinking: str = "empty") -> list[dict]:
    """The held-out rows, each with `prompt` (mawt.data.prompts.prompt_text) and `think_open` added."""
    if thinking not in EvalConfig.THINKING:
        raise ValueError(f"thinking={thinking!r} is invalid: allowed are {', '.join(EvalConfig.THINKING)}")
    path = _heldout_path(heldout, data_files)
    if not path.is_file():
        raise ValueError(f"held-out file {str(path)!r} does not exist (task metadata `heldout`)")
    tok = _tokenizer(tokenizer, pretrained)
    opened = think_open(tok, thinking)
    rows = read_jsonl(path)
    for r in rows:
        r["prompt"] = prompt_text(tok, r["challenge"], thinking)
        r["think_open"] = opened
    return rows


def _dataset(rows: list[dict]) -> datasets.DatasetDict:
    """In memory (no datasets cache); every row gets every column (missing ones None)."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return datasets.DatasetDict({"test": datasets.Dataset.from_dict({k: [r.get(k) for r in rows] for k in keys})})


def load_heldout(heldout: str | None = None, data_files: Any = None, tokenizer: Any = None, pretrained: Any = None,
                 thinking: str = "empty", **_: Any) -> datasets.DatasetDict:
    """`verbal_heldout`'s dataset: the held-out rows with their `prompt` and `think_open`.

    lm-eval calls it with the task metadata (`heldout`, `tokenizer` / `pretrained`, `thinking`)
    and the YAML's dataset_kwargs (`data_files`, the default file)."""
    return _dataset(prompt_rows(heldout, data_files, tokenizer, pretrained, thinking))


# ---------------------------------------------------------------- verbal_heldout scoring


def strip_responses(resps: list[list[str]], docs: list[dict]) -> list[list[str]]:
    """Filter: surrounding whitespace off every response (as mawt.evaluation.generation.generate does).
    All samples of a doc are kept (`repeats` = eval.n_samples); process_results averages them."""
    return [[r.strip() for r in inst] for inst in resps]


def process_results(doc: dict, results: list) -> dict[str, float]:
    """One doc's scores: per sample 0/1 (mawt.evaluation.scoring), the mean over its samples (pass@1)."""
    responses = results[0]
    if isinstance(responses, str):  # a filter list ending in take_first
        responses = [responses]
    # mawt.evaluation.evaluate's own per-item record: the same scores, averaged over the samples the same way
    item = score_samples(doc, [{"text": r, "tokens": 0, "eos": True} for r in responses],
                         bool(doc.get("think_open") or False))
    return {"exact_match": item["exact_match"], "challenge_metric": item["challenge_metric"],
            "challenge_strict": item["challenge_strict"]}


# ---------------------------------------------------------------- verbal_choice


def _key(text: Any) -> str:
    """Normalised answer: case, inner whitespace and surrounding punctuation ignored."""
    return " ".join(str(text).split()).lower().strip(string.punctuation + string.whitespace)


def choice_set(rows: list[dict], index: int, k: int = N_DISTRACTORS) -> tuple[list[str], int]:
    """Item `index`'s choices (its gold answer among `k` distractors) and the gold's position.

    Distractors are answers of other items of the same `family` (rows without a family: of
    all other items), distinct from the gold (no `exact_match` with it) and from each other
    after normalisation; a family with too few such answers is topped up from all items.
    Everything is drawn with `random.Random(index)`: the same file gives the same choices."""
    row = rows[index]
    gold = str(row["answer"])
    rng = random.Random(index)
    family = row.get("family")
    same = [j for j, r in enumerate(rows) if j != index and family is not None and r.get("family") == family]
    in_family = set(same)
    others = [j for j in range(len(rows)) if j != index and j not in in_family]
    chosen: list[str] = []
    seen = {_key(gold)}
    for pool in (same, others):
        candidates = []
        for j in pool:
            answer = str(rows[j]["answer"])
            if not _key(answer) or _key(answer) in seen or exact_match(answer, gold) or exact_match(gold, answer):
                continue
            seen.add(_key(answer))
            candidates.append(answer)
        chosen += rng.sample(candidates, min(k - len(chosen), len(candidates)))
        if len(chosen) == k:
            break
    if len(chosen) < k:
        raise ValueError(f"verbal_choice: item {index} has only {len(chosen)} distinct distractor answers in the "
                         f"held-out file, {k} are needed")
    position = rng.randrange(k + 1)
    return chosen[:position] + [gold] + chosen[position:], position


def load_choice(heldout: str | None = None, data_files: Any = None, tokenizer: Any = None, pretrained: Any = None,
                thinking: str = "empty", **_: Any) -> datasets.DatasetDict:
    """`verbal_choice`'s dataset: the rows of `load_heldout` plus `choices` and `gold` (choice_set)."""
    rows = prompt_rows(heldout, data_files, tokenizer, pretrained, thinking)
    sets = [choice_set(rows, i) for i in range(len(rows))]
    for r, (choices, gold) in zip(rows, sets, strict=True):
        r["choices"], r["gold"] = choices, gold
    return _dataset(rows)
