"""Helpers of the `verbal_heldout` lm-eval task (see verbal_heldout.yaml).

Importing this module imports `mawt.patching`, which registers the MAWT model classes
(model_type `mawt_*`) with transformers' Auto classes. The lm_eval CLI imports it before
it loads the model only when the task is given as a YAML path (see README.md).
"""

from __future__ import annotations

from typing import Any

import datasets

import mawt.patching  # noqa: F401  (registers the mawt_* model types)
from mawt.scoring import challenge_correct, exact_match


def load_heldout(heldout: str | None = None, data_files: Any = None, **_: Any) -> datasets.DatasetDict:
    """The held-out JSONL through the `json` builder; lm-eval passes the task metadata
    (`heldout`, from --metadata or TaskManager(metadata=...)) and dataset_kwargs here."""
    files = {"test": str(heldout)} if heldout else data_files
    return datasets.load_dataset("json", data_files=files)


def strip_responses(resps: list[list[str]], docs: list[dict]) -> list[list[str]]:
    """Filter: surrounding whitespace off every response (as mawt.evaluate.generate_answers)."""
    return [[r.strip() for r in inst] for inst in resps]


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    response = results[0]
    return {
        "exact_match": float(exact_match(response, doc["answer"])),
        "challenge_metric": float(challenge_correct(response, doc["answer"])),
    }
