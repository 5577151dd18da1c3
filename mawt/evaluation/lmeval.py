"""Evaluate a checkpoint with lm-evaluation-harness' own Python API.

    run_lm_eval("RUN/model", ["verbal_heldout"], "RUN/lmeval.json", heldout="RUN/data/heldout.jsonl",
                eval_cfg=EvalConfig(...))
    python -m mawt lm-eval --model RUN/model --tasks verbal_heldout verbal_choice \
        --heldout SPLIT/heldout.jsonl --eval-config eval.yaml --out X.json

The local tasks live in mawt/evaluation/lmeval_tasks (package data): `verbal_heldout` generates answers on the
held-out split exactly as mawt.evaluation.evaluate does (prompts of mawt.data.prompts.prompt_text, chat
template and thinking mode included; stop at EOS or the budget only; mawt.evaluation.scoring's
exact_match, challenge_metric, challenge_strict; pass@1 over eval.n_samples samples);
`verbal_choice` is the same items as multiple choice (log-likelihood path, acc and
acc_norm). Budget, sampling, seed, thinking mode and batch size come from one
`EvalConfig` (mawt/training/runconfig.py). The held-out file, the tokenizer (the model
directory) and the thinking mode reach the tasks as lm-eval task metadata (`heldout`,
`tokenizer`, `thinking`), which lm-eval hands to the tasks' `custom_dataset` loader; on
the lm_eval command line that is `--metadata`. Without network access only local tasks
(or ones with cached datasets) load.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from mawt.common import atomic
from mawt.training.runconfig import EvalConfig

LMEVAL_DIR = Path(__file__).resolve().parent / "lmeval_tasks"  # package data


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
                "The local tasks read `heldout` (default: data/heldout.jsonl in the working directory)."
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


def gen_kwargs(cfg: EvalConfig) -> dict[str, Any]:
    """lm-eval generation kwargs of an EvalConfig (simple_evaluate's `gen_kwargs`, merged into every
    generate_until task's own): the whole budget, and greedy or mawt.evaluation.generation.generate's sampling
    (temperature, top_p, no top-k cut). `until` is the task's (verbal_heldout: none, EOS only)."""
    if cfg.greedy:
        return {"max_gen_toks": cfg.max_new_tokens, "do_sample": False}
    return {"max_gen_toks": cfg.max_new_tokens, "do_sample": True, "temperature": float(cfg.temperature),
            "top_p": float(cfg.top_p), "top_k": 0}


def run_lm_eval(model_dir: str | Path, tasks: list[str], out_json: str | Path,
                heldout: str | Path | None = None, limit: int | None = None,
                eval_cfg: EvalConfig | None = None, device: str = "cpu") -> dict:
    """Run lm_eval.simple_evaluate on a (MAWT or plain) checkpoint; write the scores to out_json.

    Settings from `eval_cfg` (default EvalConfig()): batch size, budget and sampling of every
    generate_until task (gen_kwargs), seeds, and for the local tasks the thinking mode and
    `repeats` = n_samples. Returns the written dict ({"tasks": {task: {metric: v, metric_stderr: s}},
    "n": {task: docs}, "lm_eval_version", "model", "eval": the EvalConfig}) plus, in memory only,
    "responses": {generate_until task: per doc in doc order its filtered output (a list of all
    samples when n_samples > 1)} and "loglikelihoods": {multiple_choice task: per doc the
    log-likelihood of each choice, in choice order}.
    """
    import lm_eval

    cfg = eval_cfg if eval_cfg is not None else EvalConfig()
    manager, task_objects = _load_tasks(tasks, model_dir, heldout, cfg)
    results = lm_eval.simple_evaluate(model=_hflm(model_dir, cfg, device), tasks=task_objects, task_manager=manager,
                                      limit=limit, log_samples=True, gen_kwargs=gen_kwargs(cfg),
                                      random_seed=cfg.seed, numpy_random_seed=cfg.seed, torch_random_seed=cfg.seed,
                                      fewshot_random_seed=cfg.seed)
    summary = {
        "tasks": {name: _numeric_metrics(res) for name, res in results["results"].items()},
        "n": {name: int(c["effective"]) for name, c in results["n-samples"].items()},
        "lm_eval_version": lm_eval.__version__,
        "model": str(model_dir),
        "eval": dataclasses.asdict(cfg),
    }
    atomic.write_json(Path(out_json), summary)
    return {**summary, **_per_doc(results)}


def _load_tasks(tasks: list[str], model_dir, heldout, cfg: EvalConfig) -> tuple[Any, list[Any]]:
    """The task manager and task objects; the local tasks get the held-out file, the tokenizer
    and the thinking mode as metadata, and `repeats` = n_samples."""
    from lm_eval.tasks import TaskManager

    local = TaskManager(include_path=str(LMEVAL_DIR), include_defaults=False).all_tasks
    only_local = all(t in local for t in tasks)
    metadata = {"tokenizer": str(model_dir), "thinking": cfg.thinking}
    if heldout:
        metadata["heldout"] = str(Path(heldout).resolve())
    manager = TaskManager(include_path=str(LMEVAL_DIR), include_defaults=not only_local, metadata=metadata)
    task_objects = _task_objects(manager, tasks)
    for task in task_objects:  # samples per doc: our tasks average them; others' filters would drop them
        config = getattr(task, "config", None)
        if config is not None and config.task in local and config.output_type == "generate_until":
            task.set_config(key="repeats", value=cfg.n_samples)
    return manager, task_objects


def _hflm(model_dir, cfg: EvalConfig, device: str):
    """lm-eval's HFLM around the checkpoint, loaded as eval-heldout loads it."""
    from lm_eval.models.huggingface import HFLM
    from lm_eval.models.utils import resolve_max_length

    from mawt.training.models import device_for, load_checkpoint

    # As eval-heldout: the config's dtype, the pad rule, and mawt.training.models.plain_generation_config in place of
    # the checkpoint's generation_config.json (HFLM calls model.generate itself, and transformers fills every
    # setting a call leaves unset from model.generation_config): greedy is the plain argmax, sampling uses
    # gen_kwargs' temperature and top_p only, EOS is the tokenizer's.
    device = device_for(device)  # auto -> cuda or cpu (HFLM takes a device, not 'auto')
    model, tokenizer = load_checkpoint(model_dir, device)
    model.eval()
    # HFLM keeps max_length - max_gen_toks tokens of a generation context (left-truncating the rest)
    # and refuses a budget >= max_length; mawt cuts nothing: room for the model's whole window + budget.
    window = resolve_max_length(model.config, tokenizer, default=HFLM._DEFAULT_MAX_LENGTH)
    # add_bos_token=False: prompts are tokenised as in mawt (add_special_tokens=False; a chat template
    # writes its BOS itself).
    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=cfg.batch_size, device=device,
                add_bos_token=False, max_length=window + cfg.max_new_tokens)


def _per_doc(results: dict) -> dict:
    """In memory only: each generate_until task's responses and each multiple_choice task's
    choice log-likelihoods, per doc in doc order."""
    responses, loglikelihoods = {}, {}
    for name, samples in results.get("samples", {}).items():
        ordered = sorted(samples, key=lambda s: s["doc_id"])
        kind = results["configs"][name].get("output_type")
        if kind == "generate_until":
            responses[name] = [_doc_responses(s["filtered_resps"][0]) for s in ordered]
        elif kind == "multiple_choice":
            loglikelihoods[name] = [[float(choice[0][0]) for choice in s["resps"]] for s in ordered]
    return {"responses": responses, "loglikelihoods": loglikelihoods}


def _doc_responses(filtered: Any) -> Any:
    """A doc's filtered output: its one response, or the list of its samples."""
    if isinstance(filtered, list) and len(filtered) == 1:
        return filtered[0]
    return filtered
