"""Evaluate a checkpoint with lm-evaluation-harness' own Python API.

    run_lm_eval("RUN/model", ["verbal_heldout"], "RUN/lmeval.json", heldout="RUN/data/heldout.jsonl")
    python -m mawt.lmeval --model RUN/model --tasks verbal_heldout --heldout RUN/data/heldout.jsonl --out X.json

The local tasks live in workflow/lmeval (`verbal_heldout`: greedy answers on the
held-out split, scored with mawt.scoring). The held-out file reaches the task as
lm-eval task metadata (`heldout`), which lm-eval hands to the task's
`custom_dataset` loader; on the lm_eval command line that is `--metadata heldout=PATH`.
Without network access only local tasks (or ones with cached datasets) load.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path
from typing import Any

from . import atomic

LMEVAL_DIR = Path(__file__).resolve().parents[1] / "workflow" / "lmeval"


def _task_objects(manager: Any, tasks: list[str]) -> list[Any]:
    """Build each named task / group / tag, or raise ValueError naming the one that fails."""
    objects = []
    for name in tasks:
        try:
            loaded = manager.load([name])
        except Exception as err:  # unknown name, dataset not available offline, ...
            text = str(err.args[0] if err.args else err).strip()
            msg = text.splitlines()[0][:300] if text else ""
            raise ValueError(
                f"lm-eval task {name!r} could not be loaded ({type(err).__name__}: {msg}). "
                f"Offline only local tasks work: those in {LMEVAL_DIR} (e.g. 'verbal_heldout') "
                "or lm-eval tasks whose datasets are already in the local Hugging Face cache. "
                "verbal_heldout reads `heldout` (default: data/heldout.jsonl in the working directory)."
            ) from None
        if name in loaded.get("groups", {}):
            objects.append(loaded["groups"][name])
        elif name in loaded["tasks"]:
            objects.append(loaded["tasks"][name])
        else:  # a tag: its tasks
            objects.extend(loaded["tasks"].values())
    return objects


def _numeric_metrics(task_results: dict) -> dict[str, float]:
    """{"exact_match,strip": x, "exact_match_stderr,strip": s, "alias": ...} -> {"exact_match": x, ...}.

    Non-numeric values ("N/A" stderr of a single doc, NaN) are dropped; the ",filter" suffix
    is kept only when a task reports more than one filter."""
    items = {k: float(v) for k, v in task_results.items()
             if "," in k and isinstance(v, int | float) and not isinstance(v, bool) and not math.isnan(v)}
    single = len({k.partition(",")[2] for k in items}) == 1
    return {(k.partition(",")[0] if single else k): v for k, v in items.items()}


def run_lm_eval(model_dir: str | Path, tasks: list[str], out_json: str | Path,
                heldout: str | Path | None = None, limit: int | None = None, batch_size: int = 8,
                device: str = "cpu") -> dict:
    """Run lm_eval.simple_evaluate on a (MAWT or plain) checkpoint; write the scores to out_json.

    Returns the written dict ({"tasks": {task: {metric: v, metric_stderr: s}}, "n": {task: docs},
    "lm_eval_version", "model"}) plus, in memory only, "responses": {generate_until task:
    [its filtered output per doc, in doc order]}.
    """
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from transformers import AutoTokenizer

    from .patching import load_model

    local = TaskManager(include_path=str(LMEVAL_DIR), include_defaults=False).all_tasks
    only_local = all(t in local for t in tasks)
    manager = TaskManager(include_path=str(LMEVAL_DIR), include_defaults=not only_local,
                          metadata={"heldout": str(Path(heldout).resolve())} if heldout else None)
    task_objects = _task_objects(manager, tasks)

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(tokenizer, "chat_template", None) and "verbal_heldout" in tasks:
        warnings.warn("the tokenizer has a chat template: mawt prompts through it, verbal_heldout does not "
                      "(plain '{challenge}\\nAnswer: '), so its scores are not those of `mawt eval-heldout`",
                      stacklevel=2)
    model = load_model(model_dir).to(device).eval()
    # add_bos_token=False: prompts are tokenised as in training (mawt.data, add_special_tokens=False).
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device, add_bos_token=False)
    results = lm_eval.simple_evaluate(model=lm, tasks=task_objects, task_manager=manager, limit=limit,
                                      log_samples=True)

    summary = {
        "tasks": {name: _numeric_metrics(res) for name, res in results["results"].items()},
        "n": {name: int(c["effective"]) for name, c in results["n-samples"].items()},
        "lm_eval_version": lm_eval.__version__,
        "model": str(model_dir),
    }
    out = Path(out_json)
    atomic.write_json(out, summary)
    responses = {name: [s["filtered_resps"][0] for s in sorted(samples, key=lambda s: s["doc_id"])]
                 for name, samples in results.get("samples", {}).items()
                 if results["configs"][name].get("output_type") == "generate_until"}
    return {**summary, "responses": responses}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m mawt.lmeval", description=run_lm_eval.__doc__)
    p.add_argument("--model", required=True, help="checkpoint directory (MAWT or plain)")
    p.add_argument("--tasks", required=True, help="comma-separated lm-eval task names, e.g. verbal_heldout")
    p.add_argument("--heldout", help="held-out JSONL read by verbal_heldout (e.g. RUN/data/heldout.jsonl)")
    p.add_argument("--out", required=True, help="output JSON")
    p.add_argument("--limit", type=int, help="at most this many docs per task")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    result = run_lm_eval(a.model, [t for t in a.tasks.split(",") if t], a.out, a.heldout, a.limit, a.batch_size,
                         a.device)
    print(json.dumps({k: result[k] for k in ("tasks", "n")}, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
