"""Command line: `python -m mawt --help` lists the commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    """Patch a tiny random Qwen2, show the 5D attention, check the identity property."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from mawt import MAWTConfig, capture, freeze, patch_model

    torch.manual_seed(args.seed)
    config = Qwen2Config(
        vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
    )
    base = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").eval()
    ids = torch.randint(0, config.vocab_size, (2, 16))
    mask = torch.ones_like(ids)
    mask[0, :5] = 0  # left padding in the first row
    with torch.no_grad():
        ref = base(input_ids=ids, attention_mask=mask).logits
        model = patch_model(base, MAWTConfig(depth=args.depth, mixer=args.mixer, init_noise=0.0))
        with capture(model) as cap:
            out = model(input_ids=ids, attention_mask=mask).logits
    diff = (out - ref)[mask.bool()].abs().max().item()
    (layer, probs), = cap.attentions.items()
    print(model.model.layers[layer].self_attn)
    print(f"5D attention of layer {layer}: (batch, heads, q, k, depth) = {tuple(probs.shape)}")
    print(f"max |patched - base| logits with init_noise=0: {diff:.2e} (must be <= 1e-5)")
    print(f"trainable parameters with freeze('last'): {freeze(model, 'last'):,}")
    return 0 if diff <= 1e-5 else 1


def _pretrain_micro(args: argparse.Namespace) -> int:
    from mawt.bases.micro import MicroConfig, pretrain
    from mawt.training.runconfig import load

    from mawt.common.yamlfile import load as load_yaml

    overrides = (load_yaml(args.config, "pretrain-micro config") or {}) if args.config else {}
    overrides = {**overrides, **json.loads(args.overrides or "{}")}
    cfg = load(overrides, MicroConfig, args.config or "pretrain-micro --overrides")
    pretrain(cfg, Path(args.out))
    print(f"micro base model written to {args.out}")
    return 0


def _build_standin(args: argparse.Namespace) -> int:
    from mawt.bases.standin import build

    print(f"stand-in base model written to {build(Path(args.out), num_layers=args.num_layers, seed=args.seed)}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from mawt.evaluation.fetch import fetch
    from mawt.studies.setup import load_setup

    done = fetch(load_setup(args.setup), check=args.check)
    print("\n".join(done) if done else f"setup {args.setup!r}: nothing to fetch (every source is local)")
    return 0


def _settled() -> None:
    """After a job's imports: their objects frozen out of the collector's walks (gc.freeze; run_cost.py)."""
    __import__("gc").freeze()


def _train(args: argparse.Namespace) -> int:
    from mawt.training import batch, train, trainer  # noqa: F401  (train, trainer: imported before _settled)

    _settled()
    done = batch.train_batch([Path(c) for c in args.config], [Path(o) for o in args.out],
                             Path(args.split) if args.split else None,
                             Path(args.manifest) if args.manifest else None, restart=args.restart)
    print(json.dumps(done, indent=2))
    return 0


def _prepare_data(args: argparse.Namespace) -> int:
    from mawt.data.sources import DataConfig
    from mawt.data.split import prepare_data
    from mawt.training.runconfig import load

    if args.data:
        cfg = load(args.data, DataConfig, str(args.data))
    elif args.setup:
        from mawt.studies.setup import load_setup

        setup = load_setup(args.setup)
        cfg = load(setup["data"], DataConfig, f"{setup['path']} data")
    else:
        cfg = load(args.config).data
    train, heldout = prepare_data(cfg, Path(args.out))
    print(f"{len(train)} train / {len(heldout)} held-out rows written to {args.out}")
    return 0


def _lm_eval(args: argparse.Namespace) -> int:
    from mawt.evaluation.lmeval import run_lm_eval
    from mawt.training.runconfig import EvalConfig, load

    result = run_lm_eval(Path(args.model), args.tasks, Path(args.out), heldout=args.heldout, limit=args.limit,
                         eval_cfg=load(args.eval_config, EvalConfig), device=args.device)
    print(json.dumps(result["tasks"], indent=2))
    return 0


def _table(args: argparse.Namespace) -> int:
    from mawt.analysis.tables import study_table

    frame = study_table(Path(args.index), Path(args.out_dir), plots=Path(args.plots) if args.plots else None)
    print(frame.to_string())
    return 0


def _attention(args: argparse.Namespace) -> int:
    from mawt.evaluation.evaluate import attention_example

    print(json.dumps(attention_example(Path(args.model), Path(args.heldout), Path(args.out), args.index, args.head)))
    return 0


def _report(args: argparse.Namespace) -> int:
    from mawt.analysis.report import build_report

    print(build_report([Path(p) for p in args.study_dir], Path(args.setup_file), Path(args.bench_dir), Path(args.out),
                       Path(args.tidy_out), Path(args.summary) if args.summary else None))
    return 0


def _plan(args: argparse.Namespace) -> int:
    from mawt.studies.plan import TARGET_MDE, fewest_seeds, plan, render
    from mawt.studies.setup import load_setup
    from mawt.studies.study import load_studies

    setup = load_setup(args.setup)
    studies = load_studies(setup, setup.get("studies"), Path(args.ablations))
    target = float((setup.get("plan") or {}).get("target_mde", TARGET_MDE))
    kw = {"heldout": args.heldout, "samples": args.samples, "root": args.results, "source": args.source}
    frame = plan(setup, studies, seeds=args.seeds, target=target, **kw)
    print(f"# Power plan: setup {setup['name']!r}\n\n{render(setup, frame, target)}")
    if not (frame["planned MDE"] <= target).all():
        need = fewest_seeds(setup, studies, target, **kw)
        print(f"\nSeeds that would bring every study to MDE <= {target:g}: "
              + (str(need) if need else "more than 40 (raise the samples or the held-out items)"))
    return 0


def _eval_heldout(args: argparse.Namespace) -> int:
    from mawt.evaluation.evaluate import eval_batch
    from mawt.training.runconfig import EvalConfig, load

    _settled()
    results = eval_batch([Path(m) for m in args.model], Path(args.heldout), [Path(o) for o in args.out],
                         load(args.eval_config, EvalConfig), args.device, Path(args.manifest) if args.manifest else None)
    keys = ("n", "exact_match", "challenge_metric", "challenge_strict", "closed_think_rate", "truncation_rate",
            "mean_output_tokens", "heldout_answer_loss")
    print(json.dumps([{k: r[k] for k in keys} for r in results], indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mawt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _model_commands(sub)
    _run_commands(sub)
    _result_commands(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FloatingPointError) as err:  # a user mistake (2), a diverging run (3): one line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 3 if isinstance(err, FloatingPointError) else 2


def _checkpoint_on_heldout(parser, model_help: str, out_help: str, repeat: bool = False) -> None:
    """Arguments of a command reading a checkpoint and held-out rows, writing a file (`repeat`: several)."""
    many = {"action": "append"} if repeat else {}
    parser.add_argument("--model", required=True, help=model_help, **many)
    parser.add_argument("--heldout", required=True, help="held-out rows (JSONL, e.g. SPLIT/heldout.jsonl)")
    parser.add_argument("--out", required=True, help=out_help, **many)


def _model_commands(sub) -> None:
    """Base models: the demo, the micro base, the stand-in, fetching a setup's downloads."""
    demo = sub.add_parser("demo", help="patch a tiny random model and print the 5D attention")
    demo.add_argument("--depth", type=int, default=4)
    demo.add_argument("--mixer", default="grpo")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)

    pre = sub.add_parser("pretrain-micro", help="pre-train the micro base model on synthetic puzzles")
    pre.add_argument("--config", help="YAML with MicroConfig fields (default: built-in)")
    pre.add_argument("--overrides", help="JSON object of MicroConfig fields (applied last)")
    pre.add_argument("--out", required=True, help="directory for save_pretrained")
    pre.set_defaults(func=_pretrain_micro)

    std = sub.add_parser("build-standin", help="the 1.5B's stand-in: its attention geometry, few layers, "
                         "random bf16 weights, the shipped R1-style tokenizer (mawt/bases/standin.py)")
    std.add_argument("--out", required=True, help="directory for save_pretrained")
    std.add_argument("--num-layers", type=int, default=2)
    std.add_argument("--seed", type=int, default=0)
    std.set_defaults(func=_build_standin)

    fe = sub.add_parser("fetch", help="download a setup's base model, dataset and lm-eval datasets into the "
                        "Hugging Face cache (for offline jobs)")
    fe.add_argument("--setup", required=True, help="setup name (mawt/setups/NAME.yaml) or a YAML path")
    fe.add_argument("--check", action="store_true", help="only check that everything is in the cache")
    fe.set_defaults(func=_fetch)


def _run_commands(sub) -> None:
    """One run's stages: the data split, training, the held-out and lm-eval evaluations."""
    train = sub.add_parser("train", help="fine-tune a run (patch, freeze, train, save); several: one after the other")
    train.add_argument("--config", required=True, action="append", help="run YAML (mawt/training/runconfig.py); repeat")
    train.add_argument("--out", required=True, action="append",
                       help="run directory, one per --config (resumes from its last checkpoint)")
    train.add_argument("--manifest", help="with it, a finished run of the same config is kept; then write this JSON")
    train.add_argument("--split", help="prepared split directory (train.jsonl, heldout.jsonl); default: split here")
    train.add_argument("--restart", action="store_true",
                       help="start over in --out, removing its training outputs, even if another config made them "
                            "(without it, a folder of another config is refused)")
    train.set_defaults(func=_train)

    ev = sub.add_parser("eval-heldout", help="greedy answers and both scores on the held-out split")
    _checkpoint_on_heldout(ev, "save_pretrained directory (MAWT or plain); repeat for several",
                           "JSON with per-item predictions and scores, one per --model", repeat=True)
    ev.add_argument("--manifest", help="write this JSON once every --model is evaluated")
    ev.add_argument("--eval-config", help="YAML of EvalConfig fields (a run's `eval:` section; default: defaults)")
    ev.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ev.set_defaults(func=_eval_heldout)

    prep = sub.add_parser("prepare-data", help="load and split the data: train/heldout JSONL + manifest")
    src = prep.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="run YAML (its data section)")
    src.add_argument("--setup", help="workflow setup name (mawt/setups/NAME.yaml, its data section)")
    src.add_argument("--data", help="YAML of DataConfig fields (what the workflow's data_config rule writes)")
    prep.add_argument("--out", required=True)
    prep.set_defaults(func=_prepare_data)

    lm = sub.add_parser("lm-eval", help="lm-eval tasks on a checkpoint, through lm-eval's own API")
    lm.add_argument("--model", required=True)
    lm.add_argument("--tasks", nargs="+", required=True)
    lm.add_argument("--heldout", help="held-out JSONL for the verbal_heldout task")
    lm.add_argument("--out", required=True)
    lm.add_argument("--limit", type=int)
    lm.add_argument("--eval-config", help="YAML of EvalConfig fields: budget, sampling, thinking, batch size")
    lm.add_argument("--device", default="cpu")
    lm.set_defaults(func=_lm_eval)


def _result_commands(sub) -> None:
    """A study's files, the attention example and the report."""
    tab = sub.add_parser("table", help="one study's table (CSV + Markdown) from its run index")
    tab.add_argument("--index", required=True, help="the study's runs.json (written by the workflow)")
    tab.add_argument("--out-dir", required=True)
    tab.add_argument("--plots", help="also draw the study's plots (PNG + SVG) into this directory")
    tab.set_defaults(func=_table)

    att = sub.add_parser("attention", help="save the 5D attention of one held-out example (.npz)")
    _checkpoint_on_heldout(att, "a MAWT checkpoint (save_pretrained directory)", ".npz file")
    att.add_argument("--index", type=int, default=0, help="which held-out row (default 0)")
    att.add_argument("--head", type=int, help="which head (default: the one whose depths differ most)")
    att.set_defaults(func=_attention)

    rep = sub.add_parser("report", help="the self-contained HTML report from the studies' folders")
    rep.add_argument("--study-dir", nargs="+", required=True,
                     help="each study's folder, as `mawt table` wrote it (table.csv, study.json, ...)")
    rep.add_argument("--setup-file", required=True)
    rep.add_argument("--bench-dir", required=True, help="Snakemake benchmark folder of the setup")
    rep.add_argument("--out", required=True, help="the .html file")
    rep.add_argument("--tidy-out", required=True, help="tidy table of all runs: PATH.csv and PATH.parquet")
    rep.add_argument("--summary", help="also write the summary table as Markdown (summary.md)")
    rep.set_defaults(func=_report)

    pl = sub.add_parser("plan", help="a power plan: each study's planned MDE, jobs and GPU-hours, before running")
    pl.add_argument("--setup", default="micro", help="a setup name under mawt/setups/ or a path (default micro)")
    pl.add_argument("--seeds", type=int, help="training seeds per variant (default: each study's own)")
    pl.add_argument("--heldout", type=int, help="held-out items (default: the setup's data.n_heldout)")
    pl.add_argument("--samples", type=int, help="samples per item, pass@1 (default: the setup's eval.n_samples)")
    pl.add_argument("--source", default="auto", choices=("auto", "others", "pilot", "assumed"),
                    help="variance components: auto (a finished run, else the other finished studies, else the "
                    "pilot, else the setup's plan: assumptions), others, pilot (`snakemake pilot`'s measurement "
                    "only), assumed")
    pl.add_argument("--results", default="results", help="where finished runs are (default results)")
    pl.add_argument("--ablations", default="ablations", help="folder of the study YAMLs (default ablations)")
    pl.set_defaults(func=_plan)


if __name__ == "__main__":
    sys.exit(main())
