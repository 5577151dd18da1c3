"""Checks of a run against its base model's shape: the one implementation behind the workflow's
start (every run of every study, before any job) and the train job (before any weight loads).

The shape (`Shape`) is four numbers: decoder layers, query heads, KV heads, head_dim. `base_shape`
reads it without building or downloading anything:
  * a local base (a save_pretrained directory): its config.json (a relative path: the working
    directory's, else the checkout's, where the shipped assets are);
  * `base_model: pretrain`: the setup's `pretrain:` over MicroConfig's defaults (mawt/bases/micro.py);
    (mawt.bases.micro and mawt.bases.standin import torch only inside their functions: these reads stay cheap)
  * `base_model: standin`: the 1.5B's GEOMETRY (mawt/bases/standin.py) with `standin: {num_layers}`;
  * a hub id: the config.json in the local Hugging Face cache, if there (offline lookup only).
When none is readable the workflow says so in one line and the train job runs the checks.

`check_run` (behind `check_against`) refuses, with one line naming the key and what is allowed:
  * patched layers out of range, or one layer named twice once negative indices are resolved;
  * `trainable: last:N` with N above the layer count, or a freeze mode that leaves nothing to train;
  * `train.credit: exact` with MAWT below the last layer (GRPO);
  * a depth whose memory estimate exceeds MEMORY_BOUND_GIB.

The memory estimate (`memory_estimate`) counts what grows with the depth D, per patched layer,
deliberately simple:
  * parameters: A_d and B_d, 2 * D * head_dim^2 elements, each a float32 weight, its gradient and
    AdamW's two moments (16 bytes an element);
  * attention temporaries of one training step: the D-fold queries and outputs (rows, H*D, L,
    head_dim) and scores (rows, H*D, L, K), rows = train.batch_size (x train.group_size with GRPO),
    L = train.max_length, K = min(mawt.query_block, L) (the fused path's score blocks; `materialized`:
    K = L), in the compute dtype (2 bytes bfloat16, 4 float32).
The routed path holds less (one attention, not D).
The paper setup at D=8 (1.5B: 12 heads, head_dim 128; batch 4 x G 4, L 1024, bf16): 1.1 GiB. The
micro base (4 heads of 32; batch 16 x G 4, L 128, float32): D up to 3408.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mawt.layer.config import nothing_to_train, resolve_layers, trainable_tail
from mawt.training.runconfig import RunConfig

MEMORY_BOUND_GIB = 80  # one H200 holds 141 GB: the model, the optimiser and the rest of the step need the others
GIB = 2**30
CHECKOUT = Path(__file__).resolve().parents[2]  # where a relative base path is looked up last (assets/)


@dataclass(frozen=True)
class Shape:
    """What the checks need of a base model (its config.json's names)."""

    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    source: str  # where it was read: named in messages

    @classmethod
    def from_config(cls, conf: dict, source: str) -> Shape | None:
        """A config.json's shape (None: not a decoder config these checks understand)."""
        if "num_hidden_layers" not in conf and isinstance(conf.get("text_config"), dict):
            conf = conf["text_config"]  # multimodal configs nest the language model's
        n, heads = conf.get("num_hidden_layers"), conf.get("num_attention_heads")
        if not (isinstance(n, int) and isinstance(heads, int) and heads > 0):
            return None
        head_dim = conf.get("head_dim") or (conf.get("hidden_size") or 0) // heads
        if not head_dim:
            return None
        return cls(n, heads, conf.get("num_key_value_heads") or heads, head_dim, source)


# ------------------------------------------------------------------ the checks


def check_credit(credit: str, patched_layers, n_layers: int) -> None:
    """Raise ValueError (one line) when `credit` cannot be used with MAWT in `patched_layers`.

    `patched_layers`: the MAWT layer indices (absolute, or negative from the
    end); `n_layers`: the model's decoder layers. `exact` needs every MAWT
    layer to be the last one. Needs only the model config (call it before the
    weights load).
    """
    if credit == "exact":  # (a credit outside TrainConfig.CREDITS is refused by TrainConfig itself)
        below = sorted({i % n_layers for i in patched_layers} - {n_layers - 1})
        if below:
            raise ValueError(
                f"train.credit='exact' needs MAWT only in the last layer ({n_layers - 1}), but it is also in "
                f"layer(s) {below}: use train.credit 'token' (approximate below the last layer) or 'sequence'"
            )


def memory_estimate(run: RunConfig, shape: Shape, depth: int | None = None) -> int:
    """Bytes the MAWT layers of `run` need in training for what grows with the depth (module
    docstring); `depth` overrides mawt.depth."""
    mawt, train = run.mawt, run.train
    if mawt is None:
        return 0
    D, hd, H, L = depth or mawt.depth, shape.head_dim, shape.num_attention_heads, train.max_length
    rows = train.batch_size * (train.group_size if run.uses_grpo else 1)
    keys = L if mawt.path == "materialized" else min(mawt.query_block, L)  # score columns held per query
    element = 2 if train.dtype == "bfloat16" else 4
    parameters = 2 * D * hd * hd * 16  # A_d, B_d: weight, gradient, AdamW's two moments, float32
    temporaries = rows * H * D * L * (2 * hd + keys) * element  # D-fold queries and outputs, D-fold scores
    return len(mawt.layers) * (parameters + temporaries)


def check_memory(run: RunConfig, shape: Shape) -> None:
    estimate = memory_estimate(run, shape)
    if estimate <= MEMORY_BOUND_GIB * GIB:
        return
    mawt, train = run.mawt, run.train
    largest = MEMORY_BOUND_GIB * GIB // memory_estimate(run, shape, depth=1)
    rows = f"{train.batch_size} x group_size {train.group_size}" if run.uses_grpo else train.batch_size
    allowed = (f"allowed are depths 1..{largest} with these settings" if largest >= 1 else
               "no depth fits: lower train.batch_size, train.group_size or train.max_length")
    raise ValueError(
        f"mawt.depth={mawt.depth} needs an estimated {estimate / GIB:,.1f} GiB for the MAWT layer(s) "
        f"{list(mawt.layers)} in training (A_d, B_d with AdamW state and the D-fold attention temporaries at "
        f"train.batch_size {rows}, max_length {train.max_length}, {train.dtype}; mawt/training/preflight.py), "
        f"more than the {MEMORY_BOUND_GIB} GiB bound: {allowed}"
    )


def check_against(run: RunConfig, model_config, source: str | None = None) -> None:
    """The rules that need the base model's shape: the patched and trainable layers exist, something
    trains, exact credit only in the last layer, the depth's memory bound. `model_config`: a transformers
    config, its config.json mapping or a `Shape`; one that is not a decoder config these rules understand
    checks nothing. A broken rule raises ValueError (one line: the key and what is allowed)."""
    shape = model_config
    if not isinstance(model_config, Shape):
        conf = model_config if isinstance(model_config, dict) else model_config.to_dict()
        shape = Shape.from_config(conf, source or run.base_model)
    if shape is not None:
        check_run(run, shape)


def check_run(run: RunConfig, shape: Shape) -> None:
    """Every check of a run against the base's shape (`check_against` calls it); a failed one raises
    ValueError (one line, the key and what is allowed)."""
    n = shape.num_hidden_layers
    if run.mawt is not None:
        layers = resolve_layers(run.mawt.layers, n)  # the same checks patch_model makes
        if run.uses_grpo:
            check_credit(run.train.credit, layers, n)
    if trainable_tail(run.trainable, n) == 0 and run.mawt is None:
        raise nothing_to_train(run.trainable)
    check_memory(run, shape)


# ------------------------------------------------------------------ where the shape comes from


def base_shape(setup: dict) -> tuple[Shape | None, str]:
    """The base model's shape of a setup, and "" (or None, and why it is not known here)."""
    base = setup["base_model"]
    if base == "pretrain":
        from dataclasses import asdict

        from mawt.bases.micro import MicroConfig  # its heavy imports are inside its functions: cheap here

        micro = {**asdict(MicroConfig()), **(setup.get("pretrain") or {})}
        return Shape(micro["num_layers"], micro["heads"], micro["kv_heads"], micro["hidden"] // micro["heads"],
                     "the micro base the workflow pre-trains (setup key pretrain)"), ""
    if base == "standin":
        from mawt.bases.standin import GEOMETRY as geometry, RECIPE  # cheap, as above
        n = {**RECIPE, **(setup.get("standin") or {})}["num_layers"]
        return Shape(n, geometry["num_attention_heads"], geometry["num_key_value_heads"], geometry["head_dim"],
                     "the stand-in the workflow builds (setup key standin)"), ""
    path = _config_file(base)
    if path is None:
        return None, f"base_model={base!r} has no config.json here nor in the local Hugging Face cache"
    try:
        conf = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return None, f"{path} could not be read ({str(err).splitlines()[0][:200]})"
    shape = Shape.from_config(conf, str(base)) if isinstance(conf, dict) else None
    if shape is None:
        return None, f"{path} names no num_hidden_layers, num_attention_heads and hidden_size or head_dim"
    return shape, ""


def _config_file(base: str) -> Path | None:
    """A base's config.json: a local directory's, or a hub id's in the local cache (never downloaded)."""
    for root in (Path.cwd(), CHECKOUT):
        path = root / base / "config.json"
        if path.is_file():
            return path
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(base, "config.json")
    except Exception:  # not a valid repo id (a missing local path): nothing cached under it
        return None
    return Path(found) if isinstance(found, str) else None
